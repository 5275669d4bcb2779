//! The CPU part of a write: Zoho records of one kind parsed, versioned and split into rows and child
//! rows ([`Prepared`]), touching no database, so it can run while a transaction's BEGIN is on its way.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tds_core::{parse_entity, AnyEntity, Entity, EntityKind, ItemStock, VersionedRow};

use super::Written;

/// Polls `future` once: its output if it is done already, else `None` (awaiting it again goes on
/// from there). A transaction's BEGIN is sent this way before CPU work, so its round trip overlaps it.
pub(crate) async fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut *future).poll(cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// Records of one kind parsed and versioned with their child rows, ready for
/// [`super::WriteBatch::write_prepared`]: the CPU part of a write, which touches no database (so it
/// can run while a transaction's BEGIN is on its way).
pub struct Prepared {
    pub(super) org: String,
    /// One slot per record given: `Err` with the reason for a record that did not parse.
    pub(super) written: Written,
    /// The slot of each row in `rows`.
    pub(super) slots: Vec<usize>,
    pub(super) rows: Vec<VersionedRow<AnyRow>>,
    pub(super) stock: Vec<VersionedRow<ItemStock>>,
    pub(super) rates: Vec<VersionedRow<tds_core::PriceBookRate>>,
    pub(super) books_with_rates: Vec<String>,
    pub(super) items_with_stock: Vec<String>,
}

impl Prepared {
    /// Parses `records` of `kind` for organisation `org`, each versioned by the time TDS observed it
    /// where Zoho gives none; a record that does not parse is logged and reported in its slot.
    pub fn new(org: &str, kind: EntityKind, records: Vec<(Value, DateTime<Utc>)>) -> Prepared {
        let mut p = Prepared {
            org: org.to_string(),
            written: Written {
                records: Vec::with_capacity(records.len()),
            },
            slots: Vec::with_capacity(records.len()),
            rows: Vec::with_capacity(records.len()),
            stock: Vec::new(),
            rates: Vec::new(),
            books_with_rates: Vec::new(),
            items_with_stock: Vec::new(),
        };
        for (slot, (record, observed)) in records.into_iter().enumerate() {
            p.written.records.push(Err(String::new()));
            match parse_entity(kind, record) {
                Ok(AnyEntity::Item(item)) => {
                    if item.stock_shape.is_some() {
                        p.items_with_stock.push(item.item_id.clone());
                    }
                    p.stock.extend(
                        item.stock_rows()
                            .into_iter()
                            .map(|s| VersionedRow::new(org, s, observed)),
                    );
                    p.rows.push(VersionedRow::new(
                        org,
                        AnyRow(AnyEntity::Item(item)),
                        observed,
                    ));
                }
                Ok(AnyEntity::PriceBook(book)) => {
                    if book.rates.is_some() {
                        p.books_with_rates.push(book.pricebook_id.clone());
                    }
                    p.rates.extend(
                        book.rates
                            .iter()
                            .flatten()
                            .map(|r| VersionedRow::new(org, r.clone(), observed)),
                    );
                    p.rows.push(VersionedRow::new(
                        org,
                        AnyRow(AnyEntity::PriceBook(book)),
                        observed,
                    ));
                }
                Ok(entity) => p
                    .rows
                    .push(VersionedRow::new(org, AnyRow(entity), observed)),
                Err(e) => {
                    tracing::warn!(org, %kind, error = %e, "record skipped: it does not parse");
                    p.written.records[slot] = Err(e.to_string());
                    continue;
                }
            }
            p.slots.push(slot);
        }
        p
    }
}

/// Any parsed entity as a store row (so one batch can hold the kind the group has).
#[derive(Debug, Clone)]
pub(super) struct AnyRow(AnyEntity);

impl AnyRow {
    fn inner(&self) -> &dyn Entity {
        match &self.0 {
            AnyEntity::Item(i) => i.as_ref(),
            AnyEntity::Location(l) => l,
            AnyEntity::PriceBook(p) => p,
            AnyEntity::Contact(c) => c,
            AnyEntity::Document(d) => d,
        }
    }
}

impl Entity for AnyRow {
    fn kind(&self) -> EntityKind {
        self.inner().kind()
    }
    fn zoho_id(&self) -> String {
        self.inner().zoho_id()
    }
    fn last_modified_time(&self) -> Option<DateTime<Utc>> {
        self.inner().last_modified_time()
    }
    fn record(&self) -> &Value {
        self.inner().record()
    }
    fn write_columns(&self, sink: &mut dyn tds_core::ColumnSink) {
        self.inner().write_columns(sink)
    }
}
