//! The sync runner: opens sync runs and runs their jobs.
//!
//! A `start` message (from an EventBridge schedule, the CLI or the admin API) opens one sync run per
//! (organisation, entity kind) and enqueues its first page job. Each page job lists one page (200
//! records), decides which records changed against the stored versions, completes them with the fewest
//! calls and writes them through the [`EntityWriter`] (see [`crate::pages`]), then enqueues the next
//! page. Item runs are followed by an image run that downloads only the images whose id changed
//! ([`ImageSync`]). Every job has a row in `tds_sync_jobs` written before its message is sent, so a
//! redelivered job that already committed is skipped and re-sends only its lost successors; the run
//! completes when its last job does, and only then is the incremental cursor advanced.
//!
//! Incremental runs list what changed since `cursor - overlap`: by Zoho's `last_modified_time` filter
//! where it has one (items, invoices, sales orders, bills, credit notes, vendor payments, purchase
//! orders), by `sort_column=last_modified_time&sort_order=D` with an early stop where it has not
//! (contacts), and by a full listing where records carry no time at all (locations, price books,
//! customer payments), where unchanged records cost a hash comparison and no write. The cursor is the
//! newest `(last_modified_time, id)` committed, but never later than the run's start, so an edit made
//! while the run was listing is listed again next time, whatever its id.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tds_core::ports::{DomainEvent, Queue};
use tds_core::EntityKind;
use tds_store::{Cursor, JobState, NewJob, RunStatus, Store, SyncRun};
use tds_zoho::ZohoClient;

use crate::images::ImageSync;
use crate::jobs::{resolve_entities, StartSync, SyncJob, SyncMode, SyncSettings};
use crate::writer::EntityWriter;
use crate::{event, Failure};
use tds_core::metrics::{Dim, Metric};
use tracing::Instrument;

/// What to do with a sync job's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobVerdict {
    /// Done (or a duplicate of a job already done): delete it.
    Done,
    /// A retriable failure: leave it for the queue to redeliver.
    Retry(String),
    /// Can never succeed: dead-letter it with the reason.
    Reject(String),
}

/// Runs syncs: constructed with the inbox its jobs travel on.
#[derive(Clone)]
pub struct SyncRunner {
    pub(crate) zoho: Arc<ZohoClient>,
    pub(crate) writer: EntityWriter,
    pub(crate) inbox: Arc<dyn Queue>,
    pub(crate) images: Option<ImageSync>,
    pub(crate) settings: SyncSettings,
}

impl SyncRunner {
    /// A runner reading through `zoho`, writing with `writer`, and sending jobs to `inbox`.
    pub fn new(zoho: Arc<ZohoClient>, writer: EntityWriter, inbox: Arc<dyn Queue>) -> SyncRunner {
        SyncRunner {
            zoho,
            writer,
            inbox,
            images: None,
            settings: SyncSettings::default(),
        }
    }

    /// Image runs (after item runs) with this image sync.
    pub fn with_images(mut self, images: ImageSync) -> SyncRunner {
        self.images = Some(images);
        self
    }

    /// Sync tuning.
    pub fn with_settings(mut self, settings: SyncSettings) -> SyncRunner {
        self.settings = settings;
        self
    }

