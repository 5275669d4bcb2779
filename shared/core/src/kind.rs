//! The entity kinds TDS keeps in step with Zoho, and the one per-kind table ([`SPECS`]) of the
//! facts about each: names, PostgreSQL table, Zoho id field, endpoint and webhook wrapper key, how
//! it is listed, completed and compared.

use std::fmt;
use std::str::FromStr;

/// One kind of record TDS syncs from Zoho into its own PostgreSQL table.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// Items (goods and services), from `/items` and `/itemdetails`.
    Item,
    /// Stock of one item at one location or warehouse (item × location).
    ItemStock,
    /// Locations, or warehouses in older warehouse-mode organisations.
    Location,
    /// Price books (price lists), without their item rates.
    PriceBook,
    /// The rate of one item in one price book.
    PriceBookRate,
    /// Contacts: customers and vendors in one table, told apart by `contact_type`.
    Contact,
    /// Metadata of an item's image; the bytes live in the blob store.
    ItemImage,
    /// Sales invoices.
    Invoice,
    /// Sales orders.
    SalesOrder,
    /// Vendor bills.
    Bill,
    /// Payments received from customers.
    CustomerPayment,
    /// Credit notes.
    CreditNote,
    /// Payments made to vendors.
    VendorPayment,
    /// Purchase orders.
    PurchaseOrder,
}

impl EntityKind {
    /// Every kind, in dependency order (things referenced before things that reference them).
    pub const ALL: [EntityKind; 14] = [
        EntityKind::Location,
        EntityKind::Item,
        EntityKind::ItemStock,
        EntityKind::ItemImage,
        EntityKind::PriceBook,
        EntityKind::PriceBookRate,
        EntityKind::Contact,
        EntityKind::Invoice,
        EntityKind::SalesOrder,
        EntityKind::Bill,
        EntityKind::CustomerPayment,
        EntityKind::CreditNote,
        EntityKind::VendorPayment,
        EntityKind::PurchaseOrder,
    ];

    /// The stable name used in messages, events, the CLI and the admin API (`item`, `sales_order`, ...).
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// Everything TDS knows about this kind, from the one per-kind table ([`SPECS`]).
    pub fn spec(self) -> &'static KindSpec {
        &SPECS[self as usize]
    }

    /// The PostgreSQL table holding this kind (see `migrations/`).
    pub fn table(self) -> &'static str {
        self.spec().table
    }

    /// The field carrying Zoho's id in this kind's records, for kinds that are Zoho records of their own.
    ///
    /// Derived kinds (stock, price-book rates, images) have composite ids built by TDS and return `None`.
    pub fn zoho_id_field(self) -> Option<&'static str> {
        self.spec().zoho_id_field
    }

    /// Whether Zoho's records of this kind carry `last_modified_time` (so rows are versioned by it).
    ///
    /// Kinds without it (locations, price books, stock, rates, images) are versioned by the time TDS
    /// observed them in Zoho, which is monotonic for one poller and safe against late replays.
    pub fn has_zoho_modified_time(self) -> bool {
        self.spec().has_modified_time
    }
}

/// Where Zoho serves a kind's records: `/{path}` lists them under one of `list_keys`, `/{path}/{id}`
/// answers one under `single_key` (which is also the key its webhook payloads are wrapped in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Path below the product's API root (`items`, `salesorders`, ...).
    pub path: &'static str,
    /// List keys to accept, in order (customer payments come as `customerpayments` or `customer_payments`).
    pub list_keys: &'static [&'static str],
    /// Key of the single record (and of a webhook's wrapper).
    pub single_key: &'static str,
}

/// How a kind's listed records become complete rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The list record is the whole record.
    List,
    /// `/itemdetails`, 100 per call.
    BulkItems,
    /// One detail GET per changed record.
    DetailGet,
    /// Derived from its parent's records (stock and images from items, rates from price books).
    Derived,
}

