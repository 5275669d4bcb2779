//! Operational reads and set-up: whether the database answers, how many migrations are applied, the
//! cached Zoho token expiries for health (`tds_token_cache`, a table tds-zoho owns and writes), and
//! creating a database on a server (the local stack's private cluster).

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
