//! The one write path: every change TDS makes to entity rows goes through [`EntityWriter`], whoever
//! found it (a webhook, a sync page, a heal, the stock poller, an image download).
//!
//! For a batch of Zoho records of one kind it parses each record, versions it, writes the rows with
//! the version-gated upsert, writes the child rows the record carries (an item's stock per location,
//! a price book's rates, tombstoning the rates a complete book no longer lists) and publishes the
//! events of what changed: `tds.entity.synced` for every changed row, and for a changed stock row
//! `tds.stock.changed` too, so a subscriber sees the same events whichever path wrote the row.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tds_core::metrics::{Dim, Metric, Metrics};
use tds_core::ports::{DomainEvent, EventBus};
use tds_core::{Entity, EntityKind, ItemStock, VersionedRow};
use tds_store::upsert::Tombstone;
use tds_store::{BatchReport, Outcome, Store, WriteTx};

use crate::Failure;

mod prepared;
pub(crate) use prepared::poll_once;
pub use prepared::Prepared;

/// How incoming records are versioned against stored rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A payload that arrived (a webhook): the version-gated upsert; at an equal version the stored
    /// row stays.
    Received,
    /// A record TDS has just read from Zoho: at an equal version a read at least as complete wins,
    /// and an old tombstone gives way (see `Store::upsert_fresh`).
    JustRead,
}

/// What a write did.
#[derive(Debug, Default, Clone)]
pub struct Written {
    /// One entry per record given, in order: its row's outcome, or why it did not parse.
    pub records: Vec<Result<Outcome, String>>,
}

impl Written {
    /// Records whose row changed.
    pub fn changed(&self) -> i64 {
        self.records
            .iter()
            .filter(|r| r.as_ref().is_ok_and(Outcome::is_change))
            .count() as i64
    }
    /// Records whose row did not change (already stored, or an older version).
    pub fn unchanged(&self) -> i64 {
        self.records
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|o| !o.is_change()))
            .count() as i64
    }
    /// Records that did not parse.
    pub fn failed(&self) -> i64 {
        self.records.iter().filter(|r| r.is_err()).count() as i64
    }
}

/// Writes parsed Zoho records, their child rows and tombstones, and publishes what changed.
#[derive(Clone)]
pub struct EntityWriter {
    store: Store,
    events: Arc<dyn EventBus>,
    /// When this process last drained the outbox.
    last_drain: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// Outbox ids this process published and has not yet forgotten.
    published: Arc<std::sync::Mutex<Vec<i64>>>,
    /// Where committed writes are counted (`EntitiesApplied`, `EntitiesUnchanged`, `EntitiesStale`).
    metrics: Metrics,
}

impl EntityWriter {
    /// A writer to `store` publishing to `events`.
    pub fn new(store: Store, events: Arc<dyn EventBus>) -> EntityWriter {
        EntityWriter {
            store,
            events,
            last_drain: Arc::default(),
            published: Arc::default(),
            metrics: Metrics::disabled(),
        }
    }

    /// Counts the rows of committed writes in `metrics`, by kind.
    pub fn with_metrics(mut self, metrics: Metrics) -> EntityWriter {
        self.metrics = metrics;
        self
    }

    /// The metrics this writer (and the services built on it) record in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The store written to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// [`EntityWriter::write`] for records just read from Zoho, observed now.
    pub async fn write_read(
        &self,
        org: &str,
        kind: EntityKind,
        records: Vec<Value>,
    ) -> Result<Written, Failure> {
        let now = Utc::now();
        let records = records.into_iter().map(|r| (r, now)).collect();
        self.write(org, kind, records, Freshness::JustRead).await
    }

    /// Parses and writes complete records of one kind, each with the time TDS observed it (its version
    /// where Zoho gives none), with their child rows, in one transaction (see [`WriteBatch::write`]),
    /// then publishes the events of what changed.
    pub async fn write(
        &self,
        org: &str,
        kind: EntityKind,
        records: Vec<(Value, DateTime<Utc>)>,
        freshness: Freshness,
    ) -> Result<Written, Failure> {
        let mut batch = self.begin().await?;
        let written = batch.write(org, kind, records, freshness).await?;
        batch.commit().await?;
        Ok(written)
    }

    /// Writes stock rows (item × location) in one transaction and publishes their events; returns
    /// each row's outcome.
    pub async fn write_stock(
        &self,
        rows: &[VersionedRow<ItemStock>],
    ) -> Result<Vec<(ItemStock, Outcome)>, Failure> {
        let mut batch = self.begin().await?;
        let out = batch.write_stock(rows).await?;
        batch.commit().await?;
        Ok(out)
    }