/// Which Zoho product serves a kind by default (an organisation's configuration may say otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Zoho Inventory (`/inventory/v1`).
    Inventory,
    /// Zoho Books (`/books/v3`).
    Books,
}

/// The facts of one kind: adding a kind means a row here, a model and a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSpec {
    /// The kind.
    pub kind: EntityKind,
    /// The stable name (messages, events, CLI, admin API).
    pub name: &'static str,
    /// Its PostgreSQL table.
    pub table: &'static str,
    /// The field of Zoho's id (`None` for derived kinds).
    pub zoho_id_field: Option<&'static str>,
    /// Where Zoho serves it (`None` for derived kinds).
    pub endpoint: Option<Endpoint>,
    /// The product that serves it by default.
    pub served: Served,
    /// How listed records become complete rows.
    pub completion: Completion,
    /// Whether records carry `last_modified_time`.
    pub has_modified_time: bool,
    /// Whether the list filters by `last_modified_time` (incremental listing).
    pub modified_filter: bool,
    /// Whether the list sorts by `last_modified_time` (newest first, for an early stop) though it
    /// cannot filter by it.
    pub sorts_by_modified: bool,
    /// A list order that stays put while records are edited (`sort_column`), if Zoho has one.
    pub stable_order: Option<&'static str>,
    /// A filter every listing needs (`filter_by=Status.All`: inactive records are records too).
    pub list_filter: Option<(&'static str, &'static str)>,
    /// Differences above which a comparison heals the kind.
    pub heal_threshold: usize,
    /// Whether the comparison lists and compares it record by record (derived kinds are compared
    /// through their parents).
    pub compared: bool,
    /// Whether it is a transaction (a document with a party and an amount).
    pub transaction: bool,
}

const fn endpoint(
    path: &'static str,
    list_keys: &'static [&'static str],
    single_key: &'static str,
) -> Option<Endpoint> {
    Some(Endpoint {
        path,
        list_keys,
        single_key,
    })
}

/// A Zoho record kind served by Books, with a detail GET per changed record.
const fn document(
    kind: EntityKind,
    name: &'static str,
    table: &'static str,
    id: &'static str,
    endpoint: Option<Endpoint>,
) -> KindSpec {
    KindSpec {
        kind,
        name,
        table,
        zoho_id_field: Some(id),
        endpoint,
        served: Served::Books,
        completion: Completion::DetailGet,
        has_modified_time: true,
        modified_filter: true,
        sorts_by_modified: false,
        stable_order: Some("created_time"),
        list_filter: None,
        heal_threshold: 5,
        compared: true,
        transaction: true,
    }
}

/// A kind TDS builds from its parent's records.
const fn derived(
    kind: EntityKind,
    name: &'static str,
    table: &'static str,
    served: Served,
    heal_threshold: usize,
) -> KindSpec {
    KindSpec {
        kind,
        name,
        table,
        zoho_id_field: None,
        endpoint: None,
        served,
        completion: Completion::Derived,
        has_modified_time: false,
        modified_filter: false,
        sorts_by_modified: false,
        stable_order: None,
        list_filter: None,
        heal_threshold,
        compared: false,
        transaction: false,
    }
}

const STATUS_ALL: Option<(&str, &str)> = Some(("filter_by", "Status.All"));

