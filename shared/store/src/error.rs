//! Store errors, split into retriable (the database is unreachable or busy: try again later) and
//! permanent (the request can never succeed as it is).

use sqlx::migrate::MigrateError;

use crate::ConfigError;

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("database error during {operation}: {source}")]
    Database {
        /// What the store was doing.
        operation: &'static str,
        /// The driver's error (sqlx never includes the connection password).
        #[source]
        source: sqlx::Error,
    },
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[source] MigrateError),
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An entity wrote an inconsistent set of columns (a programming error caught before any write).
    #[error("column layout error for table {table}: {problem}")]
    Layout {
        /// The table being written.
        table: &'static str,
        /// What was inconsistent.
        problem: String,
    },
}

impl StoreError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { operation, source }
    }

    /// Whether retrying later may succeed: lost or refused connections, pool exhaustion, timeouts,
    /// serialization failures and deadlocks. Constraint violations and bad input are permanent.
    pub fn is_retriable(&self) -> bool {
        match self {
            StoreError::Database { source, .. } => match source {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_) => true,
                sqlx::Error::Database(db) => matches!(
                    db.code().as_deref(),
                    // serialization_failure, deadlock_detected, query_canceled (statement_timeout),
                    // too_many_connections, admin/crash shutdown, cannot_connect_now
                    Some("40001" | "40P01" | "57014" | "53300" | "57P01" | "57P02" | "57P03")
                ),
                _ => false,
            },
            StoreError::Migrate(_) | StoreError::Config(_) | StoreError::Layout { .. } => false,
        }
    }
}
