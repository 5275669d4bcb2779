//! TDS's PostgreSQL store.
//!
//! Owns the connection pool (sized and timed for Lambda), the embedded migrations (`migrations/` at the
//! repository root), the version-gated batch upsert and tombstones for every entity kind ([`upsert`]),
//! the reads later stages need ([`read`]), sync-run, job and cursor bookkeeping ([`runs`], [`jobs`]),
//! webhook receipts ([`receipts`]), comparison reports, statistics history and alerts ([`reports`]) and
//! operational reads ([`ops`]). Every SQL statement of TDS lives here, except those on the Zoho token
//! and budget tables (`tds_token_cache`, `tds_rate_budget`), which tds-zoho owns. It knows the schema;
//! it does not know Zoho's wire format (that is `tds-core`) nor anything about AWS.

mod columns;
mod config;
mod error;
pub mod jobs;
pub mod ops;
pub mod outbox;
pub mod queue;
pub mod read;
pub mod receipts;
pub mod reports;
pub mod runs;
pub mod tx;
pub mod upsert;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub use config::{ConfigError, StoreConfig, PLAN_CACHE_MODE};
pub use error::StoreError;
pub use jobs::{JobState, NewJob};
pub use ops::{ensure_database, ActivityHour, TokenExpiry};
pub use queue::{PgQueue, PgRedrive};
pub use read::{EntityCounts, ImageWork, ItemTotals, RowVersion, StoredRow};
pub use receipts::NewReceipt;
pub use reports::{AlertRow, AlertSeverity, HistoryRow, NewComparison};
pub use runs::{Cursor, RunCounts, RunFilter, RunStatus, SyncRun};
pub use tx::WriteTx;
pub use upsert::{BatchReport, Outcome, RowOutcome, Tombstone};

/// A tombstone older than this gives way to a fresh read from Zoho that still has the record
/// ([`Store::upsert_fresh`]): Zoho has just shown it, so the deletion was wrong (a listing that shifted
/// while it was paged, a misrouted webhook). Younger tombstones may be newer than the read.
pub const RESTORE_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// How far in the future a `last_modified_time` may lie before TDS stops trusting it (clock skew
/// between Zoho and this machine): a webhook claiming more is read again from Zoho, and a stored
/// version beyond it gives way to a fresh read.
pub const FUTURE_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

/// A pooled connection idle longer than this is tested (one round trip) before it is handed out.
pub const PING_IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a pooled connection must be tested before use: only one that sat idle past
/// [`PING_IDLE_AFTER`] (a thawed Lambda sandbox, a quiet stretch), where the server or a proxy may
/// have dropped it. Back-to-back batches reuse a connection without the extra round trip; a
/// connection that breaks mid-batch fails the batch retriably, so nothing is lost either way.
pub fn needs_ping(meta: &sqlx::pool::PoolConnectionMetadata) -> bool {
    meta.idle_for >= PING_IDLE_AFTER
}

/// The migrations in `migrations/`, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Handle on the TDS database: a connection pool plus the typed operations on it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Builds a store whose pool connects lazily (no connection is made until the first query), so a
    /// Lambda cold start costs nothing until the database is needed. Fails only on a malformed URL.
    pub fn connect_lazy(config: &StoreConfig) -> Result<Store, StoreError> {
        let options = config.connect_options()?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(0)
            .acquire_timeout(config.acquire_timeout)
            .idle_timeout(Some(config.idle_timeout))
            .max_lifetime(Some(config.max_lifetime))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if needs_ping(&meta) {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        Ok(Store { pool })
    }

    /// Wraps an existing pool (tests, tools).
    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    /// The underlying pool, for queries outside this crate's operations.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies every pending migration (forward-only; see `migrations/README.md`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::Migrate)
    }
}