/// The per-kind table, in the order of [`EntityKind`]'s variants.
pub const SPECS: [KindSpec; 14] = [
    KindSpec {
        kind: EntityKind::Item,
        name: "item",
        table: "items",
        zoho_id_field: Some("item_id"),
        endpoint: endpoint("items", &["items"], "item"),
        served: Served::Inventory,
        completion: Completion::BulkItems,
        has_modified_time: true,
        modified_filter: true,
        sorts_by_modified: false,
        stable_order: Some("created_time"),
        list_filter: STATUS_ALL,
        heal_threshold: 5,
        compared: true,
        transaction: false,
    },
    derived(
        EntityKind::ItemStock,
        "item_stock",
        "item_stock",
        Served::Inventory,
        10,
    ),
    KindSpec {
        kind: EntityKind::Location,
        name: "location",
        table: "locations",
        zoho_id_field: Some("location_id"),
        endpoint: endpoint("locations", &["locations"], "location"),
        served: Served::Inventory,
        completion: Completion::List,
        has_modified_time: false,
        modified_filter: false,
        sorts_by_modified: false,
        stable_order: None,
        list_filter: None,
        heal_threshold: 5,
        compared: true,
        transaction: false,
    },
    KindSpec {
        kind: EntityKind::PriceBook,
        name: "price_book",
        table: "price_books",
        zoho_id_field: Some("pricebook_id"),
        endpoint: endpoint("pricebooks", &["pricebooks"], "pricebook"),
        served: Served::Inventory,
        completion: Completion::DetailGet,
        has_modified_time: false,
        modified_filter: false,
        sorts_by_modified: false,
        stable_order: None,
        list_filter: None,
        heal_threshold: 1,
        compared: true,
        transaction: false,
    },
    // `/items/pricebookrate` is a Books endpoint.
    derived(
        EntityKind::PriceBookRate,
        "price_book_rate",
        "price_book_rates",
        Served::Books,
        1,
    ),
    KindSpec {
        kind: EntityKind::Contact,
        name: "contact",
        table: "contacts",
        zoho_id_field: Some("contact_id"),
        endpoint: endpoint("contacts", &["contacts"], "contact"),
        served: Served::Books,
        completion: Completion::DetailGet,
        has_modified_time: true,
        modified_filter: false,
        sorts_by_modified: true,
        stable_order: Some("created_time"),
        list_filter: STATUS_ALL,
        heal_threshold: 5,
        compared: true,
        transaction: false,
    },
    derived(
        EntityKind::ItemImage,
        "item_image",
        "item_images",
        Served::Inventory,
        50,
    ),
    document(
        EntityKind::Invoice,
        "invoice",
        "invoices",
        "invoice_id",
        endpoint("invoices", &["invoices"], "invoice"),
    ),
    document(
        EntityKind::SalesOrder,
        "sales_order",
        "sales_orders",
        "salesorder_id",
        endpoint("salesorders", &["salesorders"], "salesorder"),
    ),
    document(
        EntityKind::Bill,
        "bill",
        "bills",
        "bill_id",
        endpoint("bills", &["bills"], "bill"),
    ),
    KindSpec {
        completion: Completion::List,
        modified_filter: false,
        ..document(
            EntityKind::CustomerPayment,
            "customer_payment",
            "customer_payments",
            "payment_id",
            endpoint(
                "customerpayments",
                &["customerpayments", "customer_payments"],
                "payment",
            ),
        )
    },
    document(
        EntityKind::CreditNote,
        "credit_note",
        "credit_notes",
        "creditnote_id",
        endpoint("creditnotes", &["creditnotes"], "creditnote"),
    ),
    // Vendor payments allow no sort by creation time (OAS: vendor_name, date, reference_number,
    // amount, balance): the payment date is the order that stays put.
    KindSpec {
        completion: Completion::List,
        stable_order: Some("date"),
        ..document(
            EntityKind::VendorPayment,
            "vendor_payment",
            "vendor_payments",
            "payment_id",
            endpoint("vendorpayments", &["vendorpayments"], "vendorpayment"),
        )
    },
    document(
        EntityKind::PurchaseOrder,
        "purchase_order",
        "purchase_orders",
        "purchaseorder_id",
        endpoint("purchaseorders", &["purchaseorders"], "purchaseorder"),
    ),
];

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of TDS's entity kinds; its message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entity kind {given:?}; valid kinds: {}", valid_kinds())]
pub struct UnknownEntityKind {
    /// What was given.
    pub given: String,
}

