//! The sync core: applies Zoho changes to PostgreSQL.
//!
//! Owns what entity-processor does with a batch of inbox messages: dedupe them against webhook receipts,
//! complete what Zoho's webhooks leave out by re-fetching through the shared budget (items in bulk by
//! `/itemdetails`, with their stock per location; documents without line items and contacts by their
//! detail GET; a 404 / code 1002 there means the record is gone and becomes a tombstone), write every
//! kind with the version-gated batch upsert, tombstone deletions, publish `tds.entity.synced` for what
//! changed, and sort each message into done, retry later, or dead-lettered with its reason. It knows
//! ports, the store and the Zoho client; it knows nothing about Lambda or SQS.

pub mod compare;
pub mod jobs;
pub mod stats;
pub mod stock;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::Row;
use tds_core::ports::{BlobStore, DomainEvent, EventBus, Queue};
use tds_core::webhook::{Action, InboxMessage};
use tds_core::{parse_entity, AnyEntity, Document, Entity, EntityKind, VersionedRow};
use tds_store::upsert::Tombstone;
use tds_store::{BatchReport, Store, StoreError};
use tds_zoho::{Priority, ZohoClient, ZohoError};

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

pub use jobs::{StartSync, SyncJob, SyncMode, SyncSettings};

/// The processor's dependencies.
pub struct Processor {
    store: Store,
    zoho: Arc<ZohoClient>,
    events: Arc<dyn EventBus>,
    dead_letters: Arc<dyn Queue>,
    inbox: Option<Arc<dyn Queue>>,
    blobs: Option<Arc<dyn BlobStore>>,
    settings: SyncSettings,
}

/// A message on its way through the batch.
struct Work {
    index: usize,
    message: InboxMessage,
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

impl Processor {
    /// A processor writing to `store`, re-fetching through `zoho`, publishing to `events`, and
    /// dead-lettering to `dead_letters`.
    pub fn new(
        store: Store,
        zoho: Arc<ZohoClient>,
        events: Arc<dyn EventBus>,
        dead_letters: Arc<dyn Queue>,
    ) -> Processor {
        Processor {
            store,
            zoho,
            events,
            dead_letters,
            inbox: None,
            blobs: None,
            settings: SyncSettings::default(),
        }
    }

    /// The inbox the processor enqueues sync jobs on (needed for scheduled syncs).
    pub fn with_inbox(mut self, inbox: Arc<dyn Queue>) -> Processor {
        self.inbox = Some(inbox);
        self
    }

    /// Where item images are stored (needed for image syncs).
    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Processor {
        self.blobs = Some(blobs);
        self
    }

    /// Sync tuning.
    pub fn with_settings(mut self, settings: SyncSettings) -> Processor {
        self.settings = settings;
        self
    }

