//! The messages of scheduled and on-demand syncs and the per-kind facts of listing them.
//!
//! The jobs themselves are run by [`crate::runner::SyncRunner`] (runs, job bookkeeping),
//! [`crate::pages`] (page and details jobs) and [`crate::images::ImageSync`] (image downloads).
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

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tds_core::{EntityKind, Trigger};
use tds_store::{Cursor, NewJob, RunCounts};

pub use tds_core::SyncMode;

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
    /// What started it: `schedule`, `manual`, `admin-api`, ... (`manual` when absent).
    #[serde(default = "manual")]
    pub trigger: Trigger,
}

fn manual() -> Trigger {
    Trigger::Manual
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

    pub(crate) fn tracked(&self) -> Option<(i64, &str)> {
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

pub(crate) use tds_core::kind::Completion;

/// A listing order that stays put while records are edited (pages are fetched minutes apart), from
/// the kind table; none for kinds Zoho does not time.
pub(crate) fn stable_order(kind: EntityKind) -> Vec<(String, String)> {
    kind.spec()
        .stable_order
        .map(|column| {
            vec![
                ("sort_column".into(), column.into()),
                ("sort_order".into(), "A".into()),
            ]
        })
        .unwrap_or_default()
}

/// Filters every listing of `kind` needs (items and contacts list only active records unless told
/// `filter_by=Status.All`, ZOHO.md, Books items), from the kind table.
pub(crate) fn list_filter(kind: EntityKind) -> Vec<(String, String)> {
    kind.spec()
        .list_filter
        .map(|(k, v)| vec![(k.into(), v.into())])
        .unwrap_or_default()
}

pub(crate) fn record_time(record: &Value) -> Option<DateTime<Utc>> {
    record
        .get("last_modified_time")
        .and_then(Value::as_str)
        .and_then(tds_core::fields::parse_zoho_timestamp)
}

/// Whether a listed record shows a value that differs from the stored record (fields both have).
pub(crate) fn differs(listed: &Value, stored: &Value) -> bool {
    let (Some(listed), Some(stored)) = (listed.as_object(), stored.as_object()) else {
        return true;
    };
    listed.iter().any(|(k, v)| match (v, stored.get(k)) {
        (_, None) => false,
        (Value::Number(a), Some(Value::Number(b))) => a.as_f64() != b.as_f64(),
        (a, Some(b)) => a != b,
    })
}

pub(crate) fn record_id(kind: EntityKind, record: &Value) -> Option<String> {
    crate::text(record, kind.zoho_id_field()?)
}

/// What a job did, before it is committed.
#[derive(Default)]
pub(crate) struct JobOutput {
    pub(crate) counts: RunCounts,
    pub(crate) high: Option<Cursor>,
    pub(crate) children: Vec<SyncJob>,
}

impl JobOutput {
    /// Adds what a nested job (details fetched inside a page job) did.
    pub(crate) fn absorb(&mut self, other: JobOutput) {
        self.counts.api_calls += other.counts.api_calls;
        self.counts.changed += other.counts.changed;
        self.counts.unchanged += other.counts.unchanged;
        self.counts.failed += other.counts.failed;
    }

    /// Adds what a write did.
    pub(crate) fn wrote(&mut self, written: &crate::writer::Written) {
        self.counts.changed += written.changed();
        self.counts.unchanged += written.unchanged();
        self.counts.failed += written.failed();
    }
}
