//! Cold-start wiring shared by the Lambda functions: [`lambda`] reads the configuration once (every
//! missing variable named at once; a bad value fails the start, naming it), builds the store (the
//! database URL from `DATABASE_URL` or an RDS-style secret, `TDS_DB_*` pool settings), the Zoho
//! client from the credentials secret and the AWS ports, and hands them to the one application
//! builder, [`tds_sync::App`].

use std::sync::Arc;

use tds_sync::{App, Settings};

use tds_core::ports::SecretStore;
use tds_store::{Store, StoreConfig};
use tds_zoho::{ClientSettings, DataCentre, SecretDirectory, ZohoClient};

use crate::emf::EmfWriter;
use crate::SecretsManagerStore;
use tds_core::metrics::Metrics;

/// A start-up failure (what `lambda_runtime::Error` is).
pub type BootError = Box<dyn std::error::Error + Send + Sync>;

/// The value of a required, non-empty environment variable.
pub fn required(name: &str) -> Result<String, BootError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("environment variable {name} is required but not set").into())
}

/// An optional variable parsed as `T`; a value that does not parse fails, naming the variable.
pub fn optional<T: std::str::FromStr>(name: &str) -> Result<Option<T>, BootError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| format!("{name}: {v:?} is not valid: {e}").into()),
        _ => Ok(None),
    }
}

/// The database URL: `DATABASE_URL`, or built from the RDS-style secret `TDS_DATABASE_SECRET_ARN`
/// (see [`url_from_secret`]).
pub async fn database_url(secrets: &SecretsManagerStore) -> Result<String, BootError> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok(url);
    }
    let arn = required("TDS_DATABASE_SECRET_ARN")?;
    let doc: serde_json::Value = serde_json::from_str(&secrets.secret(&arn).await?)
        .map_err(|_| "the database secret is not JSON")?;
    Ok(url_from_secret(&doc, |name| std::env::var(name).ok())?)
}

/// The URL of a database secret: its `database_url`, or one made of `username`, `password`, `host`,
/// `port` (5432) and `dbname`. A secret RDS manages for a master user holds only the user and the
/// password: `host`, `port` and `dbname` then come from `TDS_DATABASE_HOST`, `TDS_DATABASE_PORT` and
/// `TDS_DATABASE_NAME` (`postgres`). User, password and name are percent-encoded, so any character
/// RDS generates is safe. Errors name what is missing, never a value.
pub fn url_from_secret(
    doc: &serde_json::Value,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if let Some(url) = doc.get("database_url").and_then(|v| v.as_str()) {
        return Ok(url.to_string());
    }
    let field = |k: &str, var: &str| -> Option<String> {
        match doc.get(k) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => env(var).filter(|v| !v.trim().is_empty()),
        }
    };
    let missing =
        |what: &str, var: &str| format!("the database secret has no {what} (nor is {var} set)");
    let user = field("username", "TDS_DATABASE_USER")
        .ok_or_else(|| missing("username", "TDS_DATABASE_USER"))?;
    let password = match doc.get("password") {
        Some(serde_json::Value::String(p)) => p.clone(),
        _ => return Err("the database secret has no password".into()),
    };
    let host =
        field("host", "TDS_DATABASE_HOST").ok_or_else(|| missing("host", "TDS_DATABASE_HOST"))?;
    let port = field("port", "TDS_DATABASE_PORT").unwrap_or_else(|| "5432".into());
    if port.parse::<u16>().is_err() {
        return Err(format!("the database port {port:?} is not a port number"));
    }
    let dbname = field("dbname", "TDS_DATABASE_NAME").unwrap_or_else(|| "postgres".into());
    Ok(format!(
        "postgres://{}:{}@{host}:{port}/{}?sslmode=require",
        encode(&user),
        encode(&password),
        encode(&dbname)
    ))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The store: pool settings (`TDS_DB_*`) come from the environment whichever way the URL was found;
/// a bad value fails the start, naming the variable.
pub async fn store(secrets: &SecretsManagerStore) -> Result<Store, BootError> {
    let url = database_url(secrets).await?;
    let config = StoreConfig::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        other => std::env::var(other).ok(),
    })?;
    Ok(Store::connect_lazy(&config)?)
}

/// An AWS part a function uses besides the store, the Zoho client and the event bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The inbox queue (`TDS_INBOX_QUEUE_URL`): sync jobs and heal runs travel on it.
    Inbox,
    /// The inbox's dead-letter queue (`TDS_DLQ_URL`).
    DeadLetters,
    /// The image bucket (`TDS_IMAGE_BUCKET`, optional: images are not synced without it).
    Images,
}