    /// Writes rows TDS built itself (image metadata) and publishes what changed.
    pub async fn write_rows<E: Entity>(
        &self,
        rows: &[VersionedRow<E>],
    ) -> Result<BatchReport, Failure> {
        let mut batch = self.begin().await?;
        let report = batch.tx.upsert(rows).await?;
        batch.note(&report);
        batch.commit().await?;
        Ok(report)
    }

    /// Records deletions and publishes what changed.
    pub async fn tombstone(
        &self,
        kind: EntityKind,
        deletions: &[Tombstone],
    ) -> Result<BatchReport, Failure> {
        if deletions.is_empty() {
            return Ok(nothing(kind));
        }
        let mut batch = self.begin().await?;
        let report = batch.tombstone(kind, deletions).await?;
        batch.commit().await?;
        Ok(report)
    }

    /// Tombstones rows Zoho no longer has, as of `at`; returns how many changed.
    pub async fn tombstone_ids(
        &self,
        org: &str,
        kind: EntityKind,
        ids: Vec<String>,
        at: DateTime<Utc>,
    ) -> Result<i64, Failure> {
        let report = self.tombstone(kind, &tombstones(org, ids, at)).await?;
        Ok(report.changed() as i64)
    }

    /// Opens a batch: writes that commit together, with their events published after the commit.
    pub async fn begin(&self) -> Result<WriteBatch<'_>, Failure> {
        Ok(WriteBatch {
            writer: self,
            tx: self.store.begin().await?,
            events: Vec::new(),
            receipts: Vec::new(),
            tally: BTreeMap::new(),
            spent: Vec::new(),
        })
    }

    /// Publishes `events` (nothing when empty); a failure is logged, never fatal: the rows are written.
    pub async fn publish(&self, events: Vec<DomainEvent>) {
        crate::publish(&*self.events, events).await
    }

    /// Publishes events staged in the outbox as row `batch`, then forgets the row; if the bus fails
    /// it stays for [`EntityWriter::drain_outbox`].
    async fn publish_staged(&self, events: Vec<DomainEvent>, batch: i64) {
        let count = events.len();
        match self.events.publish(events).await {
            // Forgotten by this process's next write (in the statement that stages its events);
            // should the process die first, the drain publishes them again (consumers dedupe on
            // event_id).
            Ok(()) => self.note_published(vec![batch]),
            Err(e) => {
                tracing::warn!(error = %e, events = count, "events not published yet: left in the outbox")
            }
        }
        self.maybe_drain().await;
    }

    /// Forgets what this process published, then publishes events whose publisher failed or died
    /// (staged more than five minutes ago), ten outbox rows (write batches) at a time, until none
    /// are left or the bus fails; returns how many events were published.
    pub async fn drain_outbox(&self) -> Result<usize, Failure> {
        let done = self.take_published();
        if let Err(e) = self.store.events_published(&done).await {
            self.note_published(done);
            return Err(e.into());
        }
        let mut published = 0;
        loop {
            // Ten rows at a time: a row holds one write batch's events.
            let staged = self.store.unpublished_events(300.0, 10).await?;
            if staged.is_empty() {
                return Ok(published);
            }
            let (ids, events): (Vec<i64>, Vec<Vec<DomainEvent>>) = staged.into_iter().unzip();
            let events: Vec<DomainEvent> = events.into_iter().flatten().collect();
            let count = events.len();
            self.events
                .publish(events)
                .await
                .map_err(|e| Failure::Retry(format!("event bus: {e}")))?;
            self.store.events_published(&ids).await?;
            published += count;
        }
    }

    /// Outbox rows whose events were published, to forget with the next write.
    fn note_published(&self, ids: Vec<i64>) {
        let mut pending = self.published.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend(ids);
    }

    fn take_published(&self) -> Vec<i64> {
        std::mem::take(&mut *self.published.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// [`EntityWriter::drain_outbox`] at most once a minute per process, after a publish.
    async fn maybe_drain(&self) {
        let due = {
            let mut last = self.last_drain.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60));
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            match self.drain_outbox().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "outbox drained"),
                Err(f) => tracing::warn!(error = %f, "outbox not drained"),
            }
        }
    }
}

/// Writes that commit together: one transaction for every row, child row, tombstone and receipt
/// mark given to it, whatever their number and kinds; the events are published after the commit.
/// Dropped without [`WriteBatch::commit`], nothing is written and nothing published.
pub struct WriteBatch<'w> {
    writer: &'w EntityWriter,
    tx: WriteTx,
    events: Vec<DomainEvent>,
    /// Webhook receipts, recorded with the events in the statement before COMMIT.
    receipts: Vec<tds_store::NewReceipt>,
    /// Rows applied, unchanged and stale per kind, counted once the batch commits.
    tally: BTreeMap<EntityKind, [usize; 3]>,
    /// Rows already written, kept to be freed while the statement before COMMIT is on its way, so
    /// freeing their records (thousands of small allocations per batch) overlaps the database's work.
    spent: Vec<Vec<VersionedRow<prepared::AnyRow>>>,
}

