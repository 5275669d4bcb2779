//! Scheduled and on-demand syncs as fanned-out jobs on the inbox queue.
//!
//! A `start` message (from an EventBridge schedule, the CLI or the admin API) opens one sync run per
//! (organisation, entity kind) and enqueues its first page job. Each page job lists one page (200
//! records), decides which records changed against the stored versions, completes them with the fewest
//! calls (`/itemdetails` for 100 items at a time; a detail GET only for documents, contacts and price
//! books that changed, in `details` jobs when there are many), writes them with the version-gated
//! upsert and enqueues the next page. Item runs are followed by an image run that downloads only the
//! images whose id changed. Every job has a row in `tds_sync_jobs` written before its message is sent,
//! so a redelivered job that already committed is skipped and re-sends only its lost successors; the
//! run completes when its last job does, and only then is the incremental cursor advanced.
//!
//! Incremental runs list what changed since `cursor - overlap`: by Zoho's `last_modified_time` filter
//! where it has one (items, invoices, sales orders, bills, credit notes, vendor payments, purchase
//! orders), by `sort_column=last_modified_time&sort_order=D` with an early stop where it has not
//! (contacts), and by a full listing where records carry no time at all (locations, price books,
//! customer payments), where unchanged records cost a hash comparison and no write. The cursor is the
//! newest `(last_modified_time, id)` committed, but never later than the run's start, so an edit made
//! while the run was listing is listed again next time, whatever its id.

use std::collections::HashMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tds_core::fields::format_zoho_timestamp;
use tds_core::ports::DomainEvent;
use tds_core::{parse_entity, AnyEntity, EntityKind, ItemImage, VersionedRow};
use tds_store::upsert::Tombstone;
use tds_store::{Cursor, JobState, NewJob, RunCounts, RunStatus, SyncRun};
use tds_zoho::{Priority, Product};

use crate::{event, needs_refetch, AnyRow, Disposition, Failure, Processor};

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Every record, whatever the cursor says.
    Full,
    /// What changed since the cursor (everything when there is none yet).
    Incremental,
}

impl SyncMode {
    /// `full` or `incremental`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Full => "full",
            SyncMode::Incremental => "incremental",
        }
    }
}

/// Starts syncs: one run per (organisation, kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartSync {
    /// One organisation, or every configured one when absent.
    #[serde(default)]
    pub org_id: Option<String>,
    /// Kinds to sync (`items`, `invoice`, ...) or `all`.
    pub entities: Vec<String>,
    /// Full or incremental.
    pub mode: SyncMode,
    /// What started it: `schedule`, `manual`, `heal`, ...
    #[serde(default = "manual")]
    pub trigger: String,
}

fn manual() -> String {
    "manual".into()
}

/// A message of a sync, as it travels on the inbox under the key `sync`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SyncJob {
    /// Open runs.
    Start(StartSync),
    /// List one page of a run.
    Page {
        /// The run.
        run_id: i64,
        /// Job key within the run.
        key: String,
        /// Organisation.
        org_id: String,
        /// Kind.
        kind: EntityKind,
        /// Mode of the run.
        mode: SyncMode,
        /// Page number (1-based).
        page: u32,
    },
    /// Detail GETs (or one `/itemdetails` call) for changed records.
    Details {
        /// The run.
        run_id: i64,
        /// Job key within the run.
        key: String,
        /// Organisation.
        org_id: String,
        /// Kind.
        kind: EntityKind,
        /// Record ids.
        ids: Vec<String>,
    },
    /// Item images to download.
    Images {
        /// The run.
        run_id: i64,
        /// Job key within the run.
        key: String,
        /// Organisation.
        org_id: String,
        /// `(item_id, image_id, image_name)`.
        images: Vec<(String, String, Option<String>)>,
    },
}

impl SyncJob {
    /// The inbox message body of this job.
    pub fn to_body(&self) -> String {
        json!({ "sync": self }).to_string()
    }

    /// The job row (key and message body) of a tracked job.
    pub(crate) fn new_job(&self) -> NewJob {
        NewJob {
            key: self
                .tracked()
                .map(|(_, k)| k.to_string())
                .unwrap_or_default(),
            body: json!({ "sync": self }),
        }
    }

