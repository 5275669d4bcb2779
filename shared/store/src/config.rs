//! Store configuration from the environment, with pool limits and timeouts that fit Lambda
//! (one or two connections per sandbox, short timeouts, connections recycled before RDS Proxy or
//! PostgreSQL drops them). The database URL holds a password, so it is never printed.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::StoreError;

/// How to reach PostgreSQL and how the pool behaves.
#[derive(Clone)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/db?sslmode=...`; never logged.
    pub database_url: String,
    /// Pool size. A Lambda sandbox handles one invocation at a time: 2 leaves room for one concurrent read.
    pub max_connections: u32,
    /// How long to wait for a free connection (or a new one) before failing retriably.
    pub acquire_timeout: Duration,
    /// Close connections idle this long (a frozen sandbox should not hold server slots for long).
    pub idle_timeout: Duration,
    /// Recycle connections after this long.
    pub max_lifetime: Duration,
    /// Server-side `statement_timeout` for every statement.
    pub statement_timeout: Duration,
}

/// A configuration variable that is missing or malformed; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("environment variable {name} is invalid: {problem}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it (never its value when it is secret).
        problem: String,
    },
}

impl StoreConfig {
    /// Defaults for `database_url`: pool of 2, 5 s acquire, 60 s idle, 30 min lifetime, 30 s statements.
    pub fn new(database_url: impl Into<String>) -> StoreConfig {
        StoreConfig {
            database_url: database_url.into(),
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(30 * 60),
            statement_timeout: Duration::from_secs(30),
        }
    }

    /// Reads `DATABASE_URL` (required) and the optional `TDS_DB_MAX_CONNECTIONS`,
    /// `TDS_DB_ACQUIRE_TIMEOUT_MS` and `TDS_DB_STATEMENT_TIMEOUT_MS`.
    pub fn from_env() -> Result<StoreConfig, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`StoreConfig::from_env`], reading variables through `lookup` (testable without the process env).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<StoreConfig, ConfigError> {
        let url = lookup("DATABASE_URL")
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing("DATABASE_URL"))?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                problem: "must start with postgres:// or postgresql://".into(),
            });
        }
        let mut config = StoreConfig::new(url);
        let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            match lookup(name) {
                None => Ok(None),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err(ConfigError::Invalid {
                        name,
                        problem: format!("must be a positive whole number, got {v:?}"),
                    }),
                },
            }
        };
        if let Some(n) = number("TDS_DB_MAX_CONNECTIONS")? {
            config.max_connections = u32::try_from(n).map_err(|_| ConfigError::Invalid {
                name: "TDS_DB_MAX_CONNECTIONS",
                problem: "is too large".into(),
            })?;
        }
        if let Some(ms) = number("TDS_DB_ACQUIRE_TIMEOUT_MS")? {
            config.acquire_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = number("TDS_DB_STATEMENT_TIMEOUT_MS")? {
            config.statement_timeout = Duration::from_millis(ms);
        }
        Ok(config)
    }

    /// Connection options from the URL, with `application_name` and `statement_timeout` set.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions, StoreError> {
        let options: PgConnectOptions = self.database_url.parse().map_err(|_| {
            // sqlx's parse error can echo the URL; say what is wrong without it.
            StoreError::Config(ConfigError::Invalid {
                name: "DATABASE_URL",
                problem: "is not a valid PostgreSQL connection URL".into(),
            })
        })?;
        let timeout_ms = self.statement_timeout.as_millis().to_string();
        Ok(options.application_name("tds").options([
            ("statement_timeout", timeout_ms.as_str()),
            // TDS's batch statements join UNNEST'ed arrays to tables that grow from empty: a generic
            // plan cached while a table was small keeps scanning it whole once it is large. Custom
            // plans cost a little planning per statement and follow the table as it grows.
            ("plan_cache_mode", PLAN_CACHE_MODE),
        ]))
    }

    /// The URL with any password replaced by `***`, for messages.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.database_url)
    }
}

/// The `plan_cache_mode` of TDS's connections (see [`StoreConfig`]'s connect options).
pub const PLAN_CACHE_MODE: &str = "force_custom_plan";

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("database_url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// Replaces the password of a `scheme://user:password@host/...` URL (and any `password=` query
/// parameter) with `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find("password=") {
        let end = out[q..].find('&').map_or(out.len(), |i| q + i);
        out.replace_range(q + "password=".len()..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let c = StoreConfig::new("postgres://tds:s3cr%40t@db.example:5432/tds?sslmode=require");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(
            shown.contains("postgres://tds:***@db.example:5432/tds"),
            "{shown}"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=a&password=xyz&sslmode=disable"),
            "postgres://h/db?user=a&password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = StoreConfig::from_lookup(|_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable DATABASE_URL is required but not set"
        );
        let err = StoreConfig::from_lookup(|n| match n {
            "DATABASE_URL" => Some("postgres://h/db".into()),
            "TDS_DB_MAX_CONNECTIONS" => Some("many".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("TDS_DB_MAX_CONNECTIONS"), "{err}");
        let err = StoreConfig::from_lookup(|n| (n == "DATABASE_URL").then(|| "mysql://x".into()))
            .unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
        let ok = StoreConfig::from_lookup(|n| match n {
            "DATABASE_URL" => Some("postgres://h/db".into()),
            "TDS_DB_MAX_CONNECTIONS" => Some("3".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(ok.max_connections, 3);
    }
}