fn valid_kinds() -> String {
    EntityKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for EntityKind {
    type Err = UnknownEntityKind;

    /// Accepts the stable name, the table name, and Zoho's own spellings (`salesorder`, `customerpayment`,
    /// `creditnote`, `pricebook`, `warehouse`, `customer`, `vendor`, ...), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let kind = match norm.as_str() {
            "item" | "items" => EntityKind::Item,
            "item_stock" | "stock" | "itemstock" => EntityKind::ItemStock,
            "location" | "locations" | "warehouse" | "warehouses" => EntityKind::Location,
            "price_book" | "price_books" | "pricebook" | "pricebooks" | "pricelist"
            | "price_list" | "pricelists" | "price_lists" => EntityKind::PriceBook,
            "price_book_rate" | "price_book_rates" | "pricebookrate" | "pricebook_rate" => {
                EntityKind::PriceBookRate
            }
            "contact" | "contacts" | "customer" | "customers" | "vendor" | "vendors" => {
                EntityKind::Contact
            }
            "item_image" | "item_images" | "image" | "images" => EntityKind::ItemImage,
            "invoice" | "invoices" => EntityKind::Invoice,
            "sales_order" | "sales_orders" | "salesorder" | "salesorders" => EntityKind::SalesOrder,
            "bill" | "bills" => EntityKind::Bill,
            "customer_payment" | "customer_payments" | "customerpayment" | "customerpayments"
            | "payment" => EntityKind::CustomerPayment,
            "credit_note" | "credit_notes" | "creditnote" | "creditnotes" => EntityKind::CreditNote,
            "vendor_payment" | "vendor_payments" | "vendorpayment" | "vendorpayments" => {
                EntityKind::VendorPayment
            }
            "purchase_order" | "purchase_orders" | "purchaseorder" | "purchaseorders" => {
                EntityKind::PurchaseOrder
            }
            _ => {
                return Err(UnknownEntityKind {
                    given: s.to_string(),
                })
            }
        };
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_tables_are_unique() {
        let mut tables = std::collections::HashSet::new();
        for kind in EntityKind::ALL {
            assert_eq!(kind.as_str().parse::<EntityKind>(), Ok(kind));
            assert_eq!(kind.table().parse::<EntityKind>(), Ok(kind));
            assert!(
                tables.insert(kind.table()),
                "duplicate table {}",
                kind.table()
            );
        }
    }

    #[test]
    fn the_kind_table_is_in_variant_order_and_consistent() {
        for (i, kind) in [
            EntityKind::Item,
            EntityKind::ItemStock,
            EntityKind::Location,
            EntityKind::PriceBook,
            EntityKind::PriceBookRate,
            EntityKind::Contact,
            EntityKind::ItemImage,
            EntityKind::Invoice,
            EntityKind::SalesOrder,
            EntityKind::Bill,
            EntityKind::CustomerPayment,
            EntityKind::CreditNote,
            EntityKind::VendorPayment,
            EntityKind::PurchaseOrder,
        ]
        .into_iter()
        .enumerate()
        {
            let spec = &SPECS[i];
            assert_eq!(spec.kind, kind, "row {i}");
            // A kind is served by Zoho exactly when it has an id field and an endpoint.
            assert_eq!(
                spec.zoho_id_field.is_some(),
                spec.endpoint.is_some(),
                "{kind}"
            );
            assert_eq!(
                spec.completion == Completion::Derived,
                spec.endpoint.is_none(),
                "{kind}"
            );
            // Filtering or sorting by a time the records lack is impossible.
            if spec.modified_filter || spec.sorts_by_modified {
                assert!(spec.has_modified_time, "{kind}");
            }
            assert!(spec.heal_threshold > 0, "{kind}");
            assert_eq!(spec.compared, spec.endpoint.is_some(), "{kind}");
        }
        assert_eq!(EntityKind::ALL.len(), SPECS.len());
    }

    #[test]
    fn serde_names_are_the_stable_names() {
        for kind in EntityKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn unknown_kind_lists_valid_ones() {
        let err = "widgets".parse::<EntityKind>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"widgets\""), "{msg}");
        assert!(
            msg.contains("sales_order") && msg.contains("item_stock"),
            "{msg}"
        );
    }
}