impl WriteBatch<'_> {
    /// Parses and writes complete records of one kind, each with the time TDS observed it (its version
    /// where Zoho gives none), with their child rows (an item's stock rows; a price book's rates,
    /// tombstoning rates a book that lists its rates no longer lists). A record that does not parse is
    /// reported in its slot and logged; the others are written. A store failure fails the batch.
    pub async fn write(
        &mut self,
        org: &str,
        kind: EntityKind,
        records: Vec<(Value, DateTime<Utc>)>,
        freshness: Freshness,
    ) -> Result<Written, Failure> {
        self.write_prepared(Prepared::new(org, kind, records), freshness)
            .await
    }

    /// [`WriteBatch::write`] of records already parsed and versioned.
    pub async fn write_prepared(
        &mut self,
        prepared: Prepared,
        freshness: Freshness,
    ) -> Result<Written, Failure> {
        let Prepared {
            org,
            mut written,
            slots,
            rows,
            stock,
            rates,
            books_with_rates,
            items_with_stock,
        } = prepared;
        if !rows.is_empty() {
            let report = match freshness {
                Freshness::Received => self.tx.upsert(&rows).await?,
                Freshness::JustRead => self.tx.upsert_fresh(&rows).await?,
            };
            self.note(&report);
            for (slot, row) in slots.iter().zip(report.rows) {
                written.records[*slot] = Ok(row.outcome);
            }
            self.spent.push(rows);
        }
        if !stock.is_empty() {
            self.write_stock(&stock).await?;
        }
        if !rates.is_empty() {
            let report = self.tx.upsert(&rates).await?;
            self.note(&report);
        }
        // A complete record lists all its children (an item's detail every location it keeps stock
        // at, a book's record all its rates): the stored children it no longer lists are gone.
        let stock_ids: Vec<String> = stock.iter().map(|r| r.zoho_id.clone()).collect();
        let rate_ids: Vec<String> = rates.iter().map(|r| r.zoho_id.clone()).collect();
        self.retire_unlisted(EntityKind::Item, &org, items_with_stock, &stock_ids)
            .await?;
        self.retire_unlisted(EntityKind::PriceBook, &org, books_with_rates, &rate_ids)
            .await?;
        Ok(written)
    }

    /// Tombstones, as of now and in one statement, the stored children of `parents` (complete
    /// records of `kind` just written) that are not in `listed`.
    async fn retire_unlisted(
        &mut self,
        kind: EntityKind,
        org: &str,
        parents: Vec<String>,
        listed: &[String],
    ) -> Result<(), Failure> {
        if parents.is_empty() {
            return Ok(());
        }
        let parents = tombstones(org, parents, Utc::now());
        if let Some(report) = self.tx.tombstone_children(kind, &parents, listed).await? {
            self.note(&report);
        }
        Ok(())
    }

    /// Writes stock rows (item × location); returns each row's outcome.
    pub async fn write_stock(
        &mut self,
        rows: &[VersionedRow<ItemStock>],
    ) -> Result<Vec<(ItemStock, Outcome)>, Failure> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let report = self.tx.upsert(rows).await?;
        self.note(&report);
        let mut out = Vec::with_capacity(rows.len());
        for (row, outcome) in rows.iter().zip(report.rows) {
            if outcome.outcome.is_change() {
                self.events.push(stock_changed(&row.org_id, &row.entity));
            }
            out.push((row.entity.clone(), outcome.outcome));
        }
        Ok(out)
    }

    /// Records deletions.
    pub async fn tombstone(
        &mut self,
        kind: EntityKind,
        deletions: &[Tombstone],
    ) -> Result<BatchReport, Failure> {
        self.tombstone_rows(kind, deletions, true).await
    }

    /// Records deletions Zoho confirmed ("does not exist") of rows already stored; an id never
    /// stored gets no row (reported `Unknown`).
    pub async fn tombstone_known(
        &mut self,
        kind: EntityKind,
        deletions: &[Tombstone],
    ) -> Result<BatchReport, Failure> {
        self.tombstone_rows(kind, deletions, false).await
    }

    /// Tombstones `deletions` (ids never stored get a placeholder row only with `placeholders`), with
    /// their events, and the child rows of the parents it tombstoned (an item's stock rows, a price
    /// book's rates) with theirs.
    async fn tombstone_rows(
        &mut self,
        kind: EntityKind,
        deletions: &[Tombstone],
        placeholders: bool,
    ) -> Result<BatchReport, Failure> {
        if deletions.is_empty() {
            return Ok(nothing(kind));
        }
        let report = if placeholders {
            self.tx.tombstone(kind, deletions).await?
        } else {
            self.tx.tombstone_known(kind, deletions).await?
        };
        self.note(&report);
        let parents: Vec<Tombstone> = deletions
            .iter()
            .zip(&report.rows)
            .filter(|(_, r)| r.outcome == Outcome::Tombstoned)
            .map(|(d, _)| d.clone())
            .collect();
        if let Some(children) = self.tx.tombstone_children(kind, &parents, &[]).await? {
            self.note(&children);
        }
        Ok(report)
    }

    /// Stages the events of what `report` changed and tallies its outcomes.
    fn note(&mut self, report: &BatchReport) {
        entity_events(report, &mut self.events);
        let tally = self.tally.entry(report.kind).or_default();
        tally[0] += report.changed();
        tally[1] += report.unchanged();
        tally[2] += report.stale();
    }

    /// Webhook receipts to record with the batch: written at commit, in the statement that stages
    /// the events, so they cost no round trip of their own.
    pub fn record_receipts(&mut self, receipts: Vec<tds_store::NewReceipt>) {
        self.receipts.extend(receipts);
    }

    /// Commits, then publishes the events of what changed.
    pub async fn commit(mut self) -> Result<(), Failure> {
        // The events are staged in the outbox with the rows: published at least once, whatever
        // happens after the commit. The receipts go in the same statement.
        let published = self.writer.take_published();
        let spent = std::mem::take(&mut self.spent);
        let staged = {
            let mut stage = std::pin::pin!(self.tx.stage(&self.receipts, &self.events, &published));
            // The statement goes out first; the written rows are freed while it runs.
            let sent = poll_once(&mut stage).await;
            drop(spent);
            match sent {
                Some(staged) => staged,
                None => stage.await,
            }
        };
        let batch = match staged {
            Ok(batch) => batch,
            Err(e) => {
                self.writer.note_published(published);
                return Err(e.into());
            }
        };
        if let Err(e) = self.tx.commit().await {
            self.writer.note_published(published);
            return Err(e.into());
        }
        let metrics = &self.writer.metrics;
        for (kind, [applied, unchanged, stale]) in std::mem::take(&mut self.tally) {
            metrics.count_by(Metric::EntitiesApplied, Dim::Kind, kind.as_str(), applied);
            metrics.count_by(
                Metric::EntitiesUnchanged,
                Dim::Kind,
                kind.as_str(),
                unchanged,
            );
            metrics.count_by(Metric::EntitiesStale, Dim::Kind, kind.as_str(), stale);
        }
        // An outbox row was staged exactly when there were events.
        if let Some(batch) = batch {
            let events = self
                .events
                .into_iter()
                .enumerate()
                .map(|(n, e)| tds_store::outbox::with_event_id(e, batch, n))
                .collect();
            self.writer.publish_staged(events, batch).await;
        }
        Ok(())
    }
}