    fn tracked(&self) -> Option<(i64, &str)> {
        match self {
            SyncJob::Start(_) => None,
            SyncJob::Page { run_id, key, .. }
            | SyncJob::Details { run_id, key, .. }
            | SyncJob::Images { run_id, key, .. } => Some((*run_id, key)),
        }
    }
}

/// The kinds a sync can be asked for, and how `all` expands.
pub fn syncable_kinds() -> Vec<EntityKind> {
    EntityKind::ALL
        .into_iter()
        .filter(|k| !matches!(k, EntityKind::ItemStock | EntityKind::PriceBookRate))
        .collect()
}

/// Resolves the `entities` of a start message: `all`, or kind names; errors name the valid ones.
pub fn resolve_entities(entities: &[String]) -> Result<Vec<EntityKind>, String> {
    if entities.is_empty() {
        return Err("no entities given: name kinds or `all`".into());
    }
    let mut out = Vec::new();
    for e in entities {
        if e == "all" {
            for k in syncable_kinds() {
                if k != EntityKind::ItemImage && !out.contains(&k) {
                    out.push(k);
                }
            }
            continue;
        }
        let kind: EntityKind = e.parse().map_err(|err| format!("{err}"))?;
        match kind {
            EntityKind::ItemStock => {
                return Err("item_stock is kept by the stock-poller (or comes with items)".into())
            }
            EntityKind::PriceBookRate => {
                return Err("price_book_rate comes with price_book: sync price_book".into())
            }
            k if !out.contains(&k) => out.push(k),
            _ => {}
        }
    }
    Ok(out)
}

/// Tuning of scheduled syncs.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// How far before the cursor an incremental run lists again (clock skew, Zoho's second precision).
    pub overlap: ChronoDuration,
    /// Changed records per page fetched inside the page job; more go to `details` jobs.
    pub inline_details: usize,
    /// Ids per `details` job.
    pub details_per_job: usize,
    /// Images per `images` job.
    pub images_per_job: usize,
    /// A run with no job committed for this long is abandoned (failed) when the next one starts.
    pub stale_after: ChronoDuration,
    /// Sync jobs of a batch not started within this time are put back on the inbox (so a batch of
    /// heavy jobs cannot run into the Lambda timeout).
    pub job_time_budget: std::time::Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            overlap: ChronoDuration::seconds(60),
            inline_details: 10,
            details_per_job: 25,
            images_per_job: 25,
            stale_after: ChronoDuration::minutes(30),
            job_time_budget: std::time::Duration::from_secs(60),
        }
    }
}

/// How a kind's listed records become complete rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completion {
    /// The list record is the whole record.
    List,
    /// `/itemdetails`, 100 per call.
    BulkItems,
    /// One detail GET per changed record.
    DetailGet,
}

fn completion(kind: EntityKind) -> Completion {
    match kind {
        EntityKind::Item => Completion::BulkItems,
        EntityKind::Location | EntityKind::CustomerPayment | EntityKind::VendorPayment => {
            Completion::List
        }
        _ => Completion::DetailGet,
    }
}

/// Whether Zoho filters this kind's list by `last_modified_time`.
fn has_modified_filter(kind: EntityKind) -> bool {
    matches!(
        kind,
        EntityKind::Item
            | EntityKind::Invoice
            | EntityKind::SalesOrder
            | EntityKind::Bill
            | EntityKind::CreditNote
            | EntityKind::VendorPayment
            | EntityKind::PurchaseOrder
    )
}

/// Whether the list can be sorted newest-first by `last_modified_time` (for an early stop).
/// A list order that stays put while records are edited (pages are fetched minutes apart): creation
/// time where Zoho allows sorting by it, else the payment date (vendor payments allow no more; OAS:
/// vendor_name, date, reference_number, amount, balance). None for kinds Zoho does not time.
pub(crate) fn stable_order(kind: EntityKind) -> Vec<(String, String)> {
    let column = match kind {
        EntityKind::VendorPayment => "date",
        k if k.has_zoho_modified_time() => "created_time",
        _ => return Vec::new(),
    };
    vec![
        ("sort_column".into(), column.into()),
        ("sort_order".into(), "A".into()),
    ]
}

