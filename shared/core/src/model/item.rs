//! Items and their per-location stock, in both of Zoho's stock shapes (`locations[]` and `warehouses[]`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::fields::{within_record, Fields};
use crate::row::{ColumnSink, Entity};
use crate::{EntityKind, ParseError};

/// Which per-location stock array an item detail carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockShape {
    /// Organisations with Locations enabled: `locations[]` with `location_*` fields.
    Locations,
    /// Older warehouse-mode organisations: `warehouses[]` with `warehouse_*` fields.
    Warehouses,
}

impl StockShape {
    /// The array key and the field prefix for this shape.
    fn key_and_prefix(self) -> (&'static str, &'static str) {
        match self {
            StockShape::Locations => ("locations", "location"),
            StockShape::Warehouses => ("warehouses", "warehouse"),
        }
    }

    /// `"locations"` or `"warehouses"`.
    pub fn as_str(self) -> &'static str {
        self.key_and_prefix().0
    }
}

/// An item (goods or service) as Zoho describes it, from a list page, a detail GET or a webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Zoho `item_id`.
    pub item_id: String,
    /// `name` (or `item_name`).
    pub name: Option<String>,
    /// `sku`.
    pub sku: Option<String>,
    /// `status`: `active` or `inactive`.
    pub status: Option<String>,
    /// `item_type`: `inventory`, `sales_and_purchases`, ...
    pub item_type: Option<String>,
    /// `product_type`: `goods` or `service`.
    pub product_type: Option<String>,
    /// `unit`.
    pub unit: Option<String>,
    /// `category_id`.
    pub category_id: Option<String>,
    /// `category_name`.
    pub category_name: Option<String>,
    /// `brand`.
    pub brand: Option<String>,
    /// `manufacturer`.
    pub manufacturer: Option<String>,
    /// Selling `rate`.
    pub rate: Option<Decimal>,
    /// `purchase_rate`.
    pub purchase_rate: Option<Decimal>,
    /// Organisation-wide `stock_on_hand`; `None` for services, which omit stock fields.
    pub stock_on_hand: Option<Decimal>,
    /// `available_stock` (accounting stock).
    pub available_stock: Option<Decimal>,
    /// `actual_available_stock` (physical stock).
    pub actual_available_stock: Option<Decimal>,
    /// `reorder_level`; Zoho sends `""` when unset.
    pub reorder_level: Option<Decimal>,
    /// `track_inventory` (detail only).
    pub track_inventory: Option<bool>,
    /// The image's change key: `image_id` (detail) or `image_document_id` (list); `None` without an image.
    pub image_id: Option<String>,
    /// `image_name`.
    pub image_name: Option<String>,
    /// `image_type` (`jpg`, `png`, ...).
    pub image_type: Option<String>,
    /// `created_time`.
    pub created_time: Option<DateTime<Utc>>,
    /// `last_modified_time`.
    pub last_modified_time: Option<DateTime<Utc>>,
    /// Which stock array the record carried, if any (list pages carry none).
    pub stock_shape: Option<StockShape>,
    /// Per-location stock from that array.
    pub stock: Vec<LocationStock>,
    /// The record as Zoho sent it.
    pub record: Value,
}

/// Stock of one item at one location or warehouse, normalised from either shape.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationStock {
    /// `location_id` or `warehouse_id`.
    pub location_id: String,
    /// `location_name` or `warehouse_name`.
    pub location_name: Option<String>,
    /// `status` of the location.
    pub status: Option<String>,
    /// `is_primary`.
    pub is_primary: Option<bool>,
    /// `*_stock_on_hand`.
    pub stock_on_hand: Option<Decimal>,
    /// `*_available_stock`.
    pub available_stock: Option<Decimal>,
    /// `*_actual_available_stock`.
    pub actual_available_stock: Option<Decimal>,
    /// `*_committed_stock`.
    pub committed_stock: Option<Decimal>,
    /// `*_available_for_sale_stock`.
    pub available_for_sale_stock: Option<Decimal>,
    /// `*_actual_available_for_sale_stock`.
    pub actual_available_for_sale_stock: Option<Decimal>,
    /// `location_quantity_in_transit` (locations shape only).
    pub quantity_in_transit: Option<Decimal>,
    /// The array element as Zoho sent it.
    pub record: Value,
}

