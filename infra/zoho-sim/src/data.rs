//! The simulator's records: one organisation's collections as Zoho stores them, how each collection is
//! served (list key, id field, fields only the detail GET returns), and how records are rendered for
//! an organisation's stock shape (`locations[]` or `warehouses[]`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value};

/// A collection of records the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// `/items`.
    Items,
    /// `/locations` (and `/settings/warehouses` for warehouse-mode organisations).
    Locations,
    /// `/pricebooks`.
    PriceBooks,
    /// `/contacts`.
    Contacts,
    /// `/invoices`.
    Invoices,
    /// `/salesorders`.
    SalesOrders,
    /// `/bills`.
    Bills,
    /// `/customerpayments`.
    CustomerPayments,
    /// `/creditnotes`.
    CreditNotes,
    /// `/vendorpayments`.
    VendorPayments,
    /// `/purchaseorders`.
    PurchaseOrders,
}

/// How a collection is served.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// URL path segment.
    pub path: &'static str,
    /// Key of the list in list responses.
    pub list_key: &'static str,
    /// Key of the record in single-record responses.
    pub single_key: &'static str,
    /// Id field.
    pub id_field: &'static str,
    /// Name used in "does not exist" messages.
    pub noun: &'static str,
    /// Fields only the single-record GET returns.
    pub detail_only: &'static [&'static str],
    /// Whether the list honours `last_modified_time` (as Zoho documents for this endpoint).
    pub lmt_filter: bool,
    /// Default `sort_column`.
    pub default_sort: &'static str,
    /// `report_name` in `page_context`.
    pub report_name: &'static str,
}

const DOC_DETAIL: &[&str] = &[
    "line_items",
    "billing_address",
    "shipping_address",
    "notes",
    "terms",
];

impl Collection {
    /// Every collection.
    pub const ALL: [Collection; 11] = [
        Collection::Items,
        Collection::Locations,
        Collection::PriceBooks,
        Collection::Contacts,
        Collection::Invoices,
        Collection::SalesOrders,
        Collection::Bills,
        Collection::CustomerPayments,
        Collection::CreditNotes,
        Collection::VendorPayments,
        Collection::PurchaseOrders,
    ];

    /// How this collection is served.
    pub fn spec(self) -> Spec {
        let s = |path,
                 list_key,
                 single_key,
                 id_field,
                 noun,
                 detail_only,
                 lmt_filter,
                 default_sort,
                 report_name| Spec {
            path,
            list_key,
            single_key,
            id_field,
            noun,
            detail_only,
            lmt_filter,
            default_sort,
            report_name,
        };
        match self {
            Collection::Items => s(
                "items",
                "items",
                "item",
                "item_id",
                "Item",
                &[
                    "locations",
                    "warehouses",
                    "item_tax_preferences",
                    "custom_fields",
                    "unit_id",
                    "vendor_id",
                    "vendor_name",
                    "pricebook_rate",
                ],
                true,
                "name",
                "Items",
            ),
            Collection::Locations => s(
                "locations",
                "locations",
                "location",
                "location_id",
                "Location",
                &[],
                false,
                "location_name",
                "Locations",
            ),
            Collection::PriceBooks => s(
                "pricebooks",
                "pricebooks",
                "pricebook",
                "pricebook_id",
                "Price Book",
                &["pricebook_items"],
                false,
                "name",
                "Price Lists",
            ),
            Collection::Contacts => s(
                "contacts",
                "contacts",
                "contact",
                "contact_id",
                "Contact",
                &[
                    "billing_address",
                    "shipping_address",
                    "contact_persons",
                    "credit_limit",
                ],
                false,
                "contact_name",
                "Contacts",
            ),
            Collection::Invoices => s(
                "invoices",
                "invoices",
                "invoice",
                "invoice_id",
                "Invoice",
                DOC_DETAIL,
                true,
                "created_time",
                "Invoices",
            ),
            Collection::SalesOrders => s(
                "salesorders",
                "salesorders",
                "salesorder",
                "salesorder_id",
                "Sales Order",
                DOC_DETAIL,
                true,
                "created_time",
                "Sales Orders",
            ),
            Collection::Bills => s(
                "bills",
                "bills",
                "bill",
                "bill_id",
                "Bill",
                DOC_DETAIL,
                true,
                "created_time",
                "Bills",
            ),
            Collection::CustomerPayments => s(
                "customerpayments",
                "customerpayments",
                "payment",
                "payment_id",
                "Payment",
                &["invoices"],
                false,
                "created_time",
                "Customer Payments",
            ),
            Collection::CreditNotes => s(
                "creditnotes",
                "creditnotes",
                "creditnote",
                "creditnote_id",
                "Credit Note",
                DOC_DETAIL,
                true,
                "created_time",
                "Credit Notes",
            ),
            Collection::VendorPayments => s(
                "vendorpayments",
                "vendorpayments",
                "vendorpayment",
                "payment_id",
                "Vendor Payment",
                &["bills"],
                true,
                "created_time",
                "Vendor Payments",
            ),
            Collection::PurchaseOrders => s(
                "purchaseorders",
                "purchaseorders",
                "purchaseorder",
                "purchaseorder_id",
                "Purchase Order",
                DOC_DETAIL,
                true,
                "created_time",
                "Purchase Orders",
            ),
        }
    }

