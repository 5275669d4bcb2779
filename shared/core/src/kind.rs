//! The entity kinds TDS keeps in step with Zoho, and the names each one goes by
//! (CLI/API name, PostgreSQL table, Zoho id field, webhook wrapper key).

use std::fmt;
use std::str::FromStr;

/// One kind of record TDS syncs from Zoho into its own PostgreSQL table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
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
        match self {
            EntityKind::Item => "item",
            EntityKind::ItemStock => "item_stock",
            EntityKind::Location => "location",
            EntityKind::PriceBook => "price_book",
            EntityKind::PriceBookRate => "price_book_rate",
            EntityKind::Contact => "contact",
            EntityKind::ItemImage => "item_image",
            EntityKind::Invoice => "invoice",
            EntityKind::SalesOrder => "sales_order",
            EntityKind::Bill => "bill",
            EntityKind::CustomerPayment => "customer_payment",
            EntityKind::CreditNote => "credit_note",
            EntityKind::VendorPayment => "vendor_payment",
            EntityKind::PurchaseOrder => "purchase_order",
        }
    }

    /// The PostgreSQL table holding this kind (see `migrations/`).
    pub fn table(self) -> &'static str {
        match self {
            EntityKind::Item => "items",
            EntityKind::ItemStock => "item_stock",
            EntityKind::Location => "locations",
            EntityKind::PriceBook => "price_books",
            EntityKind::PriceBookRate => "price_book_rates",
            EntityKind::Contact => "contacts",
            EntityKind::ItemImage => "item_images",
            EntityKind::Invoice => "invoices",
            EntityKind::SalesOrder => "sales_orders",
            EntityKind::Bill => "bills",
            EntityKind::CustomerPayment => "customer_payments",
            EntityKind::CreditNote => "credit_notes",
            EntityKind::VendorPayment => "vendor_payments",
            EntityKind::PurchaseOrder => "purchase_orders",
        }
    }

    /// The field carrying Zoho's id in this kind's records, for kinds that are Zoho records of their own.
    ///
    /// Derived kinds (stock, price-book rates, images) have composite ids built by TDS and return `None`.
    pub fn zoho_id_field(self) -> Option<&'static str> {
        match self {
            EntityKind::Item => Some("item_id"),
            EntityKind::Location => Some("location_id"),
            EntityKind::PriceBook => Some("pricebook_id"),
            EntityKind::Contact => Some("contact_id"),
            EntityKind::Invoice => Some("invoice_id"),
            EntityKind::SalesOrder => Some("salesorder_id"),
            EntityKind::Bill => Some("bill_id"),
            EntityKind::CustomerPayment => Some("payment_id"),
            EntityKind::CreditNote => Some("creditnote_id"),
            EntityKind::VendorPayment => Some("payment_id"),
            EntityKind::PurchaseOrder => Some("purchaseorder_id"),
            EntityKind::ItemStock | EntityKind::PriceBookRate | EntityKind::ItemImage => None,
        }
    }

    /// Whether Zoho's records of this kind carry `last_modified_time` (so rows are versioned by it).
    ///
    /// Kinds without it (locations, price books, stock, rates, images) are versioned by the time TDS
    /// observed them in Zoho, which is monotonic for one poller and safe against late replays.
    pub fn has_zoho_modified_time(self) -> bool {
        !matches!(
            self,
            EntityKind::Location
                | EntityKind::PriceBook
                | EntityKind::PriceBookRate
                | EntityKind::ItemStock
                | EntityKind::ItemImage
        )
    }
}

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