impl Item {
    /// Parses an item record from a list page, `/itemdetails`, a detail GET or a webhook payload.
    pub fn parse(record: Value) -> Result<Item, ParseError> {
        let kind = EntityKind::Item;
        let f = Fields::new(kind, &record)?;
        let item_id = f.id("item_id")?;
        let parsed = within_record(&item_id, || {
            let (stock_shape, stock) = parse_stock(&f)?;
            let name = match f.opt_string("name")? {
                Some(n) => Some(n),
                None => f.opt_string("item_name")?,
            };
            let image_id = match f.opt_id("image_id")? {
                Some(id) => Some(id),
                None => f.opt_id("image_document_id")?,
            };
            Ok(Item {
                item_id: item_id.clone(),
                name,
                sku: f.opt_string("sku")?,
                status: f.opt_string("status")?,
                item_type: f.opt_string("item_type")?,
                product_type: f.opt_string("product_type")?,
                unit: f.opt_string("unit")?,
                category_id: f.opt_id("category_id")?,
                category_name: f.opt_string("category_name")?,
                brand: f.opt_string("brand")?,
                manufacturer: f.opt_string("manufacturer")?,
                rate: f.opt_decimal("rate")?,
                purchase_rate: f.opt_decimal("purchase_rate")?,
                // The organisation-wide totals; where the response omits them (some detail
                // answers carry only the per-location figures), the sum of its locations.
                stock_on_hand: total(&f, "stock_on_hand", &stock, |s| s.stock_on_hand)?,
                available_stock: total(&f, "available_stock", &stock, |s| s.available_stock)?,
                actual_available_stock: total(&f, "actual_available_stock", &stock, |s| {
                    s.actual_available_stock
                })?,
                reorder_level: f.opt_decimal("reorder_level")?,
                track_inventory: f.opt_bool("track_inventory")?,
                image_id,
                image_name: f.opt_string("image_name")?,
                image_type: f.opt_string("image_type")?,
                created_time: f.opt_timestamp("created_time")?,
                last_modified_time: f.opt_timestamp("last_modified_time")?,
                stock_shape,
                stock,
                record: Value::Null,
            })
        })?;
        Ok(Item { record, ..parsed })
    }

    /// Whether the item is a service (no stock is kept for it).
    pub fn is_service(&self) -> bool {
        self.product_type.as_deref() == Some("service")
    }

    /// The per-location stock rows this record carries (empty for list-page records and services).
    pub fn stock_rows(&self) -> Vec<ItemStock> {
        self.stock
            .iter()
            .map(|s| ItemStock {
                item_id: self.item_id.clone(),
                stock: s.clone(),
            })
            .collect()
    }
}

/// The total `name` of a record, or the sum of `per_location` over its locations when the record
/// has none (`None` when neither says anything).
fn total(
    f: &Fields<'_>,
    name: &str,
    stock: &[LocationStock],
    per_location: impl Fn(&LocationStock) -> Option<Decimal>,
) -> Result<Option<Decimal>, ParseError> {
    if let Some(t) = f.opt_decimal(name)? {
        return Ok(Some(t));
    }
    let known: Vec<Decimal> = stock.iter().filter_map(&per_location).collect();
    Ok((!known.is_empty()).then(|| known.into_iter().sum()))
}

