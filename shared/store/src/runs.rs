//! Sync runs and incremental-sync cursors: the bookkeeping scheduled syncs and the stock poller keep.
//! A run is started, accumulates counts as its pages commit, and finishes completed or failed with its
//! error. A cursor only ever moves forward: it is advanced after the rows it covers are committed, to
//! the `(last_modified_time, id)` of the last of them, so records edited in the same second are not
//! skipped.

use chrono::{DateTime, Utc};
use sqlx::Row;
use tds_core::{EntityKind, RunMode, Trigger};

use crate::{Store, StoreError};

/// How a run ended (or that it has not yet).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going.
    Running,
    /// Finished without error.
    Completed,
    /// Stopped by an error.
    Failed,
}

impl RunStatus {
    /// The status as stored (`running`, `completed`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }

    /// `running`, `completed` or `failed`; anything else is `None`.
    pub fn from_name(s: &str) -> Option<RunStatus> {
        match s {
            "running" => Some(RunStatus::Running),
            "completed" => Some(RunStatus::Completed),
            "failed" => Some(RunStatus::Failed),
            _ => None,
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            _ => RunStatus::Running,
        }
    }
}

/// Counts a page (or any step) of a run adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Pages committed.
    pub pages: i32,
    /// Records fetched from Zoho.
    pub fetched: i64,
    /// Rows that changed.
    pub changed: i64,
    /// Rows already up to date.
    pub unchanged: i64,
    /// Records that failed.
    pub failed: i64,
    /// Zoho API calls made.
    pub api_calls: i64,
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRun {
    /// Run id.
    pub id: i64,
    /// Organisation.
    pub org_id: String,
    /// Entity kind (or `all`).
    pub entity: String,
    /// `full`, `incremental`, `heal`, a stock poll's mode.
    pub mode: RunMode,
    /// Status.
    pub status: RunStatus,
    /// Accumulated counts.
    pub counts: RunCounts,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Duration in milliseconds, once finished.
    pub duration_ms: Option<i64>,
    /// The error a failed run stopped on.
    pub error: Option<String>,
    /// What started it.
    pub trigger: Trigger,
    /// The cursor an incremental run lists from.
    pub since: Option<Cursor>,
    /// When a job of the run last committed.
    pub last_activity_at: DateTime<Utc>,
}

/// An incremental-sync position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// The newest committed `last_modified_time`.
    pub time: DateTime<Utc>,
    /// The id that broke the tie at that time.
    pub id: String,
}

impl Store {
    /// Records the start of a run; returns its id.
    pub async fn start_run(
        &self,
        org_id: &str,
        entity: &str,
        mode: RunMode,
        trigger: Trigger,
        params: serde_json::Value,
    ) -> Result<i64, StoreError> {
        self.start_run_from(org_id, entity, mode, trigger, params, None)
            .await
    }

    /// Records the start of a run that covers what changed after `since` (an incremental run's
    /// starting cursor, kept with the run so every job of it lists the same window).
    pub async fn start_run_from(
        &self,
        org_id: &str,
        entity: &str,
        mode: RunMode,
        trigger: Trigger,
        params: serde_json::Value,
        since: Option<&Cursor>,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO tds_sync_runs (org_id, entity, mode, trigger, params, since_time, since_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(org_id)
        .bind(entity)
        .bind(mode.as_str())
        .bind(trigger.as_str())
        .bind(params)
        .bind(since.map(|c| c.time))
        .bind(since.map(|c| c.id.as_str()))
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::db("start sync run"))
    }

    /// Adds `counts` to a running run.
    pub async fn add_to_run(&self, run_id: i64, counts: RunCounts) -> Result<(), StoreError> {
        add_counts(self.pool(), run_id, counts).await
    }