/// Filters every listing of `kind` needs: items and contacts list only active records unless told
/// `filter_by=Status.All` (ZOHO.md, Books items), and inactive ones are records too.
pub(crate) fn list_filter(kind: EntityKind) -> Vec<(String, String)> {
    match kind {
        EntityKind::Item | EntityKind::Contact => {
            vec![("filter_by".into(), "Status.All".into())]
        }
        _ => Vec::new(),
    }
}

fn sorts_by_modified(kind: EntityKind) -> bool {
    kind == EntityKind::Contact
}

fn record_time(record: &Value) -> Option<DateTime<Utc>> {
    record
        .get("last_modified_time")
        .and_then(Value::as_str)
        .and_then(tds_core::fields::parse_zoho_timestamp)
}

/// Whether a listed record shows a value that differs from the stored record (fields both have).
fn differs(listed: &Value, stored: &Value) -> bool {
    let (Some(listed), Some(stored)) = (listed.as_object(), stored.as_object()) else {
        return true;
    };
    listed.iter().any(|(k, v)| match (v, stored.get(k)) {
        (_, None) => false,
        (Value::Number(a), Some(Value::Number(b))) => a.as_f64() != b.as_f64(),
        (a, Some(b)) => a != b,
    })
}

fn record_id(kind: EntityKind, record: &Value) -> Option<String> {
    crate::text(record, kind.zoho_id_field()?)
}

/// What a job did, before it is committed.
#[derive(Default)]
struct JobOutput {
    counts: RunCounts,
    high: Option<Cursor>,
    children: Vec<SyncJob>,
}

impl Processor {
    /// Puts a job that this invocation has no time left for back on the inbox (a new message; the job
    /// row makes a duplicate harmless).
    pub(crate) async fn defer_job(&self, body: &str) -> Disposition {
        match &self.inbox {
            Some(inbox) => match inbox.send(body.to_string()).await {
                Ok(_) => Disposition::Done,
                Err(e) => Disposition::Retry(format!("deferred job not re-queued: {e}")),
            },
            None => Disposition::Retry("out of time for this job".into()),
        }
    }