    /// The store the processor writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Processes a batch; one disposition per message, in order.
    pub async fn process(&self, batch: Vec<Incoming>) -> Vec<(String, Disposition)> {
        let mut out: Vec<Option<Disposition>> = vec![None; batch.len()];
        let mut work: Vec<Work> = Vec::new();
        let started = std::time::Instant::now();
        // A dead letter this processor wrapped, moved back by a redrive: process what it carried.
        let bodies: Vec<std::borrow::Cow<'_, str>> =
            batch.iter().map(|m| unwrap_dead_letter(&m.body)).collect();
        for (index, body) in bodies.iter().map(|b| b.as_ref()).enumerate() {
            if let Some(job) = sync_job(body) {
                out[index] = Some(match job {
                    Ok(_) if started.elapsed() > self.settings.job_time_budget => {
                        self.defer_job(body).await
                    }
                    Ok(job) => self.handle_job(body, job).await,
                    Err(e) => {
                        self.dead_letter(body, &format!("not a sync job: {e}"))
                            .await
                    }
                });
                continue;
            }
            match serde_json::from_str::<InboxMessage>(body) {
                Ok(message) => work.push(Work { index, message }),
                Err(e) => {
                    out[index] = Some(
                        self.dead_letter(body, &format!("not an inbox message: {e}"))
                            .await,
                    );
                }
            }
        }

        // Duplicates of messages already applied (or earlier in this batch) are done.
        let mut fresh = Vec::new();
        match self.receive_all(&work, &batch).await {
            Ok(unprocessed) => {
                let mut seen = std::collections::HashSet::new();
                for w in work {
                    if unprocessed.contains(&w.message.dedupe_key)
                        && seen.insert(w.message.dedupe_key.clone())
                    {
                        fresh.push(w);
                    } else {
                        out[w.index] = Some(Disposition::Done);
                    }
                }
            }
            Err(e) => {
                for w in work {
                    out[w.index] = Some(Disposition::Retry(e.to_string()));
                }
            }
        }

        // One group per (organisation, kind): re-fetches and writes are batched per group.
        let mut groups: BTreeMap<(String, EntityKind), Vec<Work>> = BTreeMap::new();
        for w in fresh {
            groups
                .entry((w.message.org_id.clone(), w.message.kind))
                .or_default()
                .push(w);
        }
        let mut events = Vec::new();
        let mut processed: Vec<(String, String)> = Vec::new();
        for ((org, kind), items) in groups {
            let results = self.apply_group(&org, kind, &items, &mut events).await;
            for (w, result) in items.iter().zip(results) {
                let disposition = match result {
                    Ok(outcome) => {
                        processed.push((w.message.dedupe_key.clone(), outcome));
                        Disposition::Done
                    }
                    Err(Failure::Retry(reason)) => Disposition::Retry(reason),
                    Err(Failure::Permanent(reason)) => {
                        self.dead_letter(&bodies[w.index], &reason).await
                    }
                };
                out[w.index] = Some(disposition);
            }
        }
        if let Err(e) = self.mark_processed(&processed).await {
            // The rows are written; an unmarked receipt only means a redelivery is re-applied (a no-op).
            tracing::warn!(error = %e, "webhook receipts not marked processed");
        }
        if !events.is_empty() {
            if let Err(e) = self.events.publish(events).await {
                // The rows are written; a retry would find them unchanged and publish nothing.
                tracing::error!(error = %e, "tds.entity.synced events could not be published");
            }
        }
        batch
            .iter()
            .zip(out)
            .map(|(m, d)| {
                (
                    m.message_id.clone(),
                    d.unwrap_or(Disposition::Retry("unprocessed".into())),
                )
            })
            .collect()
    }

    /// Records the receipts of a batch in one statement; returns the dedupe keys not yet applied.
    async fn receive_all(
        &self,
        work: &[Work],
        batch: &[Incoming],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let err = |source| StoreError::Database {
            operation: "webhook receipts",
            source,
        };
        let (mut orgs, mut kinds, mut ids, mut actions, mut keys) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut times = Vec::new();
        let mut message_ids = Vec::new();
        let mut received = Vec::new();
        for w in work {
            let m = &w.message;
            orgs.push(&m.org_id);
            kinds.push(m.kind.as_str());
            ids.push(&m.zoho_id);
            actions.push(match m.action {
                Action::Created => "created",
                Action::Edited => "edited",
                Action::Upserted => "upserted",
                Action::Deleted => "deleted",
            });
            keys.push(&m.dedupe_key);
            times.push(m.last_modified_time);
            message_ids.push(batch[w.index].message_id.as_str());
            received.push(m.received_at);
        }
        let rows = sqlx::query(
            "INSERT INTO tds_webhook_receipts (org_id, entity, zoho_id, action, dedupe_key, last_modified_time, message_id, received_at)
             SELECT DISTINCT ON (dedupe_key) * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                                          $6::timestamptz[], $7::text[], $8::timestamptz[])
                  AS t(org_id, entity, zoho_id, action, dedupe_key, last_modified_time, message_id, received_at)
             ON CONFLICT (dedupe_key) DO UPDATE SET message_id = EXCLUDED.message_id
             RETURNING dedupe_key, processed_at",
        )
        .bind(orgs)
        .bind(kinds)
        .bind(ids)
        .bind(actions)
        .bind(keys)
        .bind(times)
        .bind(message_ids)
        .bind(received)
        .fetch_all(self.store.pool())
        .await
        .map_err(err)?;
        let mut unprocessed = std::collections::HashSet::new();
        for r in rows {
            let key: String = r.try_get("dedupe_key").map_err(err)?;
            let at: Option<DateTime<Utc>> = r.try_get("processed_at").map_err(err)?;
            if at.is_none() {
                unprocessed.insert(key);
            }
        }
        Ok(unprocessed)
    }

    /// Marks applied receipts, with their outcome, in one statement.
    async fn mark_processed(&self, done: &[(String, String)]) -> Result<(), sqlx::Error> {
        if done.is_empty() {
            return Ok(());
        }
        let (keys, outcomes): (Vec<&str>, Vec<&str>) =
            done.iter().map(|(k, o)| (k.as_str(), o.as_str())).unzip();
        sqlx::query(
            "UPDATE tds_webhook_receipts r SET processed_at = clock_timestamp(), outcome = u.outcome
             FROM UNNEST($1::text[], $2::text[]) AS u(dedupe_key, outcome) WHERE r.dedupe_key = u.dedupe_key",
        )
        .bind(keys)
        .bind(outcomes)
        .execute(self.store.pool())
        .await
        .map(|_| ())
    }