    /// The collection served at `path`, if any.
    pub fn from_path(path: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.spec().path == path)
    }

    /// The webhook wrapper key Zoho uses for this collection (`{"item": {...}}`).
    pub fn webhook_key(self) -> &'static str {
        match self {
            Collection::CustomerPayments => "payment",
            other => other.spec().single_key,
        }
    }
}

/// Which per-location stock array the organisation's item details carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockShape {
    /// `locations[]` with `location_*` fields (Locations enabled).
    Locations,
    /// `warehouses[]` with `warehouse_*` fields (older organisations).
    Warehouses,
}

/// An item image.
#[derive(Debug, Clone)]
pub struct Image {
    /// Content type served.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// One simulated organisation.
#[derive(Debug, Clone)]
pub struct Org {
    /// `organization_id`.
    pub id: String,
    /// Organisation name.
    pub name: String,
    /// Currency of the organisation.
    pub currency_code: String,
    /// Offset its timestamps are written in (e.g. +05:30).
    pub offset: FixedOffset,
    /// Stock shape of item details.
    pub stock_shape: StockShape,
    /// How this organisation's Zoho behaves where ZOHO.md is uncertain.
    pub profile: Profile,
    /// Records by collection, by id. Items are stored in the `locations[]` shape.
    pub records: BTreeMap<Collection, BTreeMap<String, Value>>,
    /// Images by item id.
    pub images: HashMap<String, Image>,
    /// Next id to hand out for created records.
    pub next_id: u64,
}

impl Org {
    /// Formats `t` as Zoho does for this organisation (`2024-02-01T10:54:54+0530`).
    pub fn zoho_time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.offset)
            .format("%Y-%m-%dT%H:%M:%S%z")
            .to_string()
    }

    /// Records of a collection.
    pub fn collection(&self, c: Collection) -> impl Iterator<Item = &Value> {
        self.records.get(&c).into_iter().flat_map(|m| m.values())
    }

    /// One record.
    pub fn get(&self, c: Collection, id: &str) -> Option<&Value> {
        self.records.get(&c).and_then(|m| m.get(id))
    }

    /// A fresh 19-digit id.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}", self.next_id)
    }

    /// The record as a detail GET returns it (stock in the organisation's shape).
    pub fn render_detail(&self, c: Collection, record: &Value) -> Value {
        let mut out = if c == Collection::Items && self.stock_shape == StockShape::Warehouses {
            to_warehouses(record)
        } else {
            record.clone()
        };
        if c == Collection::Items && !self.profile.detail_totals {
            if let Value::Object(map) = &mut out {
                for key in ITEM_TOTALS {
                    map.remove(key);
                }
            }
        }
        out
    }

    /// Applies `profile` (its stock shape included).
    pub fn with_profile(mut self, profile: Profile) -> Org {
        self.stock_shape = profile.stock_shape;
        self.profile = profile;
        self
    }

    /// The record as a list page returns it: without the detail-only fields.
    pub fn render_list(&self, c: Collection, record: &Value) -> Value {
        let mut out = record.clone();
        if let Value::Object(map) = &mut out {
            for key in c.spec().detail_only {
                map.remove(*key);
            }
        }
        out
    }
}

