//! Typed entities parsed leniently from Zoho records, one per entity kind, each keeping the original
//! record beside its typed fields. [`parse_entity`] picks the parser by kind.

mod catalog;
mod item;
mod party;

pub use catalog::{ItemImage, Location, PriceBook, PriceBookRate};
pub use item::{Item, ItemStock, LocationStock, StockShape};
pub use party::{Contact, Document};

use serde_json::Value;

use crate::{EntityKind, ParseError};

/// Any parsed Zoho record, tagged by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEntity {
    /// An item.
    Item(Box<Item>),
    /// A location or warehouse.
    Location(Location),
    /// A price book.
    PriceBook(PriceBook),
    /// A customer or vendor.
    Contact(Contact),
    /// A transaction document.
    Document(Document),
}

/// Parses a record of `kind` as Zoho sends it. Derived kinds (stock, price-book rates, images) come
/// from their parent records and are refused here with an error naming the parent to parse instead.
pub fn parse_entity(kind: EntityKind, record: Value) -> Result<AnyEntity, ParseError> {
    let derived = |parent: &str| ParseError {
        kind,
        id: None,
        field: "(kind)".into(),
        problem: format!("is derived from {parent} records; parse those instead"),
    };
    Ok(match kind {
        EntityKind::Item => AnyEntity::Item(Box::new(Item::parse(record)?)),
        EntityKind::Location => AnyEntity::Location(Location::parse(record)?),
        EntityKind::PriceBook => AnyEntity::PriceBook(PriceBook::parse(record)?),
        EntityKind::Contact => AnyEntity::Contact(Contact::parse(record)?),
        EntityKind::ItemStock | EntityKind::ItemImage => return Err(derived("item")),
        EntityKind::PriceBookRate => return Err(derived("price book")),
        EntityKind::Invoice
        | EntityKind::SalesOrder
        | EntityKind::Bill
        | EntityKind::CustomerPayment
        | EntityKind::CreditNote
        | EntityKind::VendorPayment
        | EntityKind::PurchaseOrder => AnyEntity::Document(Document::parse(kind, record)?),
    })
}