    /// Sends `body` to the dead-letter queue as `{"reason", "failed_at", "original": body}`; a
    /// redrive moves that back to the inbox, where [`unwrap_dead_letter`] recovers `body`.
    async fn dead_letter(&self, body: &str, reason: &str) -> Disposition {
        let wrapped =
            json!({"reason": reason, "failed_at": Utc::now(), "original": body}).to_string();
        match self.dead_letters.send(wrapped).await {
            Ok(_) => {
                tracing::warn!(%reason, "message dead-lettered");
                publish(
                    &*self.events,
                    vec![event("tds.deadletter.added", json!({"reason": reason}))],
                )
                .await;
                Disposition::DeadLettered(reason.to_string())
            }
            // Not lost: the queue redelivers it and redrive moves it after maxReceiveCount.
            Err(e) => Disposition::Retry(format!("dead-letter queue unavailable ({e}); {reason}")),
        }
    }

    /// Applies one (organisation, kind) group; one result (an outcome label) per message.
    async fn apply_group(
        &self,
        org: &str,
        kind: EntityKind,
        items: &[Work],
        events: &mut Vec<DomainEvent>,
    ) -> Vec<Result<String, Failure>> {
        let mut results: Vec<Option<Result<String, Failure>>> =
            (0..items.len()).map(|_| None).collect();
        let mut deletions: Vec<(usize, Tombstone)> = Vec::new();
        let mut records: Vec<(usize, Value)> = Vec::new();

        // Complete the payloads.
        let upserts: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].message.action != Action::Deleted)
            .collect();
        for (i, w) in items.iter().enumerate() {
            if w.message.action == Action::Deleted {
                deletions.push((i, tombstone(&w.message)));
            }
        }
        match kind {
            EntityKind::Item if !upserts.is_empty() => {
                let ids: Vec<String> = upserts
                    .iter()
                    .map(|&i| items[i].message.zoho_id.clone())
                    .collect();
                match self.zoho.item_details(org, &ids, Priority::Webhook).await {
                    Ok(found) => {
                        let by_id: HashMap<String, Value> = found
                            .into_iter()
                            .map(|item| (item.item_id.clone(), item.record))
                            .collect();
                        for &i in &upserts {
                            match by_id.get(&items[i].message.zoho_id) {
                                Some(record) => records.push((i, record.clone())),
                                // Not returned by /itemdetails: deleted in Zoho since the webhook.
                                None => deletions.push((i, gone_now(&items[i].message))),
                            }
                        }
                    }
                    Err(e) => {
                        let f = Failure::from(e);
                        for &i in &upserts {
                            results[i] = Some(Err(f.clone()));
                        }
                    }
                }
            }
            _ => {
                for &i in &upserts {
                    let m = &items[i].message;
                    if !needs_refetch(kind, &m.payload) {
                        records.push((i, m.payload.clone()));
                        continue;
                    }
                    match self
                        .zoho
                        .get_record(org, kind, &m.zoho_id, Priority::Webhook)
                        .await
                    {
                        Ok(record) => records.push((i, record)),
                        Err(e) if e.is_not_found() => deletions.push((i, gone_now(m))),
                        Err(e) => results[i] = Some(Err(Failure::from(e))),
                    }
                }
            }
        }

        // Parse and write.
        let mut rows: Vec<(usize, VersionedRow<AnyRow>)> = Vec::new();
        let mut stock = Vec::new();
        for (i, record) in records {
            let observed = items[i].message.received_at;
            match parse_entity(kind, record) {
                Ok(AnyEntity::Item(item)) => {
                    for s in item.stock_rows() {
                        stock.push(VersionedRow::new(org, s, observed));
                    }
                    rows.push((
                        i,
                        VersionedRow::new(org, AnyRow(AnyEntity::Item(item)), observed),
                    ));
                }
                Ok(entity) => rows.push((i, VersionedRow::new(org, AnyRow(entity), observed))),
                Err(e) => results[i] = Some(Err(Failure::Permanent(e.to_string()))),
            }
        }
        if !rows.is_empty() {
            let batch: Vec<VersionedRow<AnyRow>> = rows.iter().map(|(_, r)| r.clone()).collect();
            match self.store.upsert(&batch).await {
                Ok(report) => {
                    collect_events(&report, events);
                    for ((i, _), outcome) in rows.iter().zip(report.rows.iter()) {
                        results[*i] = Some(Ok(format!("{:?}", outcome.outcome)));
                    }
                    if !stock.is_empty() {
                        match self.store.upsert(&stock).await {
                            Ok(report) => collect_events(&report, events),
                            Err(e) => {
                                // The item rows are written, their stock is not: the messages go
                                // back for a redelivery, which finds the items unchanged and writes
                                // the stock (nothing half-written is acknowledged).
                                tracing::warn!(org, error = %e, "stock rows not written; retrying");
                                let f = Failure::from(e);
                                for (i, _) in &rows {
                                    results[*i] = Some(Err(f.clone()));
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    let f = Failure::from(e);
                    for (i, _) in &rows {
                        results[*i] = Some(Err(f.clone()));
                    }
                }
            }
        }
        if !deletions.is_empty() {
            let tombstones: Vec<Tombstone> = deletions.iter().map(|(_, t)| t.clone()).collect();
            match self.store.tombstone(kind, &tombstones).await {
                Ok(report) => {
                    collect_events(&report, events);
                    for ((i, _), outcome) in deletions.iter().zip(report.rows.iter()) {
                        results[*i] = Some(Ok(format!("{:?}", outcome.outcome)));
                    }
                }
                Err(e) => {
                    let f = Failure::from(e);
                    for (i, _) in &deletions {
                        results[*i] = Some(Err(f.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Failure::Retry("not applied".into()))))
            .collect()
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
pub(crate) fn organisations(zoho: &ZohoClient, org: Option<&str>) -> Result<Vec<String>, Failure> {
    match org {
        Some(org) => {
            zoho.org(org)
                .map_err(|e| Failure::Permanent(e.to_string()))?;
            Ok(vec![org.to_string()])
        }
        None => Ok(zoho.org_ids()),
    }
}

/// `Some` when the body is a sync job (`{"sync": {...}}`), parsed or with the reason it is not valid.
fn sync_job(body: &str) -> Option<Result<SyncJob, serde_json::Error>> {
    let value: Value = serde_json::from_str(body).ok()?;
    let job = value.get("sync")?;
    Some(serde_json::from_value(job.clone()))
}

/// The tombstone of a Deleted webhook: deleted when Zoho said so.
fn tombstone(m: &InboxMessage) -> Tombstone {
    Tombstone {
        org_id: m.org_id.clone(),
        zoho_id: m.zoho_id.clone(),
        deleted_at: m.received_at,
    }
}

/// The tombstone of a record a re-fetch found gone: deleted as of now, not as of the webhook (a
/// retried message may be older than a version a sync stored meanwhile).
fn gone_now(m: &InboxMessage) -> Tombstone {
    Tombstone {
        deleted_at: Utc::now(),
        ..tombstone(m)
    }
}

/// Whether a webhook payload of `kind` lacks what the detail GET has (Zoho's webhooks omit line items,
/// and contacts' lists omit addresses and credit limits).
fn needs_refetch(kind: EntityKind, payload: &Value) -> bool {
    // A payload of a kind Zoho times but without that time would be versioned by its arrival,
    // which outranks every later sync of the record: read it again instead.
    let zoho_time = payload
        .get("last_modified_time")
        .and_then(Value::as_str)
        .and_then(tds_core::fields::parse_zoho_timestamp);
    if kind.has_zoho_modified_time() && zoho_time.is_none() {
        return true;
    }
    match kind {
        EntityKind::Contact => payload.get("billing_address").is_none(),
        EntityKind::Invoice
        | EntityKind::SalesOrder
        | EntityKind::Bill
        | EntityKind::CreditNote
        | EntityKind::PurchaseOrder => Document::parse(kind, payload.clone())
            .map(|d| d.needs_detail())
            .unwrap_or(true),
        _ => false,
    }
}

fn collect_events(report: &BatchReport, events: &mut Vec<DomainEvent>) {
    for row in report.rows.iter().filter(|r| r.outcome.is_change()) {
        events.push(DomainEvent {
            detail_type: "tds.entity.synced".into(),
            detail: json!({
                "org_id": row.org_id,
                "kind": report.kind,
                "zoho_id": row.zoho_id,
                "outcome": format!("{:?}", row.outcome).to_lowercase(),
            }),
            time: Utc::now(),
        });
    }
}

/// Any parsed entity as a store row (so one batch can hold the kind the group has).
#[derive(Debug, Clone)]
struct AnyRow(AnyEntity);

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

/// The message a dead letter written by [`Processor`] carries (`original`), or `body` itself when it
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