fn parse_stock(f: &Fields<'_>) -> Result<(Option<StockShape>, Vec<LocationStock>), ParseError> {
    let locations = f.opt_array("locations")?;
    let warehouses = f.opt_array("warehouses")?;
    // Zoho says "use locations, not warehouses" where both exist; fall back to warehouses when the
    // locations array is empty (older organisations).
    let shape = match (locations, warehouses) {
        (Some(l), _) if !l.is_empty() => StockShape::Locations,
        (_, Some(w)) if !w.is_empty() => StockShape::Warehouses,
        (Some(_), _) => return Ok((Some(StockShape::Locations), Vec::new())),
        (_, Some(_)) => return Ok((Some(StockShape::Warehouses), Vec::new())),
        (None, None) => return Ok((None, Vec::new())),
    };
    let (key, prefix) = shape.key_and_prefix();
    let elements = match shape {
        StockShape::Locations => locations,
        StockShape::Warehouses => warehouses,
    }
    .map(Vec::as_slice)
    .unwrap_or_default();
    let mut out = Vec::with_capacity(elements.len());
    for (i, element) in elements.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let e = Fields::nested(EntityKind::Item, element, &path)?;
        let field = |suffix: &str| format!("{prefix}_{suffix}");
        out.push(LocationStock {
            location_id: e.id(&field("id"))?,
            location_name: e.opt_string(&field("name"))?,
            status: e.opt_string("status")?,
            is_primary: e.opt_bool("is_primary")?,
            stock_on_hand: e.opt_decimal(&field("stock_on_hand"))?,
            available_stock: e.opt_decimal(&field("available_stock"))?,
            actual_available_stock: e.opt_decimal(&field("actual_available_stock"))?,
            committed_stock: e.opt_decimal(&field("committed_stock"))?,
            available_for_sale_stock: e.opt_decimal(&field("available_for_sale_stock"))?,
            actual_available_for_sale_stock: e
                .opt_decimal(&field("actual_available_for_sale_stock"))?,
            quantity_in_transit: e.opt_decimal(&field("quantity_in_transit"))?,
            record: element.clone(),
        });
    }
    Ok((Some(shape), out))
}

impl Entity for Item {
    fn kind(&self) -> EntityKind {
        EntityKind::Item
    }
    fn zoho_id(&self) -> String {
        self.item_id.clone()
    }
    fn last_modified_time(&self) -> Option<DateTime<Utc>> {
        self.last_modified_time
    }
    fn record(&self) -> &Value {
        &self.record
    }
    fn write_columns(&self, c: &mut dyn ColumnSink) {
        c.text("name", self.name.as_deref());
        c.text("sku", self.sku.as_deref());
        c.text("status", self.status.as_deref());
        c.text("item_type", self.item_type.as_deref());
        c.text("product_type", self.product_type.as_deref());
        c.text("unit", self.unit.as_deref());
        c.text("category_id", self.category_id.as_deref());
        c.text("category_name", self.category_name.as_deref());
        c.text("brand", self.brand.as_deref());
        c.text("manufacturer", self.manufacturer.as_deref());
        c.decimal("rate", self.rate);
        c.decimal("purchase_rate", self.purchase_rate);
        c.decimal("stock_on_hand", self.stock_on_hand);
        c.decimal("available_stock", self.available_stock);
        c.decimal("actual_available_stock", self.actual_available_stock);
        c.decimal("reorder_level", self.reorder_level);
        c.boolean("track_inventory", self.track_inventory);
        c.text("image_id", self.image_id.as_deref());
        c.text("image_name", self.image_name.as_deref());
        c.timestamp("created_time", self.created_time);
    }
}

/// Stock of one item at one location: a row of `item_stock`, id `"{item_id}:{location_id}"`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemStock {
    /// The item.
    pub item_id: String,
    /// Its stock at one location.
    pub stock: LocationStock,
}

impl ItemStock {
    /// The row id of an item's stock at a location.
    pub fn row_id(item_id: &str, location_id: &str) -> String {
        format!("{item_id}:{location_id}")
    }
}

impl Entity for ItemStock {
    fn kind(&self) -> EntityKind {
        EntityKind::ItemStock
    }
    fn zoho_id(&self) -> String {
        ItemStock::row_id(&self.item_id, &self.stock.location_id)
    }
    fn last_modified_time(&self) -> Option<DateTime<Utc>> {
        // Zoho does not move an item's last_modified_time when its stock moves: stock is versioned
        // by observation time.
        None
    }
    fn record(&self) -> &Value {
        &self.stock.record
    }
    fn write_columns(&self, c: &mut dyn ColumnSink) {
        let s = &self.stock;
        c.text("item_id", Some(&self.item_id));
        c.text("location_id", Some(&s.location_id));
        c.text("location_name", s.location_name.as_deref());
        c.boolean("is_primary", s.is_primary);
        c.decimal("stock_on_hand", s.stock_on_hand);
        c.decimal("available_stock", s.available_stock);
        c.decimal("actual_available_stock", s.actual_available_stock);
        c.decimal("committed_stock", s.committed_stock);
        c.decimal("available_for_sale_stock", s.available_for_sale_stock);
        c.decimal(
            "actual_available_for_sale_stock",
            s.actual_available_for_sale_stock,
        );
        c.decimal("quantity_in_transit", s.quantity_in_transit);
    }
}