    /// Finishes a run as completed (`error` None) or failed; a finished run is not changed again.
    /// Returns whether this call finished it (false: it was already finished).
    pub async fn finish_run(&self, run_id: i64, error: Option<&str>) -> Result<bool, StoreError> {
        let status = if error.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Completed
        };
        let done = sqlx::query(
            "UPDATE tds_sync_runs SET status = $2, error = $3, finished_at = clock_timestamp(),
                 duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint
             WHERE id = $1 AND status = 'running'",
        )
        .bind(run_id)
        .bind(status.as_str())
        .bind(error)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("finish sync run"))?;
        Ok(done.rows_affected() == 1)
    }

    /// One run.
    pub async fn run(&self, run_id: i64) -> Result<Option<SyncRun>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM tds_sync_runs WHERE id = $1"
        ))
        .bind(run_id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("read sync run"))?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// Runs of `(org, entity)` still marked running, oldest first.
    pub async fn running_runs(
        &self,
        org_id: &str,
        entity: &str,
    ) -> Result<Vec<SyncRun>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM tds_sync_runs WHERE org_id = $1 AND entity = $2 AND status = 'running'
             ORDER BY id"
        ))
        .bind(org_id)
        .bind(entity)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read running sync runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    /// The most recent runs, newest first (of one organisation when `org_id` is given).
    pub async fn recent_runs(
        &self,
        org_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SyncRun>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM tds_sync_runs WHERE $1::text IS NULL OR org_id = $1
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(org_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read sync runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    /// A page of runs, newest first, filtered in SQL (organisation, entity, status).
    pub async fn runs_page(
        &self,
        filter: &RunFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<SyncRun>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM tds_sync_runs
             WHERE ($1::text IS NULL OR org_id = $1) AND ($2::text IS NULL OR entity = $2)
               AND ($3::text IS NULL OR status = $3) AND ($6::text IS NULL OR mode = $6)
             ORDER BY id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(filter.org_id.as_deref())
        .bind(filter.entity.as_deref())
        .bind(filter.status.map(RunStatus::as_str))
        .bind(limit)
        .bind(offset)
        .bind(filter.mode.map(RunMode::as_str))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read sync runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    /// The newest completed run of each entity of an organisation (entity order).
    pub async fn last_successes(&self, org_id: &str) -> Result<Vec<SyncRun>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT DISTINCT ON (entity) {RUN_COLUMNS} FROM tds_sync_runs
             WHERE org_id = $1 AND status = 'completed' ORDER BY entity, id DESC"
        ))
        .bind(org_id)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read the last successful runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    /// Records ids a full run listed (one statement).
    pub async fn record_listed(&self, run_id: i64, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO tds_run_listed (run_id, zoho_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(ids)
        .execute(self.pool())
        .await
        .map(|_| ())
        .map_err(StoreError::db("record listed ids"))
    }

    /// The live rows of `(org, kind)` that full run `run_id` did not list, in id order; earlier
    /// runs' listings of the same `(org, kind)` are forgotten (one transaction).
    pub async fn unlisted_live_ids(
        &self,
        run_id: i64,
        org_id: &str,
        kind: EntityKind,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::db("unlisted rows"))?;
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT t.zoho_id FROM {} t WHERE t.org_id = $1 AND t.deleted_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM tds_run_listed l WHERE l.run_id = $2 AND l.zoho_id = t.zoho_id)
             ORDER BY t.zoho_id",
            kind.table()
        ))
        .bind(org_id)
        .bind(run_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::db("unlisted rows"))?;
        // Earlier runs' listings go; this run's stay until a later one, so a retried last page
        // finds the same candidates.
        sqlx::query(
            "DELETE FROM tds_run_listed WHERE run_id IN
               (SELECT id FROM tds_sync_runs WHERE org_id = $1 AND entity = $2 AND id < $3)",
        )
        .bind(org_id)
        .bind(kind.as_str())
        .bind(run_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("unlisted rows"))?;
        tx.commit().await.map_err(StoreError::db("unlisted rows"))?;
        Ok(ids)
    }

    /// The incremental-sync cursor of `(org, kind)`, if one was ever committed.
    pub async fn cursor(
        &self,
        org_id: &str,
        kind: EntityKind,
    ) -> Result<Option<Cursor>, StoreError> {
        let row = sqlx::query(
            "SELECT cursor_time, cursor_id FROM tds_sync_cursors WHERE org_id = $1 AND entity = $2",
        )
        .bind(org_id)
        .bind(kind.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("read cursor"))?;
        row.map(|r| {
            Ok(Cursor {
                time: r.try_get("cursor_time")?,
                id: r.try_get("cursor_id")?,
            })
        })
        .transpose()
        .map_err(StoreError::db("read cursor"))
    }

    /// Moves the cursor forward to `to` (never backward); returns the cursor in force afterwards.
    pub async fn advance_cursor(
        &self,
        org_id: &str,
        kind: EntityKind,
        to: &Cursor,
        run_id: Option<i64>,
    ) -> Result<Cursor, StoreError> {
        let r = sqlx::query(
            "INSERT INTO tds_sync_cursors AS c (org_id, entity, cursor_time, cursor_id, run_id) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_id, entity) DO UPDATE SET cursor_time = EXCLUDED.cursor_time, cursor_id = EXCLUDED.cursor_id,
                 run_id = EXCLUDED.run_id, updated_at = now()
             WHERE (EXCLUDED.cursor_time, EXCLUDED.cursor_id) > (c.cursor_time, c.cursor_id)
             RETURNING cursor_time, cursor_id",
        )
        .bind(org_id)
        .bind(kind.as_str())
        .bind(to.time)
        .bind(&to.id)
        .bind(run_id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("advance cursor"))?;
        match r {
            Some(r) => Ok(Cursor {
                time: r
                    .try_get("cursor_time")
                    .map_err(StoreError::db("advance cursor"))?,
                id: r
                    .try_get("cursor_id")
                    .map_err(StoreError::db("advance cursor"))?,
            }),
            None => self
                .cursor(org_id, kind)
                .await?
                .ok_or_else(|| StoreError::Layout {
                    table: "tds_sync_cursors",
                    problem: "cursor vanished while advancing".into(),
                }),
        }
    }
}