/// An item's organisation-wide stock fields.
pub const ITEM_TOTALS: [&str; 3] = ["stock_on_hand", "available_stock", "actual_available_stock"];

/// What a Zoho organisation does where the sources disagree or ZOHO.md says "inferred": one
/// profile per combination TDS must be right under. Tests run against every [`Profile::all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// A name for test output.
    pub name: String,
    /// `locations[]` or the older `warehouses[]` on item details.
    pub stock_shape: StockShape,
    /// Whether `GET /items?location_id=X` narrows the aggregate stock fields to location X
    /// (inferred, not documented) or ignores the filter and returns organisation totals.
    pub narrows_location_filter: bool,
    /// Whether item details (`/itemdetails`, `/items/{id}`) carry the organisation-wide totals
    /// (`stock_on_hand`, `available_stock`, `actual_available_stock`) or only the per-location ones.
    pub detail_totals: bool,
    /// Whether the items list shows every item by default, or active ones only (documented)
    /// unless `filter_by=Status.All`.
    pub items_all_by_default: bool,
    /// The list key of `/customerpayments`: `customerpayments` (production) or `customer_payments`
    /// (the Books OAS).
    pub payments_list_key: String,
}

impl Default for Profile {
    /// Zoho as documented, with the inferred behaviours as ZOHO.md guesses them.
    fn default() -> Self {
        Profile {
            name: "documented".into(),
            stock_shape: StockShape::Locations,
            narrows_location_filter: true,
            detail_totals: true,
            items_all_by_default: false,
            payments_list_key: "customerpayments".into(),
        }
    }
}

impl Profile {
    /// Every profile the tests run against: the documented one, and ones that flip each uncertain
    /// behaviour (in both stock shapes).
    pub fn all() -> Vec<Profile> {
        vec![
            Profile::default(),
            Profile {
                name: "filter-ignored-warehouses".into(),
                stock_shape: StockShape::Warehouses,
                narrows_location_filter: false,
                detail_totals: false,
                items_all_by_default: true,
                payments_list_key: "customer_payments".into(),
            },
            Profile {
                name: "filter-ignored-locations".into(),
                stock_shape: StockShape::Locations,
                narrows_location_filter: false,
                detail_totals: true,
                items_all_by_default: false,
                payments_list_key: "customer_payments".into(),
            },
        ]
    }
}

/// Rewrites an item's `locations[]` (with `location_*` fields) into `warehouses[]` (`warehouse_*`).
fn to_warehouses(record: &Value) -> Value {
    let mut out = record.clone();
    let Value::Object(map) = &mut out else {
        return out;
    };
    if let Some(Value::Array(locations)) = map.remove("locations") {
        let warehouses: Vec<Value> = locations
            .into_iter()
            .map(|l| {
                let mut w = Map::new();
                if let Value::Object(fields) = l {
                    for (k, v) in fields {
                        let key = match k.strip_prefix("location_") {
                            Some(rest) => format!("warehouse_{rest}"),
                            None => k,
                        };
                        w.insert(key, v);
                    }
                }
                w.insert("is_fba_warehouse".into(), Value::Bool(false));
                w.insert("sales_channels".into(), Value::Array(Vec::new()));
                Value::Object(w)
            })
            .collect();
        map.insert("warehouses".into(), Value::Array(warehouses));
    }
    out
}

/// Renders a location record as the legacy `/settings/warehouses` list returns it.
pub fn location_as_warehouse(location: &Value) -> Value {
    let get = |k: &str| location.get(k).cloned().unwrap_or(Value::Null);
    let address = location.get("address").cloned().unwrap_or(Value::Null);
    let addr = |k: &str| {
        address
            .get(k)
            .cloned()
            .unwrap_or(Value::String(String::new()))
    };
    serde_json::json!({
        "warehouse_id": get("location_id"),
        "warehouse_name": get("location_name"),
        "status": get("status"),
        "is_primary": get("is_primary"),
        "is_org_level_primary": get("is_primary"),
        "address": addr("street_address1"),
        "address1": addr("street_address1"),
        "address2": addr("street_address2"),
        "city": addr("city"),
        "state": addr("state"),
        "state_code": addr("state_code"),
        "country": addr("country"),
        "zip": addr("zip"),
        "email": get("email"),
        "phone": get("phone"),
        "is_fba_warehouse": false,
        "sales_channels": []
    })
}