/// The report of a write of no rows.
fn nothing(kind: EntityKind) -> BatchReport {
    BatchReport {
        kind,
        rows: Vec::new(),
    }
}

fn tombstones(org: &str, ids: Vec<String>, at: DateTime<Utc>) -> Vec<Tombstone> {
    ids.into_iter()
        .map(|zoho_id| Tombstone {
            org_id: org.to_string(),
            zoho_id,
            deleted_at: at,
        })
        .collect()
}

/// `tds.entity.synced` for every row of `report` that changed.
fn entity_events(report: &BatchReport, events: &mut Vec<DomainEvent>) {
    for row in report.rows.iter().filter(|r| r.outcome.is_change()) {
        events.push(crate::event(
            "tds.entity.synced",
            json!({
                "org_id": row.org_id,
                "kind": report.kind,
                "zoho_id": row.zoho_id,
                "outcome": row.outcome.label(),
            }),
        ));
    }
}

/// `tds.stock.changed` for a stock row that changed.
pub(crate) fn stock_changed(org: &str, s: &ItemStock) -> DomainEvent {
    crate::event(
        "tds.stock.changed",
        json!({"org_id": org, "item_id": s.item_id, "location_id": s.stock.location_id,
               "location_name": s.stock.location_name, "stock_on_hand": s.stock.stock_on_hand,
               "available_stock": s.stock.available_stock}),
    )
}
