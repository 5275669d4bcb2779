//! Page and details jobs of a sync run: list one page, decide which records changed against the
//! stored versions, complete them with the fewest calls (`/itemdetails` for 100 items at a time; a
//! detail GET for documents, contacts and price books that changed, in `details` jobs when there are
//! many) and write them through the [`crate::writer::EntityWriter`].

use std::collections::HashMap;

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::Value;
use tds_core::fields::format_zoho_timestamp;
use tds_core::EntityKind;
use tds_store::{Cursor, RunCounts, SyncRun};
use tds_zoho::Priority;

use crate::jobs::{
    differs, list_filter, record_id, record_time, stable_order, Completion, JobOutput, SyncJob,
    SyncMode,
};
use crate::runner::SyncRunner;
use crate::writer::Written;
use crate::{needs_refetch, Failure};

impl SyncRunner {
    pub(crate) async fn page_job(
        &self,
        run: &SyncRun,
        org: &str,
        kind: EntityKind,
        page: u32,
    ) -> Result<JobOutput, Failure> {
        let mode = match run.mode {
            tds_core::RunMode::Sync(mode) => mode,
            _ => SyncMode::Incremental,
        };
        let floor = match (mode, &run.since) {
            (SyncMode::Incremental, Some(c)) if kind.has_zoho_modified_time() => {
                Some(c.time - self.settings.overlap)
            }
            _ => None,
        };
        let mut query: Vec<(String, String)> = Vec::new();
        if kind.spec().sorts_by_modified && floor.is_some() {
            query.push(("sort_column".into(), "last_modified_time".into()));
            query.push(("sort_order".into(), "D".into()));
        } else {
            query.extend(stable_order(kind));
        }
        query.extend(list_filter(kind));
        if let (Some(floor), true) = (floor, kind.spec().modified_filter) {
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
                    stop |= kind.spec().sorts_by_modified;
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
        let listed_ids: Vec<String> = records.iter().filter_map(|r| record_id(kind, r)).collect();
        if mode == SyncMode::Full {
            self.store().record_listed(run.id, &listed_ids).await?;
        }
        if listed.has_more && !stop {
            out.children.push(SyncJob::Page {
                run_id: run.id,
                key: format!("page:{}", page + 1),
                org_id: org.to_string(),
                kind,
                mode,
                page: page + 1,
            });
        } else if mode == SyncMode::Full {
            // The listing is complete: live rows it did not list are deletion candidates. Absence
            // proves nothing (pages shift when Zoho deletes a record meanwhile), so each is read
            // again by id; a details job tombstones what Zoho answers "does not exist".
            let unlisted = self.store().unlisted_live_ids(run.id, org, kind).await?;
            if !unlisted.is_empty() {
                tracing::info!(org, %kind, candidates = unlisted.len(), "full listing lacks stored rows: confirming with Zoho");
            }
            let per_job = if kind == EntityKind::Item {
                100
            } else {
                self.settings.details_per_job.max(1)
            };
            out.children.extend(details_jobs(
                run.id, org, kind, &unlisted, per_job, "unlisted",
            ));
        }

        // Which records need their complete form fetched.
        let ids = listed_ids;
        let stored: HashMap<String, tds_store::StoredRow> = self
            .store()
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
        match kind.spec().completion {
            Completion::Derived => {
                return Err(Failure::Permanent(format!(
                    "{kind} is derived from its parent's records and has no listing of its own"
                )))
            }
            Completion::List => {
                let written = self.persist(org, kind, records).await?;
                out.wrote(&written);
            }
            Completion::BulkItems => {
                let wanted: Vec<String> = records
                    .iter()
                    .filter(|r| mode == SyncMode::Full || changed(r))
                    .filter_map(|r| record_id(kind, r))
                    .collect();
                out.counts.unchanged += (records.len() - wanted.len()) as i64;
                let d = self.details_job(org, kind, &wanted).await?;
                out.absorb(d);
            }
            Completion::DetailGet => {
                let (complete, partial): (Vec<Value>, Vec<Value>) = records
                    .into_iter()
                    .filter(|r| kind == EntityKind::PriceBook || changed(r))
                    .partition(|r| kind != EntityKind::PriceBook && !needs_refetch(kind, r));
                out.counts.unchanged +=
                    out.counts.fetched - (complete.len() + partial.len()) as i64;
                if !complete.is_empty() {
                    let written = self.persist(org, kind, complete).await?;
                    out.wrote(&written);
                }
                let wanted: Vec<String> =
                    partial.iter().filter_map(|r| record_id(kind, r)).collect();
                if wanted.len() <= self.settings.inline_details {
                    let d = self.details_job(org, kind, &wanted).await?;
                    out.absorb(d);
                } else {
                    let per_job = self.settings.details_per_job.max(1);
                    let prefix = format!("details:{page}");
                    out.children
                        .extend(details_jobs(run.id, org, kind, &wanted, per_job, &prefix));
                }
            }
        }
        Ok(out)
    }

    /// Fetches complete records by id and writes them; a record Zoho no longer has becomes a tombstone.
    pub(crate) async fn details_job(
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
                    // Zoho will not give this one record (a permanent refusal): recorded on the
                    // run as failed and skipped, so the others are written and the run completes.
                    Err(
                        e @ (tds_zoho::ZohoError::Api { .. }
                        | tds_zoho::ZohoError::InvalidId(_)
                        | tds_zoho::ZohoError::Malformed { .. }
                        | tds_zoho::ZohoError::Parse(_)),
                    ) if !e.is_retriable() => {
                        tracing::warn!(org, %kind, zoho_id = %id, error = %e, "record skipped: Zoho refused it");
                        out.counts.failed += 1;
                    }
                    Err(e) => return Err(Failure::from(e)),
                }
            }
        }
        let written = self.persist(org, kind, records).await?;
        out.wrote(&written);
        let gone = self
            .writer
            .tombstone_ids(org, kind, gone, Utc::now())
            .await?;
        out.counts.changed += gone;
        // Changes a poll found were not brought by a webhook first (a webhook's write would have
        // left the row unchanged): a steady stream of them means Zoho's workflow rules are silent.
        self.writer.metrics().count_by(
            tds_core::metrics::Metric::UnannouncedChanges,
            tds_core::metrics::Dim::Org,
            org,
            usize::try_from(written.changed() + gone).unwrap_or(0),
        );
        Ok(out)
    }

    /// Writes complete records just read from Zoho (with their child rows) through the writer.
    async fn persist(
        &self,
        org: &str,
        kind: EntityKind,
        records: Vec<Value>,
    ) -> Result<Written, Failure> {
        if records.is_empty() {
            return Ok(Written::default());
        }
        self.writer.write_read(org, kind, records).await
    }
}

/// `details` jobs of run `run_id` for `ids`, `per_job` ids each, keyed `{prefix}:{n}`.
fn details_jobs(
    run_id: i64,
    org: &str,
    kind: EntityKind,
    ids: &[String],
    per_job: usize,
    prefix: &str,
) -> Vec<SyncJob> {
    ids.chunks(per_job)
        .enumerate()
        .map(|(n, chunk)| SyncJob::Details {
            run_id,
            key: format!("{prefix}:{n}"),
            org_id: org.to_string(),
            kind,
            ids: chunk.to_vec(),
        })
        .collect()
}
