//! Locations (and legacy warehouses), price books and their item rates, and item image metadata.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::item::StockShape;
use crate::fields::{within_record, Fields};
use crate::row::{ColumnSink, Entity};
use crate::{EntityKind, ParseError};

/// A location (`/locations`) or, in warehouse-mode organisations, a warehouse (`/settings/warehouses`).
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// `location_id` or `warehouse_id`.
    pub location_id: String,
    /// `location_name` or `warehouse_name`.
    pub name: Option<String>,
    /// Which API the record came from.
    pub source: StockShape,
    /// `status` (`active`/`inactive`), where given.
    pub status: Option<String>,
    /// `is_primary`.
    pub is_primary: Option<bool>,
    /// `type` of a location (`general`, `line_item_only`, ...).
    pub location_type: Option<String>,
    /// `parent_location_id`.
    pub parent_location_id: Option<String>,
    /// Country from `address.country` or the warehouse's `country`.
    pub country: Option<String>,
    /// The record as Zoho sent it.
    pub record: Value,
}

impl Location {
    /// Parses a location or warehouse record (either id field is accepted).
    pub fn parse(record: Value) -> Result<Location, ParseError> {
        let f = Fields::new(EntityKind::Location, &record)?;
        let (source, prefix) = if f.raw("location_id").is_some() || f.raw("warehouse_id").is_none()
        {
            (StockShape::Locations, "location")
        } else {
            (StockShape::Warehouses, "warehouse")
        };
        let location_id = f.id(&format!("{prefix}_id"))?;
        let parsed = within_record(&location_id, || {
            let country = match f.opt_object("address")? {
                Some(a) => a.opt_string("country")?,
                None => None,
            };
            Ok(Location {
                location_id: location_id.clone(),
                name: f.opt_string(&format!("{prefix}_name"))?,
                source,
                status: f.opt_string("status")?,
                is_primary: f.opt_bool("is_primary")?,
                location_type: f.opt_string("type")?,
                parent_location_id: f.opt_id("parent_location_id")?,
                country: match country {
                    Some(c) => Some(c),
                    None => f.opt_string("country")?,
                },
                record: Value::Null,
            })
        })?;
        Ok(Location { record, ..parsed })
    }
}

impl Entity for Location {
    fn kind(&self) -> EntityKind {
        EntityKind::Location
    }
    fn zoho_id(&self) -> String {
        self.location_id.clone()
    }
    fn last_modified_time(&self) -> Option<DateTime<Utc>> {
        None
    }
    fn record(&self) -> &Value {
        &self.record
    }
    fn write_columns(&self, c: &mut dyn ColumnSink) {
        c.text("name", self.name.as_deref());
        c.text("source", Some(self.source.as_str()));
        c.text("status", self.status.as_deref());
        c.boolean("is_primary", self.is_primary);
        c.text("location_type", self.location_type.as_deref());
        c.text("parent_location_id", self.parent_location_id.as_deref());
        c.text("country", self.country.as_deref());
    }
}

/// A price book (price list). Its item rates, when the record carries `pricebook_items[]`
/// (only the single-record GET does), are parsed into [`PriceBook::rates`].
#[derive(Debug, Clone, PartialEq)]
pub struct PriceBook {
    /// `pricebook_id`.
    pub pricebook_id: String,
    /// `name`.
    pub name: Option<String>,
    /// `currency_code`.
    pub currency_code: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// `pricebook_type`: `per_item` or `fixed_percentage`.
    pub pricebook_type: Option<String>,
    /// `sales_or_purchase_type`: `sales` or `purchases`.
    pub sales_or_purchase_type: Option<String>,
    /// `is_default`.
    pub is_default: Option<bool>,
    /// `percentage` of a fixed-percentage book.
    pub percentage: Option<Decimal>,
    /// `is_increase` of a fixed-percentage book.
    pub is_increase: Option<bool>,
    /// Rates from `pricebook_items[]`; `None` when the record did not carry the array.
    pub rates: Option<Vec<PriceBookRate>>,
    /// The record as Zoho sent it.
    pub record: Value,
}

