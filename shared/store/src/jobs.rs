//! Job rows of fanned-out sync runs (`tds_sync_jobs`): a row is written before its message is sent,
//! completed exactly once (with the counts of what it committed and its high-water mark, and the rows
//! of the jobs it spawns, in one transaction), and read back to re-send successors whose messages were
//! lost, to tell when a run has nothing left, and to find the cursor the run may advance to.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;

use crate::runs::{Cursor, RunCounts};
use crate::{Store, StoreError};

/// A job a run is to enqueue: its key (unique within the run) and its message body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Unique within the run (`page:3`, `details:invoice:2:0`, ...).
    pub key: String,
    /// The message body sent to the inbox.
    pub body: Value,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// No such job in the run (a message from a run that was cleaned up, or forged).
    Unknown,
    /// Not yet completed.
    Pending,
    /// Completed: a redelivery must not redo it.
    Done,
}

impl Store {
    /// Records jobs of a run (existing keys are left as they are); `parent` is the job that spawned them.
    pub async fn add_jobs(
        &self,
        run_id: i64,
        parent: Option<&str>,
        jobs: &[NewJob],
    ) -> Result<(), StoreError> {
        add_jobs(self.pool(), run_id, parent, jobs).await
    }

    /// Where job `key` of run `run_id` stands.
    pub async fn job_state(&self, run_id: i64, key: &str) -> Result<JobState, StoreError> {
        let done: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
            "SELECT done_at FROM tds_sync_jobs WHERE run_id = $1 AND job_key = $2",
        )
        .bind(run_id)
        .bind(key)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("read sync job"))?;
        Ok(match done {
            None => JobState::Unknown,
            Some(None) => JobState::Pending,
            Some(Some(_)) => JobState::Done,
        })
    }

    /// Completes a job once: marks it done with its high-water mark, records the jobs it spawns and adds
    /// `counts` to the run, in one transaction. Returns false (and changes nothing) when the job was
    /// already done, so concurrent duplicates cannot both spawn successors or count twice.
    pub async fn complete_job(
        &self,
        run_id: i64,
        key: &str,
        counts: RunCounts,
        high: Option<&Cursor>,
        children: &[NewJob],
    ) -> Result<bool, StoreError> {
        let err = StoreError::db("complete sync job");
        let mut tx = self.pool().begin().await.map_err(err)?;
        let claimed = sqlx::query(
            "UPDATE tds_sync_jobs SET done_at = clock_timestamp(), high_time = $3, high_id = $4
             WHERE run_id = $1 AND job_key = $2 AND done_at IS NULL",
        )
        .bind(run_id)
        .bind(key)
        .bind(high.map(|c| c.time))
        .bind(high.map(|c| c.id.as_str()))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("complete sync job"))?;
        if claimed.rows_affected() != 1 {
            return Ok(false);
        }
        add_jobs(&mut *tx, run_id, Some(key), children).await?;
        crate::runs::add_counts(&mut *tx, run_id, counts).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("complete sync job"))?;
        Ok(true)
    }

    /// Notes a failed attempt of a job (the message will be redelivered or dead-lettered).
    pub async fn job_attempt_failed(
        &self,
        run_id: i64,
        key: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tds_sync_jobs SET attempts = attempts + 1, last_error = $3 WHERE run_id = $1 AND job_key = $2",
        )
        .bind(run_id)
        .bind(key)
        .bind(error)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("record sync job failure"))?;
        Ok(())
    }

    /// The spawned jobs of `parent` that are not done yet, with their bodies (to re-send them).
    pub async fn pending_children(
        &self,
        run_id: i64,
        parent: &str,
    ) -> Result<Vec<NewJob>, StoreError> {
        let rows = sqlx::query(
            "SELECT job_key, body FROM tds_sync_jobs WHERE run_id = $1 AND parent_key = $2 AND done_at IS NULL
             ORDER BY job_key",
        )
        .bind(run_id)
        .bind(parent)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read pending sync jobs"))?;
        rows.iter()
            .map(|r| {
                Ok(NewJob {
                    key: r.try_get("job_key")?,
                    body: r.try_get("body")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db("read pending sync jobs"))
    }

    /// How many jobs of a run are not done.
    pub async fn pending_jobs(&self, run_id: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT count(*) FROM tds_sync_jobs WHERE run_id = $1 AND done_at IS NULL",
        )
        .bind(run_id)
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::db("count pending sync jobs"))
    }

    /// The newest `(last_modified_time, id)` any job of the run committed.
    pub async fn run_high_water(&self, run_id: i64) -> Result<Option<Cursor>, StoreError> {
        let row = sqlx::query(
            "SELECT high_time, high_id FROM tds_sync_jobs WHERE run_id = $1 AND high_time IS NOT NULL
             ORDER BY high_time DESC, high_id DESC LIMIT 1",
        )
        .bind(run_id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("read run high-water mark"))?;
        row.map(|r| {
            Ok(Cursor {
                time: r.try_get("high_time")?,
                id: r
                    .try_get::<Option<String>, _>("high_id")?
                    .unwrap_or_default(),
            })
        })
        .transpose()
        .map_err(StoreError::db("read run high-water mark"))
    }
}

async fn add_jobs<'e, E>(
    executor: E,
    run_id: i64,
    parent: Option<&str>,
    jobs: &[NewJob],
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    if jobs.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
    let bodies: Vec<&Value> = jobs.iter().map(|j| &j.body).collect();
    sqlx::query(
        "INSERT INTO tds_sync_jobs (run_id, job_key, parent_key, body)
         SELECT $1, k, $2, b FROM UNNEST($3::text[], $4::jsonb[]) AS t(k, b)
         ON CONFLICT (run_id, job_key) DO NOTHING",
    )
    .bind(run_id)
    .bind(parent)
    .bind(keys)
    .bind(bodies)
    .execute(executor)
    .await
    .map_err(StoreError::db("record sync jobs"))?;
    Ok(())
}

impl Store {
    /// Pending jobs of every run still marked running (oldest run first): what a restarted local stack,
    /// whose in-process queue died with it, sends again.
    pub async fn pending_jobs_of_running_runs(&self) -> Result<Vec<(i64, NewJob)>, StoreError> {
        let rows = sqlx::query(
            "SELECT j.run_id, j.job_key, j.body FROM tds_sync_jobs j JOIN tds_sync_runs r ON r.id = j.run_id
             WHERE r.status = 'running' AND j.done_at IS NULL ORDER BY j.run_id, j.created_at, j.job_key",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read pending sync jobs"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("run_id")?,
                    NewJob {
                        key: r.try_get("job_key")?,
                        body: r.try_get("body")?,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db("read pending sync jobs"))
    }
}