const RUN_COLUMNS: &str =
    "id, org_id, entity, mode, trigger, status, pages_done, fetched, changed, unchanged, failed,
    api_calls, started_at, finished_at, duration_ms, error, since_time, since_id, last_activity_at";

fn run_from_row(r: &sqlx::postgres::PgRow) -> Result<SyncRun, StoreError> {
    let read = |e| StoreError::db("read sync run")(e);
    let since_time: Option<DateTime<Utc>> = r.try_get("since_time").map_err(read)?;
    let since_id: Option<String> = r.try_get("since_id").map_err(read)?;
    let status: String = r.try_get("status").map_err(read)?;
    let mode: String = r.try_get("mode").map_err(read)?;
    let trigger: String = r.try_get("trigger").map_err(read)?;
    let unknown = |e: tds_core::run::UnknownName| read(sqlx::Error::Decode(Box::new(e)));
    Ok(SyncRun {
        id: r.try_get("id").map_err(read)?,
        org_id: r.try_get("org_id").map_err(read)?,
        entity: r.try_get("entity").map_err(read)?,
        mode: mode.parse().map_err(unknown)?,
        status: RunStatus::parse(&status),
        counts: RunCounts {
            pages: r.try_get("pages_done").map_err(read)?,
            fetched: r.try_get("fetched").map_err(read)?,
            changed: r.try_get("changed").map_err(read)?,
            unchanged: r.try_get("unchanged").map_err(read)?,
            failed: r.try_get("failed").map_err(read)?,
            api_calls: r.try_get("api_calls").map_err(read)?,
        },
        started_at: r.try_get("started_at").map_err(read)?,
        finished_at: r.try_get("finished_at").map_err(read)?,
        duration_ms: r.try_get("duration_ms").map_err(read)?,
        error: r.try_get("error").map_err(read)?,
        trigger: trigger.parse().map_err(unknown)?,
        since: match (since_time, since_id) {
            (Some(time), id) => Some(Cursor {
                time,
                id: id.unwrap_or_default(),
            }),
            _ => None,
        },
        last_activity_at: r.try_get("last_activity_at").map_err(read)?,
    })
}

/// Adds `counts` to a running run (and notes the activity); a finished run's counts are final.
pub(crate) async fn add_counts<'e, E>(
    executor: E,
    run_id: i64,
    counts: RunCounts,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(
        "UPDATE tds_sync_runs SET pages_done = pages_done + $2, fetched = fetched + $3, changed = changed + $4,
             unchanged = unchanged + $5, failed = failed + $6, api_calls = api_calls + $7,
             last_activity_at = clock_timestamp()
         WHERE id = $1 AND status = 'running'",
    )
    .bind(run_id)
    .bind(counts.pages)
    .bind(counts.fetched)
    .bind(counts.changed)
    .bind(counts.unchanged)
    .bind(counts.failed)
    .bind(counts.api_calls)
    .execute(executor)
    .await
    .map_err(StoreError::db("update sync run"))?;
    Ok(())
}

/// Filters of [`Store::runs_page`]; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Organisation.
    pub org_id: Option<String>,
    /// Entity kind name (`item`, `item_stock`, ...).
    pub entity: Option<String>,
    /// Run status.
    pub status: Option<RunStatus>,
    /// Run mode.
    pub mode: Option<RunMode>,
}