    /// The tuning in force.
    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// The Zoho client (the organisations it knows, read again when they may have changed).
    pub fn zoho(&self) -> &Arc<ZohoClient> {
        &self.zoho
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Store {
        self.writer.store()
    }

    /// Puts a job that this invocation has no time left for back on the inbox (a new message; the job
    /// row makes a duplicate harmless).
    pub async fn defer(&self, body: &str) -> JobVerdict {
        match self.inbox.send(body.to_string()).await {
            Ok(_) => JobVerdict::Done,
            Err(e) => JobVerdict::Retry(format!("deferred job not re-queued: {e}")),
        }
    }

    /// Handles one sync message (already unwrapped from `{"sync": ...}`), in a span naming its run
    /// and job.
    pub async fn handle_job(&self, job: SyncJob) -> JobVerdict {
        let span = match job.tracked() {
            Some((run_id, key)) => tracing::info_span!("job", run_id, key = %key),
            None => tracing::info_span!("job", start = true),
        };
        self.handle_job_inner(job).instrument(span).await
    }

    async fn handle_job_inner(&self, job: SyncJob) -> JobVerdict {
        if let SyncJob::Start(start) = &job {
            return match self.start_sync(start).await {
                Ok(_) => JobVerdict::Done,
                Err(Failure::Retry(reason)) => JobVerdict::Retry(reason),
                Err(Failure::Permanent(reason)) => JobVerdict::Reject(reason),
            };
        }
        let Some((run_id, key)) = job.tracked() else {
            return JobVerdict::Done;
        };
        match self.store().job_state(run_id, key).await {
            Err(e) => return JobVerdict::Retry(e.to_string()),
            Ok(JobState::Unknown) => {
                tracing::warn!(run_id, key, "sync job of an unknown run or job: ignored");
                return JobVerdict::Done;
            }
            Ok(JobState::Done) => {
                // Committed before: only successors whose messages may have been lost are re-sent.
                return match self.resend_children(run_id, key).await {
                    Ok(()) => match self.maybe_finish(run_id).await {
                        Ok(()) => JobVerdict::Done,
                        Err(f) => retry_of(f),
                    },
                    Err(f) => retry_of(f),
                };
            }
            Ok(JobState::Pending) => {}
        }
        let run = match self.store().run(run_id).await {
            Ok(Some(run)) => run,
            Ok(None) => return JobVerdict::Done,
            Err(e) => return JobVerdict::Retry(e.to_string()),
        };
        if run.status != RunStatus::Running {
            tracing::info!(
                run_id,
                key,
                status = run.status.as_str(),
                "job of a finished run: skipped"
            );
            return JobVerdict::Done;
        }
        let output = match &job {
            SyncJob::Page {
                org_id, kind, page, ..
            } => self.page_job(&run, org_id, *kind, *page).await,
            SyncJob::Details {
                org_id, kind, ids, ..
            } => self.details_job(org_id, *kind, ids).await,
            SyncJob::Images { org_id, images, .. } => match &self.images {
                Some(sync) => sync.download(org_id, images).await,
                None => Err(Failure::Permanent(
                    "image sync needs a blob store, and none is configured".into(),
                )),
            },
            SyncJob::Start(_) => return JobVerdict::Done,
        };
        let output = match output {
            Ok(o) => o,
            Err(Failure::Retry(reason)) => {
                if let Err(e) = self.store().job_attempt_failed(run_id, key, &reason).await {
                    tracing::warn!(error = %e, "job failure not recorded");
                }
                return JobVerdict::Retry(reason);
            }
            Err(Failure::Permanent(reason)) => {
                let reason = format!("{} job {key}: {reason}", run.entity);
                if let Err(e) = self.fail_run(&run, &reason).await {
                    return retry_of(e);
                }
                return JobVerdict::Reject(reason);
            }
        };
        let children: Vec<NewJob> = output.children.iter().map(SyncJob::new_job).collect();
        match self
            .store()
            .complete_job(run_id, key, output.counts, output.high.as_ref(), &children)
            .await
        {
            Ok(true) => {}
            Ok(false) => return JobVerdict::Done, // a concurrent duplicate completed it
            Err(e) => return retry_of(Failure::from(e)),
        }
        if let Err(f) = self.send_jobs(&children).await {
            // Redelivery finds the job done and re-sends what is still pending.
            return retry_of(f);
        }
        match self.maybe_finish(run_id).await {
            Ok(()) => JobVerdict::Done,
            Err(f) => retry_of(f),
        }
    }

    /// Sends again every pending job of every running run (a job row is written before its message,
    /// so this loses nothing; a job already done is skipped when its duplicate arrives). For a queue
    /// that does not survive a restart (the local stack); returns how many were sent.
    pub async fn resume_pending(&self) -> Result<usize, Failure> {
        let pending = self.store().pending_jobs_of_running_runs().await?;
        let jobs: Vec<NewJob> = pending.into_iter().map(|(_, j)| j).collect();
        self.send_jobs(&jobs).await?;
        Ok(jobs.len())
    }

    /// Opens the runs a start message asks for; returns their ids.
    pub async fn start_sync(&self, start: &StartSync) -> Result<Vec<i64>, Failure> {
        let kinds = resolve_entities(&start.entities).map_err(Failure::Permanent)?;
        let orgs = crate::organisations(&self.zoho, start.org_id.as_deref()).await?;
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
        for running in self.store().running_runs(org, kind.as_str()).await? {
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
            SyncMode::Incremental => self.store().cursor(org, kind).await?,
            SyncMode::Full => None,
        };
        let params = json!({"entities": start.entities});
        let run_id = self
            .store()
            .start_run_from(
                org,
                kind.as_str(),
                start.mode.into(),
                start.trigger,
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
            match &self.images {
                Some(sync) => sync.plan(run_id, org, self.settings.images_per_job).await?,
                None => {
                    return Err(Failure::Permanent(
                        "image sync needs a blob store, and none is configured".into(),
                    ))
                }
            }
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
        self.store().add_jobs(run_id, None, &jobs).await?;
        self.send_jobs(&jobs).await?;
        self.maybe_finish(run_id).await?;
        Ok(Some(run_id))
    }

    async fn resend_children(&self, run_id: i64, key: &str) -> Result<(), Failure> {
        let pending = self.store().pending_children(run_id, key).await?;
        self.send_jobs(&pending).await
    }

    pub(crate) async fn send_jobs(&self, jobs: &[NewJob]) -> Result<(), Failure> {
        let inbox = &self.inbox;
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
        if self.store().pending_jobs(run_id).await? > 0 {
            return Ok(());
        }
        if !self.store().finish_run(run_id, None).await? {
            return Ok(()); // someone else finished it
        }
        let Some(run) = self.store().run(run_id).await? else {
            return Ok(());
        };
        let kind: Option<EntityKind> = run.entity.parse().ok();
        if let Some(kind) = kind.filter(|k| k.has_zoho_modified_time()) {
            if let Some(high) = self.store().run_high_water(run_id).await? {
                // Never later than the run's start: edits made while it listed are listed again.
                let to = if high.time > run.started_at {
                    Cursor {
                        time: run.started_at,
                        id: String::new(),
                    }
                } else {
                    high
                };
                self.store()
                    .advance_cursor(&run.org_id, kind, &to, Some(run_id))
                    .await?;
            }
        }
        let c = run.counts;
        let metrics = self.writer.metrics();
        if let Some(ms) = run.duration_ms {
            metrics.record_by(Metric::SyncRunDurationMs, Dim::Kind, &run.entity, ms as f64);
        }
        metrics.count_by(
            Metric::SyncRunRecords,
            Dim::Kind,
            &run.entity,
            usize::try_from(c.fetched).unwrap_or(0),
        );
        self.publish(vec![event(
            "tds.sync.completed",
            json!({"run_id": run.id, "org_id": run.org_id, "entity": run.entity, "mode": run.mode,
                   "pages": c.pages, "fetched": c.fetched, "changed": c.changed, "unchanged": c.unchanged,
                   "failed": c.failed, "api_calls": c.api_calls, "duration_ms": run.duration_ms}),
        )])
        .await;
        if kind == Some(EntityKind::Item) && self.images.is_some() {
            let start = SyncJob::Start(StartSync {
                org_id: Some(run.org_id.clone()),
                entities: vec![EntityKind::ItemImage.as_str().to_string()],
                mode: SyncMode::Incremental,
                trigger: tds_core::Trigger::AfterRun,
            });
            if let Err(e) = self.inbox.send(start.to_body()).await {
                tracing::warn!(error = %e, "image sync after the item run not enqueued");
            }
        }
        Ok(())
    }

    async fn fail_run(&self, run: &SyncRun, reason: &str) -> Result<(), Failure> {
        if self.store().finish_run(run.id, Some(reason)).await? {
            tracing::error!(run_id = run.id, %reason, "sync run failed");
            self.writer
                .metrics()
                .count_by(Metric::SyncRunsFailed, Dim::Kind, &run.entity, 1);
            self.publish(vec![event(
                "tds.sync.failed",
                json!({"run_id": run.id, "org_id": run.org_id, "entity": run.entity, "mode": run.mode,
                       "error": reason}),
            )])
            .await;
        }
        Ok(())
    }

    /// Opens a `heal` run whose jobs re-fetch exactly `ids` of `kind`.
    pub async fn start_heal_run(
        &self,
        org: &str,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<i64, Failure> {
        let run_id = self
            .store()
            .start_run(
                org,
                kind.as_str(),
                tds_core::RunMode::Heal,
                tds_core::Trigger::Heal,
                json!({"ids": ids.len()}),
            )
            .await?;
        self.publish(vec![event(
            "tds.sync.started",
            json!({"run_id": run_id, "org_id": org, "entity": kind, "mode": tds_core::RunMode::Heal, "trigger": tds_core::Trigger::Heal}),
        )])
        .await;
        let per_job = if kind == EntityKind::Item {
            100
        } else {
            self.settings.details_per_job.max(1)
        };
        let jobs: Vec<NewJob> = ids
            .chunks(per_job)
            .enumerate()
            .map(|(n, chunk)| {
                let job = SyncJob::Details {
                    run_id,
                    key: format!("heal:{n}"),
                    org_id: org.to_string(),
                    kind,
                    ids: chunk.to_vec(),
                };
                job.new_job()
            })
            .collect();
        self.store().add_jobs(run_id, None, &jobs).await?;
        self.send_jobs(&jobs).await?;
        Ok(run_id)
    }

    pub(crate) async fn publish(&self, events: Vec<DomainEvent>) {
        self.writer.publish(events).await
    }
}

fn retry_of(f: Failure) -> JobVerdict {
    match f {
        Failure::Retry(r) | Failure::Permanent(r) => JobVerdict::Retry(r),
    }
}
