//! The sync core: applies Zoho changes to PostgreSQL.
//!
//! One write path, [`writer::EntityWriter`] (parse → versioned rows → upsert or tombstone → child
//! rows such as stock and price-book rates → events), used by one service per job:
//! - [`inbox::Processor`]: the inbox applier (entity-processor) — dedupes webhooks against receipts,
//!   completes what webhooks leave out by re-fetching through the shared budget, writes, and sorts each
//!   message into done, retry later, or dead-lettered with its reason; sync jobs go to the runner;
//! - [`runner::SyncRunner`]: sync runs and their page/details jobs ([`pages`]), with [`images::ImageSync`];
//! - [`comparator::Comparator`]: record-by-record comparison and heal ([`compare`] holds the pure diff);
//! - [`stock::StockPoller`]: per-warehouse stock.
//!
//! [`app::App`] builds them from the ports and the typed [`app::Settings`]. The crate knows ports,
//! the store and the Zoho client; it knows nothing about Lambda, SQS or SQL.

pub mod app;
pub mod comparator;
pub mod compare;
pub mod images;
pub mod inbox;
pub mod jobs;
pub mod pages;
pub mod runner;
pub mod stats;
pub mod stock;
pub mod writer;

use chrono::Utc;
use serde_json::Value;
use tds_core::ports::{DomainEvent, EventBus};
use tds_core::{Document, EntityKind};
use tds_store::StoreError;
use tds_zoho::{ZohoClient, ZohoError};

pub use app::{App, Settings};
pub use comparator::Comparator;
pub use inbox::Processor;
pub use jobs::{StartSync, SyncJob, SyncMode, SyncSettings};
pub use runner::{JobVerdict, SyncRunner};
pub use writer::EntityWriter;

/// A message as the queue delivered it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Queue message id (what a batch item failure names).
    pub message_id: String,
    /// The raw body.
    pub body: String,
}

impl From<&tds_core::ports::ReceivedMessage> for Incoming {
    fn from(m: &tds_core::ports::ReceivedMessage) -> Self {
        Incoming {
            message_id: m.message_id.clone(),
            body: m.body.clone(),
        }
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Applied (or a duplicate of something applied): delete it.
    Done,
    /// A retriable failure: leave it for the queue to redeliver (and, after maxReceiveCount, dead-letter).
    Retry(String),
    /// Can never be processed: sent to the dead-letter queue with the reason.
    DeadLettered(String),
}

/// Why something could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying later (Zoho or the database unavailable, rate limited, ...).
    Retry(String),
    /// Will never succeed as it is (bad input, unknown organisation, ...).
    Permanent(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry(r) => write!(f, "{r} (retriable)"),
            Failure::Permanent(r) => f.write_str(r),
        }
    }
}