impl PriceBook {
    /// Parses a price book from the list or the single-record GET.
    pub fn parse(record: Value) -> Result<PriceBook, ParseError> {
        let f = Fields::new(EntityKind::PriceBook, &record)?;
        let pricebook_id = f.id("pricebook_id")?;
        let parsed = within_record(&pricebook_id, || {
            let rates = match f.opt_array("pricebook_items")? {
                None => None,
                Some(items) => Some(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            PriceBookRate::parse_element(
                                EntityKind::PriceBook,
                                &pricebook_id,
                                v,
                                &format!("pricebook_items[{i}]"),
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            Ok(PriceBook {
                pricebook_id: pricebook_id.clone(),
                name: f.opt_string("name")?,
                currency_code: f.opt_string("currency_code")?,
                status: f.opt_string("status")?,
                pricebook_type: f.opt_string("pricebook_type")?,
                sales_or_purchase_type: f.opt_string("sales_or_purchase_type")?,
                is_default: f.opt_bool("is_default")?,
                percentage: f.opt_decimal("percentage")?,
                is_increase: f.opt_bool("is_increase")?,
                rates,
                record: Value::Null,
            })
        })?;
        Ok(PriceBook { record, ..parsed })
    }
}

impl Entity for PriceBook {
    fn kind(&self) -> EntityKind {
        EntityKind::PriceBook
    }
    fn zoho_id(&self) -> String {
        self.pricebook_id.clone()
    }
    fn last_modified_time(&self) -> Option<DateTime<Utc>> {
        None
    }
    fn record(&self) -> &Value {
        &self.record
    }
    fn write_columns(&self, c: &mut dyn ColumnSink) {
        c.text("name", self.name.as_deref());
        c.text("currency_code", self.currency_code.as_deref());
        c.text("status", self.status.as_deref());
        c.text("pricebook_type", self.pricebook_type.as_deref());
        c.text(
            "sales_or_purchase_type",
            self.sales_or_purchase_type.as_deref(),
        );
        c.boolean("is_default", self.is_default);
        c.decimal("percentage", self.percentage);
        c.boolean("is_increase", self.is_increase);
    }
}

/// The rate of one item in one price book: a row of `price_book_rates`, id `"{pricebook_id}:{item_id}"`.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceBookRate {
    /// The price book.
    pub pricebook_id: String,
    /// `item_id`.
    pub item_id: String,
    /// `pricebook_item_id`, where given.
    pub pricebook_item_id: Option<String>,
    /// `pricebook_rate`.
    pub pricebook_rate: Option<Decimal>,
    /// `pricebook_discount`.
    pub pricebook_discount: Option<Decimal>,
    /// The item's base `rate`, where given (`/items/pricebookrate` sends it).
    pub base_rate: Option<Decimal>,
    /// The element as Zoho sent it.
    pub record: Value,
}

impl PriceBookRate {
    /// Parses one element of a price book's `pricebook_items[]`, or of Books'
    /// `/items/pricebookrate?pricebook_id=...` `items[]` (which does not repeat the price book id).
    pub fn parse(pricebook_id: &str, record: Value) -> Result<PriceBookRate, ParseError> {
        let parsed = PriceBookRate::parse_element(
            EntityKind::PriceBookRate,
            pricebook_id,
            &record,
            "(rate)",
        )?;
        Ok(PriceBookRate { record, ..parsed })
    }

    fn parse_element(
        kind: EntityKind,
        pricebook_id: &str,
        element: &Value,
        path: &str,
    ) -> Result<PriceBookRate, ParseError> {
        let e = Fields::nested(kind, element, path)?;
        let item_id = e.id("item_id")?;
        within_record(&PriceBookRate::row_id(pricebook_id, &item_id), || {
            Ok(PriceBookRate {
                pricebook_id: pricebook_id.to_string(),
                item_id: item_id.clone(),
                pricebook_item_id: e.opt_id("pricebook_item_id")?,
                pricebook_rate: e.opt_decimal("pricebook_rate")?,
                pricebook_discount: e.opt_decimal("pricebook_discount")?,
                base_rate: e.opt_decimal("rate")?,
                record: element.clone(),
            })
        })
    }

    /// The row id of an item's rate in a price book.
    pub fn row_id(pricebook_id: &str, item_id: &str) -> String {
        format!("{pricebook_id}:{item_id}")
    }
}

impl Entity for PriceBookRate {
    fn kind(&self) -> EntityKind {
        EntityKind::PriceBookRate
    }
    fn zoho_id(&self) -> String {
        PriceBookRate::row_id(&self.pricebook_id, &self.item_id)
    }
    fn last_modified_time(&self) -> Option<DateTime<Utc>> {
        None
    }
    fn record(&self) -> &Value {
        &self.record
    }
    fn write_columns(&self, c: &mut dyn ColumnSink) {
        c.text("pricebook_id", Some(&self.pricebook_id));
        c.text("item_id", Some(&self.item_id));
        c.decimal("pricebook_rate", self.pricebook_rate);
        c.decimal("pricebook_discount", self.pricebook_discount);
        c.decimal("base_rate", self.base_rate);
    }
}

/// Metadata of an item's image as TDS stored it (the bytes are in the blob store under `blob_key`).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemImage {
    /// The item.
    pub item_id: String,
    /// Zoho's image id (`image_id` / `image_document_id`), the change key.
    pub image_id: String,
    /// File name (`image_name`).
    pub file_name: Option<String>,
    /// Content type served by Zoho.
    pub content_type: Option<String>,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Key of the bytes in the blob store.
    pub blob_key: String,
    /// The metadata as a JSON record (what the `record` column holds).
    pub record: Value,
}

impl ItemImage {
    /// Builds image metadata; `record` is derived from the fields.
    pub fn new(
        item_id: impl Into<String>,
        image_id: impl Into<String>,
        file_name: Option<String>,
        content_type: Option<String>,
        bytes: &[u8],
        blob_key: impl Into<String>,
    ) -> ItemImage {
        use sha2::{Digest, Sha256};
        let mut image = ItemImage {
            item_id: item_id.into(),
            image_id: image_id.into(),
            file_name,
            content_type,
            size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            sha256: hex::encode(Sha256::digest(bytes)),
            blob_key: blob_key.into(),
            record: Value::Null,
        };
        image.record = json!({
            "item_id": image.item_id,
            "image_id": image.image_id,
            "file_name": image.file_name,
            "content_type": image.content_type,
            "size_bytes": image.size_bytes,
            "sha256": image.sha256,
            "blob_key": image.blob_key,
        });
        image
    }
}

impl Entity for ItemImage {
    fn kind(&self) -> EntityKind {
        EntityKind::ItemImage
    }
    fn zoho_id(&self) -> String {
        self.item_id.clone()
    }
    fn last_modified_time(&self) -> Option<DateTime<Utc>> {
        None
    }
    fn record(&self) -> &Value {
        &self.record
    }
    fn write_columns(&self, c: &mut dyn ColumnSink) {
        c.text("item_id", Some(&self.item_id));
        c.text("image_id", Some(&self.image_id));
        c.text("file_name", self.file_name.as_deref());
        c.text("content_type", self.content_type.as_deref());
        c.integer("size_bytes", Some(self.size_bytes));
        c.text("sha256", Some(&self.sha256));
        c.text("blob_key", Some(&self.blob_key));
    }
}
