//! Operational reads and set-up: whether the database answers, how many migrations are applied, the
//! cached Zoho token expiries for health (`tds_token_cache`, a table tds-zoho owns and writes),
//! activity per hour for the admin metrics (webhooks applied; sync runs with their records, failures,
//! time and API calls), and creating a database on a server (the local stack's private cluster).

use chrono::{DateTime, Utc};

use crate::{Store, StoreError};

/// A cached Zoho access token's credential and expiry (never the token).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenExpiry {
    /// The credential the token belongs to.
    pub credential_id: String,
    /// When the cached token expires (none cached when `None`).
    pub expires_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Whether the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::db("ping"))
    }

    /// How many migrations are recorded as applied (0 before the first).
    pub async fn applied_migrations(&self) -> Result<i64, StoreError> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("applied migrations"))?;
        if !exists {
            return Ok(0);
        }
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("applied migrations"))
    }

    /// Every cached Zoho token's credential and expiry, by credential.
    pub async fn token_expiries(&self) -> Result<Vec<TokenExpiry>, StoreError> {
        sqlx::query_as(
            "SELECT credential_id, expires_at FROM tds_token_cache ORDER BY credential_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("token expiries"))
    }
}

/// Creates database `name` on the server at `server_url` unless it exists; `name` must be a plain
/// identifier (letters, digits, `_`).
pub async fn ensure_database(server_url: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Layout {
            table: "pg_database",
            problem: format!("{name:?} is not a plain database name"),
        });
    }
    let pool = sqlx::PgPool::connect(server_url)
        .await
        .map_err(StoreError::db("connect to the server"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&pool)
            .await
            .map_err(StoreError::db("look up the database"))?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .map_err(StoreError::db("create the database"))?;
    }
    pool.close().await;
    Ok(())
}

/// One hour of activity ([`Store::activity`]).
#[derive(
    Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct ActivityHour {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// Webhook deliveries applied (receipts processed in the hour).
    pub webhooks_applied: i64,
    /// Records fetched by sync runs that finished in the hour.
    pub records_synced: i64,
    /// Sync runs that finished in the hour.
    pub runs_finished: i64,
    /// Of those, the runs that failed.
    pub runs_failed: i64,
    /// Zoho API calls those runs made.
    pub api_calls: i64,
    /// Sum of those runs' durations, in milliseconds.
    pub duration_ms_sum: i64,
}

impl Store {
    /// Activity per hour from `since` to now (every hour present, idle ones with zeros): webhooks
    /// applied, and the sync runs that finished with their records, failures, API calls and time;
    /// of one organisation, or of all when `org_id` is `None`.
    pub async fn activity(
        &self,
        since: DateTime<Utc>,
        org_id: Option<&str>,
    ) -> Result<Vec<ActivityHour>, StoreError> {
        sqlx::query_as(
            "WITH hours AS (
                 SELECT generate_series(date_trunc('hour', $1::timestamptz), date_trunc('hour', now()),
                                        interval '1 hour') AS hour),
             w AS (SELECT date_trunc('hour', processed_at) AS hour, count(*) AS n
                   FROM tds_webhook_receipts WHERE processed_at >= $1 AND ($2::text IS NULL OR org_id = $2)
                   GROUP BY 1),
             r AS (SELECT date_trunc('hour', finished_at) AS hour, count(*) AS runs,
                          count(*) FILTER (WHERE status = 'failed') AS failed, sum(fetched) AS fetched,
                          sum(api_calls) AS calls, sum(coalesce(duration_ms, 0)) AS ms
                   FROM tds_sync_runs WHERE finished_at >= $1 AND ($2::text IS NULL OR org_id = $2)
                   GROUP BY 1)
             SELECT hours.hour, coalesce(w.n, 0) AS webhooks_applied,
                    coalesce(r.fetched, 0)::bigint AS records_synced, coalesce(r.runs, 0) AS runs_finished,
                    coalesce(r.failed, 0) AS runs_failed, coalesce(r.calls, 0)::bigint AS api_calls,
                    coalesce(r.ms, 0)::bigint AS duration_ms_sum
             FROM hours LEFT JOIN w ON w.hour = hours.hour LEFT JOIN r ON r.hour = hours.hour
             ORDER BY hours.hour",
        )
        .bind(since)
        .bind(org_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("activity"))
    }
}