impl From<ZohoError> for Failure {
    fn from(e: ZohoError) -> Self {
        if e.is_retriable() {
            Failure::Retry(e.to_string())
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if e.is_retriable() {
            Failure::Retry(e.to_string())
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

/// A string field of a Zoho record (ids come as strings or numbers); `None` when absent or empty.
pub(crate) fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A decimal field of a Zoho record, read as the models read it (`5.000000`, `"5.0"`, `""`), normalised.
pub(crate) fn decimal(kind: EntityKind, v: &Value, key: &str) -> Option<rust_decimal::Decimal> {
    tds_core::fields::Fields::new(kind, v)
        .ok()?
        .opt_decimal(key)
        .ok()
        .flatten()
        .map(|d| d.normalize())
}

/// A domain event stamped now.
pub(crate) fn event(detail_type: &str, detail: Value) -> DomainEvent {
    DomainEvent {
        detail_type: detail_type.into(),
        detail,
        time: Utc::now(),
    }
}

/// Publishes `events` (nothing when empty); a failure is logged, never fatal: the rows are written.
pub(crate) async fn publish(bus: &dyn EventBus, events: Vec<DomainEvent>) {
    if events.is_empty() {
        return;
    }
    if let Err(e) = bus.publish(events).await {
        tracing::error!(error = %e, "events could not be published");
    }
}

/// The organisations a request names: the one given (which must be configured), or every configured one.
/// An organisation not configured yet is looked up again in the credentials document first, and
/// the whole list is refreshed when its copy is old, so a warm process follows changes.
pub(crate) async fn organisations(
    zoho: &ZohoClient,
    org: Option<&str>,
) -> Result<Vec<String>, Failure> {
    match org {
        Some(org) => {
            zoho.ensure_org(org).await.map_err(|e| match e {
                tds_zoho::ZohoError::UnknownOrganization(_) => Failure::Permanent(e.to_string()),
                other => Failure::from(other),
            })?;
            Ok(vec![org.to_string()])
        }
        None => {
            zoho.refresh_orgs().await?;
            Ok(zoho.org_ids())
        }
    }
}

/// Whether a webhook payload of `kind` lacks what the detail GET has (Zoho's webhooks omit line items,
/// and contacts' lists omit addresses and credit limits).
pub(crate) fn needs_refetch(kind: EntityKind, payload: &Value) -> bool {
    // A payload of a kind Zoho times but without that time would be versioned by its arrival,
    // which outranks every later sync of the record: read it again instead.
    let zoho_time = payload
        .get("last_modified_time")
        .and_then(Value::as_str)
        .and_then(tds_core::fields::parse_zoho_timestamp);
    if kind.has_zoho_modified_time() && zoho_time.is_none() {
        return true;
    }
    // A time in the future is a claim, not Zoho's version: it would pin the row. Read it again.
    let tolerance = chrono::Duration::from_std(tds_store::FUTURE_TOLERANCE).unwrap_or_default();
    if zoho_time.is_some_and(|t| t > chrono::Utc::now() + tolerance) {
        return true;
    }
    match kind {
        EntityKind::Contact => payload.get("billing_address").is_none(),
        EntityKind::Invoice
        | EntityKind::SalesOrder
        | EntityKind::Bill
        | EntityKind::CreditNote
        | EntityKind::PurchaseOrder => Document::read(kind, payload)
            .map(|d| d.needs_detail())
            .unwrap_or(true),
        // A price book's rates come only with its complete record (`pricebook_items`).
        EntityKind::PriceBook => payload.get("pricebook_items").is_none(),
        _ => false,
    }
}

/// The message a dead letter written by [`inbox::Processor`] carries (`original`), or `body` itself when it
/// is not such a wrapper (an inbox message, a sync job, or a raw body SQS moved after too many
/// receives).
pub fn unwrap_dead_letter(body: &str) -> std::borrow::Cow<'_, str> {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        original: String,
        #[allow(dead_code)]
        reason: serde::de::IgnoredAny,
        #[allow(dead_code)]
        failed_at: serde::de::IgnoredAny,
    }
    match serde_json::from_str::<Wrapper>(body) {
        Ok(w) => std::borrow::Cow::Owned(w.original),
        Err(_) => std::borrow::Cow::Borrowed(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_that_lack_what_the_detail_get_has_are_read_again() {
        let t = "2026-01-05T10:00:00+0530";
        // Without Zoho's time, a timed kind is read again (its arrival would outrank later syncs).
        assert!(needs_refetch(
            EntityKind::Invoice,
            &json!({"invoice_id": "1"})
        ));
        // Contacts without addresses, price books without rates.
        assert!(needs_refetch(
            EntityKind::Contact,
            &json!({"contact_id": "1", "last_modified_time": t})
        ));
        assert!(!needs_refetch(
            EntityKind::Contact,
            &json!({"contact_id": "1", "last_modified_time": t, "billing_address": {}})
        ));
        assert!(needs_refetch(
            EntityKind::PriceBook,
            &json!({"pricebook_id": "1"})
        ));
        assert!(!needs_refetch(
            EntityKind::PriceBook,
            &json!({"pricebook_id": "1", "pricebook_items": []})
        ));
        // Locations are complete as listed and carry no time.
        assert!(!needs_refetch(
            EntityKind::Location,
            &json!({"location_id": "1"})
        ));
    }

    #[test]
    fn a_dead_letter_is_unwrapped_to_what_it_carries() {
        let wrapped = json!({"reason": "r", "failed_at": "t", "original": "{\"a\":1}"}).to_string();
        assert_eq!(unwrap_dead_letter(&wrapped), "{\"a\":1}");
        assert_eq!(unwrap_dead_letter("{\"a\":1}"), "{\"a\":1}");
        assert_eq!(unwrap_dead_letter("not json"), "not json");
    }

    #[test]
    fn inbox_bodies_parse_once_into_what_they_are() {
        use crate::inbox::InboxBody;
        let job = SyncJob::Start(StartSync {
            org_id: None,
            entities: vec!["all".into()],
            mode: SyncMode::Full,
            trigger: tds_core::Trigger::Test,
        });
        assert!(matches!(InboxBody::parse(&job.to_body()), InboxBody::Sync(j) if j == job));
        assert!(matches!(
            InboxBody::parse(r#"{"sync": {"type": "nope"}}"#),
            InboxBody::Unreadable(r) if r.starts_with("not a sync job")
        ));
        assert!(matches!(
            InboxBody::parse("nope"),
            InboxBody::Unreadable(r) if r.starts_with("not an inbox message")
        ));
        assert!(matches!(
            InboxBody::parse(r#"{"org_id": "1"}"#),
            InboxBody::Unreadable(r) if r.starts_with("not an inbox message")
        ));
    }
}