    /// Handles one sync message (already unwrapped from `{"sync": ...}`).
    pub(crate) async fn handle_job(&self, body: &str, job: SyncJob) -> Disposition {
        if let SyncJob::Start(start) = &job {
            return match self.start_sync(start).await {
                Ok(_) => Disposition::Done,
                Err(Failure::Retry(reason)) => Disposition::Retry(reason),
                Err(Failure::Permanent(reason)) => self.dead_letter(body, &reason).await,
            };
        }
        let Some((run_id, key)) = job.tracked() else {
            return Disposition::Done;
        };
        match self.store.job_state(run_id, key).await {
            Err(e) => return Disposition::Retry(e.to_string()),
            Ok(JobState::Unknown) => {
                tracing::warn!(run_id, key, "sync job of an unknown run or job: ignored");
                return Disposition::Done;
            }
            Ok(JobState::Done) => {
                // Committed before: only successors whose messages may have been lost are re-sent.
                return match self.resend_children(run_id, key).await {
                    Ok(()) => match self.maybe_finish(run_id).await {
                        Ok(()) => Disposition::Done,
                        Err(f) => retry_of(f),
                    },
                    Err(f) => retry_of(f),
                };
            }
            Ok(JobState::Pending) => {}
        }
        let run = match self.store.run(run_id).await {
            Ok(Some(run)) => run,
            Ok(None) => return Disposition::Done,
            Err(e) => return Disposition::Retry(e.to_string()),
        };
        if run.status != RunStatus::Running {
            tracing::info!(
                run_id,
                key,
                status = run.status.as_str(),
                "job of a finished run: skipped"
            );
            return Disposition::Done;
        }
        let output = match &job {
            SyncJob::Page {
                org_id, kind, page, ..
            } => self.page_job(&run, org_id, *kind, *page).await,
            SyncJob::Details {
                org_id, kind, ids, ..
            } => self.details_job(org_id, *kind, ids).await,
            SyncJob::Images { org_id, images, .. } => self.images_job(org_id, images).await,
            SyncJob::Start(_) => return Disposition::Done,
        };
        let output = match output {
            Ok(o) => o,
            Err(Failure::Retry(reason)) => {
                if let Err(e) = self.store.job_attempt_failed(run_id, key, &reason).await {
                    tracing::warn!(error = %e, "job failure not recorded");
                }
                return Disposition::Retry(reason);
            }
            Err(Failure::Permanent(reason)) => {
                let reason = format!("{} job {key}: {reason}", run.entity);
                if let Err(e) = self.fail_run(&run, &reason).await {
                    return retry_of(e);
                }
                return self.dead_letter(body, &reason).await;
            }
        };
        let children: Vec<NewJob> = output.children.iter().map(SyncJob::new_job).collect();
        match self
            .store
            .complete_job(run_id, key, output.counts, output.high.as_ref(), &children)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Disposition::Done, // a concurrent duplicate completed it
            Err(e) => return retry_of(Failure::from(e)),
        }
        if let Err(f) = self.send_jobs(&children).await {
            // Redelivery finds the job done and re-sends what is still pending.
            return retry_of(f);
        }
        match self.maybe_finish(run_id).await {
            Ok(()) => Disposition::Done,
            Err(f) => retry_of(f),
        }
    }

    /// Sends again every pending job of every running run (a job row is written before its message,
    /// so this loses nothing; a job already done is skipped when its duplicate arrives). For a queue
    /// that does not survive a restart (the local stack); returns how many were sent.
    pub async fn resume_pending(&self) -> Result<usize, Failure> {
        let pending = self.store.pending_jobs_of_running_runs().await?;
        let jobs: Vec<NewJob> = pending.into_iter().map(|(_, j)| j).collect();
        self.send_jobs(&jobs).await?;
        Ok(jobs.len())
    }

    /// Opens the runs a start message asks for; returns their ids.
    pub async fn start_sync(&self, start: &StartSync) -> Result<Vec<i64>, Failure> {
        let kinds = resolve_entities(&start.entities).map_err(Failure::Permanent)?;
        let orgs = crate::organisations(&self.zoho, start.org_id.as_deref())?;
        let mut runs = Vec::new();
        for org in &orgs {
            for &kind in &kinds {
                if let Some(id) = self.open_run(org, kind, start).await? {
                    runs.push(id);
                }
            }
        }
        Ok(runs)
    }

    async fn open_run(
        &self,
        org: &str,
        kind: EntityKind,
        start: &StartSync,
    ) -> Result<Option<i64>, Failure> {
        let now = Utc::now();
        for running in self.store.running_runs(org, kind.as_str()).await? {
            if now - running.last_activity_at < self.settings.stale_after {
                tracing::info!(org, %kind, run_id = running.id, "a run is in progress: not starting another");
                return Ok(None);
            }
            let reason = format!(
                "abandoned: no job committed since {}",
                running.last_activity_at
            );
            self.fail_run(&running, &reason).await?;
        }
        let since = match start.mode {
            SyncMode::Incremental => self.store.cursor(org, kind).await?,
            SyncMode::Full => None,
        };
        let params = json!({"entities": start.entities});
        let run_id = self
            .store
            .start_run_from(
                org,
                kind.as_str(),
                start.mode.as_str(),
                &start.trigger,
                params,
                since.as_ref(),
            )
            .await?;
        self.publish(vec![event(
            "tds.sync.started",
            json!({"run_id": run_id, "org_id": org, "entity": kind, "mode": start.mode,
                   "trigger": start.trigger, "since": since.as_ref().map(|c| c.time)}),
        )])
        .await;
        let first = if kind == EntityKind::ItemImage {
            self.plan_images(run_id, org).await?
        } else {
            vec![SyncJob::Page {
                run_id,
                key: "page:1".into(),
                org_id: org.to_string(),
                kind,
                mode: start.mode,
                page: 1,
            }]
        };
        let jobs: Vec<NewJob> = first.iter().map(SyncJob::new_job).collect();
        self.store.add_jobs(run_id, None, &jobs).await?;
        self.send_jobs(&jobs).await?;
        self.maybe_finish(run_id).await?;
        Ok(Some(run_id))
    }

    /// Tombstones images of items that lost theirs and splits the downloads into jobs.
    async fn plan_images(&self, run_id: i64, org: &str) -> Result<Vec<SyncJob>, Failure> {
        let gone = self.store.images_to_remove(org).await?;
        self.tombstone_ids(org, EntityKind::ItemImage, gone).await?;
        let work = self.store.images_to_fetch(org).await?;
        Ok(work
            .chunks(self.settings.images_per_job.max(1))
            .enumerate()
            .map(|(n, chunk)| SyncJob::Images {
                run_id,
                key: format!("images:{n}"),
                org_id: org.to_string(),
                images: chunk
                    .iter()
                    .map(|w| (w.item_id.clone(), w.image_id.clone(), w.image_name.clone()))
                    .collect(),
            })
            .collect())
    }

    async fn page_job(
        &self,
        run: &SyncRun,
        org: &str,
        kind: EntityKind,
        page: u32,
    ) -> Result<JobOutput, Failure> {
        let mode = if run.mode == "full" {
            SyncMode::Full
        } else {
            SyncMode::Incremental
        };
        let floor = match (mode, &run.since) {
            (SyncMode::Incremental, Some(c)) if kind.has_zoho_modified_time() => {
                Some(c.time - self.settings.overlap)
            }
            _ => None,
        };
        let mut query: Vec<(String, String)> = Vec::new();
        if sorts_by_modified(kind) && floor.is_some() {
            query.push(("sort_column".into(), "last_modified_time".into()));
            query.push(("sort_order".into(), "D".into()));
        } else {
            query.extend(stable_order(kind));
        }
        query.extend(list_filter(kind));
        if let (Some(floor), true) = (floor, has_modified_filter(kind)) {
            query.push(("last_modified_time".into(), format_zoho_timestamp(floor)));
        }
        let mut pages = self
            .zoho
            .pages(org, kind, query, Priority::Poll)?
            .starting_at(page);
        let listed = match pages.next().await {
            Some(r) => r?,
            None => return Ok(JobOutput::default()),
        };
        let mut out = JobOutput {
            counts: RunCounts {
                pages: 1,
                api_calls: 1,
                ..RunCounts::default()
            },
            ..JobOutput::default()
        };
        let mut stop = false;
        let mut records: Vec<Value> = Vec::with_capacity(listed.records.len());
        for record in listed.records {
            let time = record_time(&record);
            if let (Some(floor), Some(t)) = (floor, time) {
                if t < floor {
                    // Outside the window: with newest-first order nothing after it is inside.
                    stop |= sorts_by_modified(kind);
                    continue;
                }
            }
            if let (Some(t), Some(id)) = (time, record_id(kind, &record)) {
                let c = Cursor { time: t, id };
                if out.high.as_ref().is_none_or(|h| c > *h) {
                    out.high = Some(c);
                }
            }
            records.push(record);
        }
        out.counts.fetched = records.len() as i64;
        if listed.has_more && !stop {
            out.children.push(SyncJob::Page {
                run_id: run.id,
                key: format!("page:{}", page + 1),
                org_id: org.to_string(),
                kind,
                mode,
                page: page + 1,
            });
        }

        // Which records need their complete form fetched.
        let ids: Vec<String> = records.iter().filter_map(|r| record_id(kind, r)).collect();
        let stored: HashMap<String, tds_store::StoredRow> = self
            .store
            .get_many(kind, org, &ids)
            .await?
            .into_iter()
            .map(|r| (r.zoho_id.clone(), r))
            .collect();
        let restore_before =
            Utc::now() - ChronoDuration::from_std(tds_store::RESTORE_AFTER).unwrap_or_default();
        let changed = |r: &Value| -> bool {
            let (Some(id), Some(t)) = (record_id(kind, r), record_time(r)) else {
                return true;
            };
            match stored.get(&id) {
                None => true,
                Some(row) => match row.deleted_at {
                    // Listed by Zoho now: a tombstone older than RESTORE_AFTER was wrong.
                    Some(d) => t > d || d < restore_before,
                    // Zoho's times have one-second precision: at the same second, the listed fields
                    // tell whether the record was edited again after TDS read it.
                    None => {
                        t > row.last_modified_time
                            || (t == row.last_modified_time && differs(r, &row.record))
                    }
                },
            }
        };
        match completion(kind) {
            Completion::List => {
                let summary = self.persist(org, kind, records).await?;
                out.counts.changed += summary.changed;
                out.counts.unchanged += summary.unchanged;
                out.counts.failed += summary.failed;
            }
            Completion::BulkItems => {
                let wanted: Vec<String> = records
                    .iter()
                    .filter(|r| mode == SyncMode::Full || changed(r))
                    .filter_map(|r| record_id(kind, r))
                    .collect();
                out.counts.unchanged += (records.len() - wanted.len()) as i64;
                let d = self.details_job(org, kind, &wanted).await?;
                out.counts.api_calls += d.counts.api_calls;
                out.counts.changed += d.counts.changed;
                out.counts.unchanged += d.counts.unchanged;
                out.counts.failed += d.counts.failed;
            }
            Completion::DetailGet => {
                let (complete, partial): (Vec<Value>, Vec<Value>) = records
                    .into_iter()
                    .filter(|r| kind == EntityKind::PriceBook || changed(r))
                    .partition(|r| kind != EntityKind::PriceBook && !needs_refetch(kind, r));
                out.counts.unchanged +=
                    out.counts.fetched - (complete.len() + partial.len()) as i64;
                if !complete.is_empty() {
                    let summary = self.persist(org, kind, complete).await?;
                    out.counts.changed += summary.changed;
                    out.counts.unchanged += summary.unchanged;
                    out.counts.failed += summary.failed;
                }
                let wanted: Vec<String> =
                    partial.iter().filter_map(|r| record_id(kind, r)).collect();
                if wanted.len() <= self.settings.inline_details {
                    let d = self.details_job(org, kind, &wanted).await?;
                    out.counts.api_calls += d.counts.api_calls;
                    out.counts.changed += d.counts.changed;
                    out.counts.unchanged += d.counts.unchanged;
                    out.counts.failed += d.counts.failed;
                } else {
                    for (n, chunk) in wanted
                        .chunks(self.settings.details_per_job.max(1))
                        .enumerate()
                    {
                        out.children.push(SyncJob::Details {
                            run_id: run.id,
                            key: format!("details:{page}:{n}"),
                            org_id: org.to_string(),
                            kind,
                            ids: chunk.to_vec(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Fetches complete records by id and writes them; a record Zoho no longer has becomes a tombstone.
    async fn details_job(
        &self,
        org: &str,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<JobOutput, Failure> {
        let mut out = JobOutput::default();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut records = Vec::new();
        let mut gone = Vec::new();
        if kind == EntityKind::Item {
            let found = self.zoho.item_details(org, ids, Priority::Poll).await?;
            out.counts.api_calls += ids.len().div_ceil(100) as i64;
            let mut by_id: HashMap<String, Value> = found
                .into_iter()
                .map(|i| (i.item_id.clone(), i.record))
                .collect();
            for id in ids {
                match by_id.remove(id) {
                    Some(r) => records.push(r),
                    None => gone.push(id.clone()),
                }
            }
        } else {
            for id in ids {
                out.counts.api_calls += 1;
                match self.zoho.get_record(org, kind, id, Priority::Poll).await {
                    Ok(r) => records.push(r),
                    Err(e) if e.is_not_found() => gone.push(id.clone()),
                    Err(e) => return Err(Failure::from(e)),
                }
            }
        }
        let summary = self.persist(org, kind, records).await?;
        out.counts.changed += summary.changed;
        out.counts.unchanged += summary.unchanged;
        out.counts.failed += summary.failed;
        out.counts.changed += self.tombstone_ids(org, kind, gone).await?;
        Ok(out)
    }

    /// Downloads images into the blob store and records their metadata.
    async fn images_job(
        &self,
        org: &str,
        images: &[(String, String, Option<String>)],
    ) -> Result<JobOutput, Failure> {
        let blobs = self.blobs.as_ref().ok_or_else(|| {
            Failure::Permanent("image sync needs a blob store, and none is configured".into())
        })?;
        let mut out = JobOutput::default();
        let mut rows = Vec::new();
        for (item_id, image_id, image_name) in images {
            out.counts.api_calls += 1;
            out.counts.fetched += 1;
            let (content_type, bytes) = match self
                .zoho
                .get_bytes(
                    org,
                    Product::Inventory,
                    &format!("items/{item_id}/image"),
                    Priority::Poll,
                )
                .await
            {
                Ok(x) => x,
                Err(e) if e.is_not_found() => {
                    // The image went away since the item was synced; the next item sync records that.
                    out.counts.failed += 1;
                    continue;
                }
                Err(e) => return Err(Failure::from(e)),
            };
            let extension = match content_type.as_str() {
                "image/png" => "png",
                "image/gif" => "gif",
                "image/webp" => "webp",
                _ => "jpg",
            };
            let key = format!("{org}/item-images/{item_id}/{image_id}.{extension}");
            blobs
                .put(&key, bytes.clone(), &content_type)
                .await
                .map_err(|e| {
                    if e.is_retriable() {
                        Failure::Retry(format!("blob store: {e}"))
                    } else {
                        Failure::Permanent(format!("blob store: {e}"))
                    }
                })?;
            let image = ItemImage::new(
                item_id.clone(),
                image_id.clone(),
                image_name.clone(),
                Some(content_type),
                &bytes,
                key,
            );
            rows.push(VersionedRow::new(org, image, Utc::now()));
        }
        if !rows.is_empty() {
            let report = self.store.upsert(&rows).await?;
            out.counts.changed += report.changed() as i64;
            out.counts.unchanged += report.unchanged() as i64;
            let mut events = Vec::new();
            crate::collect_events(&report, &mut events);
            self.publish(events).await;
        }
        Ok(out)
    }

    /// Tombstones rows Zoho no longer has (as of now); returns how many changed, with their events published.
    pub(crate) async fn tombstone_ids(
        &self,
        org: &str,
        kind: EntityKind,
        ids: Vec<String>,
    ) -> Result<i64, Failure> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = Utc::now();
        let tombstones: Vec<Tombstone> = ids
            .into_iter()
            .map(|zoho_id| Tombstone {
                org_id: org.to_string(),
                zoho_id,
                deleted_at: now,
            })
            .collect();
        let report = self.store.tombstone(kind, &tombstones).await?;
        let mut events = Vec::new();
        crate::collect_events(&report, &mut events);
        self.publish(events).await;
        Ok(report.changed() as i64)
    }

    async fn resend_children(&self, run_id: i64, key: &str) -> Result<(), Failure> {
        let pending = self.store.pending_children(run_id, key).await?;
        self.send_jobs(&pending).await
    }

    pub(crate) async fn send_jobs(&self, jobs: &[NewJob]) -> Result<(), Failure> {
        if jobs.is_empty() {
            return Ok(());
        }
        let inbox = self.inbox.as_ref().ok_or_else(|| {
            Failure::Permanent("sync jobs need the inbox queue, and none is configured".into())
        })?;
        for chunk in jobs.chunks(10) {
            let bodies: Vec<String> = chunk.iter().map(|j| j.body.to_string()).collect();
            let results = inbox
                .send_batch(bodies)
                .await
                .map_err(|e| Failure::Retry(format!("inbox: {e}")))?;
            if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
                return Err(Failure::Retry(format!("inbox: {e}")));
            }
        }
        Ok(())
    }

    /// Finishes the run when no job is left: advances the cursor, publishes `tds.sync.completed`, and
    /// follows an item run with an image run.
    async fn maybe_finish(&self, run_id: i64) -> Result<(), Failure> {
        if self.store.pending_jobs(run_id).await? > 0 {
            return Ok(());
        }
        if !self.store.finish_run(run_id, None).await? {
            return Ok(()); // someone else finished it
        }
        let Some(run) = self.store.run(run_id).await? else {
            return Ok(());
        };
        let kind: Option<EntityKind> = run.entity.parse().ok();
        if let Some(kind) = kind.filter(|k| k.has_zoho_modified_time()) {
            if let Some(high) = self.store.run_high_water(run_id).await? {
                // Never later than the run's start: edits made while it listed are listed again.
                let to = if high.time > run.started_at {
                    Cursor {
                        time: run.started_at,
                        id: String::new(),
                    }
                } else {
                    high
                };
                self.store
                    .advance_cursor(&run.org_id, kind, &to, Some(run_id))
                    .await?;
            }
        }
        let c = run.counts;
        self.publish(vec![event(
            "tds.sync.completed",
            json!({"run_id": run.id, "org_id": run.org_id, "entity": run.entity, "mode": run.mode,
                   "pages": c.pages, "fetched": c.fetched, "changed": c.changed, "unchanged": c.unchanged,
                   "failed": c.failed, "api_calls": c.api_calls, "duration_ms": run.duration_ms}),
        )])
        .await;
        if kind == Some(EntityKind::Item) && self.blobs.is_some() {
            let start = SyncJob::Start(StartSync {
                org_id: Some(run.org_id.clone()),
                entities: vec![EntityKind::ItemImage.as_str().to_string()],
                mode: SyncMode::Incremental,
                trigger: format!("after item run {}", run.id),
            });
            if let Some(inbox) = &self.inbox {
                if let Err(e) = inbox.send(start.to_body()).await {
                    tracing::warn!(error = %e, "image sync after the item run not enqueued");
                }
            }
        }
        Ok(())
    }

    async fn fail_run(&self, run: &SyncRun, reason: &str) -> Result<(), Failure> {
        if self.store.finish_run(run.id, Some(reason)).await? {
            tracing::error!(run_id = run.id, %reason, "sync run failed");
            self.publish(vec![event(
                "tds.sync.failed",
                json!({"run_id": run.id, "org_id": run.org_id, "entity": run.entity, "mode": run.mode,
                       "error": reason}),
            )])
            .await;
        }
        Ok(())
    }

    pub(crate) async fn publish(&self, events: Vec<DomainEvent>) {
        crate::publish(&*self.events, events).await
    }
}

fn retry_of(f: Failure) -> Disposition {
    match f {
        Failure::Retry(r) | Failure::Permanent(r) => Disposition::Retry(r),
    }
}

/// What a write of parsed records did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PersistSummary {
    pub changed: i64,
    pub unchanged: i64,
    pub failed: i64,
}

impl Processor {
    /// Parses and writes complete records of one kind (with their stock rows and price-book rates),
    /// publishing `tds.entity.synced` for what changed. A record that does not parse is counted as
    /// failed and logged with the reason; the others are written.
    pub(crate) async fn persist(
        &self,
        org: &str,
        kind: EntityKind,
        records: Vec<Value>,
    ) -> Result<PersistSummary, Failure> {
        let mut summary = PersistSummary::default();
        if records.is_empty() {
            return Ok(summary);
        }
        let observed = Utc::now();
        let mut rows = Vec::with_capacity(records.len());
        let mut stock = Vec::new();
        let mut rates = Vec::new();
        let mut books_with_rates = Vec::new();
        for record in records {
            match parse_entity(kind, record) {
                Ok(AnyEntity::Item(item)) => {
                    for s in item.stock_rows() {
                        stock.push(VersionedRow::new(org, s, observed));
                    }
                    rows.push(VersionedRow::new(
                        org,
                        AnyRow(AnyEntity::Item(item)),
                        observed,
                    ));
                }
                Ok(AnyEntity::PriceBook(book)) => {
                    if book.rates.is_some() {
                        books_with_rates.push(book.pricebook_id.clone());
                    }
                    for r in book.rates.iter().flatten() {
                        rates.push(VersionedRow::new(org, r.clone(), observed));
                    }
                    rows.push(VersionedRow::new(
                        org,
                        AnyRow(AnyEntity::PriceBook(book)),
                        observed,
                    ));
                }
                Ok(entity) => rows.push(VersionedRow::new(org, AnyRow(entity), observed)),
                Err(e) => {
                    summary.failed += 1;
                    tracing::warn!(org, %kind, error = %e, "record skipped: it does not parse");
                }
            }
        }
        let mut events = Vec::new();
        if !rows.is_empty() {
            let report = self.store.upsert_fresh(&rows).await?;
            summary.changed += report.changed() as i64;
            summary.unchanged += (report.rows.len() - report.changed()) as i64;
            crate::collect_events(&report, &mut events);
        }
        if !stock.is_empty() {
            let report = self.store.upsert(&stock).await?;
            crate::collect_events(&report, &mut events);
        }
        if !books_with_rates.is_empty() {
            // A book's complete record lists all its rates: rates no longer listed are gone.
            let listed: std::collections::HashSet<String> =
                rates.iter().map(|r| r.zoho_id.clone()).collect();
            if !rates.is_empty() {
                let report = self.store.upsert(&rates).await?;
                crate::collect_events(&report, &mut events);
            }
            let gone: Vec<String> = self
                .store
                .rate_ids_of_books(org, &books_with_rates)
                .await?
                .into_iter()
                .filter(|id| !listed.contains(id))
                .collect();
            self.tombstone_ids(org, EntityKind::PriceBookRate, gone)
                .await?;
        }
        self.publish(events).await;
        Ok(summary)
    }
}