/// A function's wiring: the application and the AWS pieces some handlers use directly.
pub struct Lambda {
    /// The application.
    pub app: App,
    /// The SDK configuration.
    pub config: aws_config::SdkConfig,
    /// Secrets Manager.
    pub secrets: SecretsManagerStore,
    /// The inbox queue, when asked for.
    pub inbox: Option<crate::SqsQueue>,
    /// The dead-letter queue, when asked for.
    pub dead_letters: Option<crate::SqsQueue>,
    /// Prints the application's metrics as EMF lines (call [`EmfWriter::flush`] after each
    /// invocation).
    pub emf: EmfWriter,
}

/// Every variable of `names` that is unset or blank, as one error naming them all.
pub fn require_all(names: &[&str]) -> Result<Vec<String>, BootError> {
    let values: Vec<Option<String>> = names
        .iter()
        .map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        .collect();
    let missing: Vec<&str> = names
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    match missing.as_slice() {
        [] => Ok(values.into_iter().flatten().collect()),
        [one] => Err(format!("environment variable {one} is required but not set").into()),
        many => Err(format!(
            "environment variables {} are required but not set",
            many.join(", ")
        )
        .into()),
    }
}

/// Starts a Lambda function: logging, then its configuration (read once: the required variables of
/// the store, Zoho and the bus and of each of `parts`, and [`Settings`]), then the application.
pub async fn lambda(parts: &[Part]) -> Result<Lambda, BootError> {
    init_tracing();
    let mut names = Vec::new();
    if parts.contains(&Part::Inbox) {
        names.push("TDS_INBOX_QUEUE_URL");
    }
    if parts.contains(&Part::DeadLetters) {
        names.push("TDS_DLQ_URL");
    }
    names.extend(["TDS_EVENT_BUS_NAME", "TDS_ZOHO_SECRET_ARN"]);
    let mut values = require_all(&names)?.into_iter();
    let inbox_url = parts
        .contains(&Part::Inbox)
        .then(|| values.next())
        .flatten();
    let dlq_url = parts
        .contains(&Part::DeadLetters)
        .then(|| values.next())
        .flatten();
    let (bus, zoho_secret) = (
        values.next().unwrap_or_default(),
        values.next().unwrap_or_default(),
    );
    let settings = Settings::from_env()?;
    let bucket: Option<String> = match parts.contains(&Part::Images) {
        true => optional("TDS_IMAGE_BUCKET")?,
        false => None,
    };
    let config = crate::load_config().await;
    let secrets = SecretsManagerStore::new(&config);
    let store = store(&secrets).await?;
    let emf = EmfWriter::from_env(Metrics::enabled());
    let zoho = zoho(
        &secrets,
        &zoho_secret,
        settings.data_centre,
        &store,
        emf.metrics(),
    )
    .await?;
    let events = Arc::new(crate::EventBridgeBus::new(&config, bus));
    let mut app =
        App::new(store, Arc::new(zoho), events, settings).with_metrics(emf.metrics().clone());
    let inbox = inbox_url.map(|url| crate::SqsQueue::new(&config, url));
    let dead_letters = dlq_url.map(|url| crate::SqsQueue::new(&config, url));
    if let Some(q) = &inbox {
        app = app.with_inbox(Arc::new(q.clone()));
    }
    if let Some(q) = &dead_letters {
        app = app.with_dead_letters(Arc::new(q.clone()));
    }
    if let Some(bucket) = bucket {
        app = app.with_blobs(Arc::new(crate::S3BlobStore::new(&config, bucket)));
    }
    Ok(Lambda {
        app,
        config,
        secrets,
        inbox,
        dead_letters,
        emf,
    })
}

/// The Zoho client for the organisations of the credentials secret `secret_arn`, following changes
/// to it (a new organisation, a rotated credential) without a cold start, counting in `metrics`.
pub async fn zoho(
    secrets: &SecretsManagerStore,
    secret_arn: &str,
    dc: DataCentre,
    store: &Store,
    metrics: &Metrics,
) -> Result<ZohoClient, BootError> {
    let directory = SecretDirectory::load(Arc::new(secrets.clone()), secret_arn, dc).await?;
    Ok(ZohoClient::with_directory(
        Arc::new(directory),
        store.pool().clone(),
        ClientSettings {
            metrics: metrics.clone(),
            ..ClientSettings::default()
        },
    )?)
}

/// The log filter: `RUST_LOG` when set, else the level Lambda's `LoggingConfig.ApplicationLogLevel`
/// puts in `AWS_LAMBDA_LOG_LEVEL` (the template's `LogLevel`; FATAL logs errors), else `info`.
pub fn log_filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> String {
    if let Some(filter) = rust_log.map(str::trim).filter(|f| !f.is_empty()) {
        return filter.to_string();
    }
    match lambda_level
        .map(|l| l.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some(level @ ("trace" | "debug" | "info" | "warn" | "error")) => level.to_string(),
        Some("fatal") => "error".into(),
        _ => "info".into(),
    }
}

/// JSON logs for CloudWatch at [`log_filter`]'s level (Lambda adds the timestamp), each with the
/// fields of its current span (organisation, kind, message id, run id).
pub fn init_tracing() {
    let filter = log_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .try_init();
}
