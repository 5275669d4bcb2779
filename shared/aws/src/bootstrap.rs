//! Cold-start wiring shared by the Lambda functions: required variables (a missing one fails the
//! start, naming it), the database URL from `DATABASE_URL` or an RDS-style secret, the store with its
//! `TDS_DB_*` pool settings, and the Zoho client from the credentials secret.

use std::sync::Arc;

use tds_core::ports::SecretStore;
use tds_store::{Store, StoreConfig};
use tds_zoho::{ClientSettings, DataCentre, StaticCredentials, ZohoClient};

use crate::SecretsManagerStore;

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
/// (`{"host","port","username","password","dbname"}` or `{"database_url"}`).
pub async fn database_url(secrets: &SecretsManagerStore) -> Result<String, BootError> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok(url);
    }
    let arn = required("TDS_DATABASE_SECRET_ARN")?;
    let doc: serde_json::Value = serde_json::from_str(&secrets.secret(&arn).await?)
        .map_err(|_| "the database secret is not JSON")?;
    if let Some(url) = doc.get("database_url").and_then(|v| v.as_str()) {
        return Ok(url.to_string());
    }
    let field = |k: &str| -> Result<String, BootError> {
        match doc.get(k) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            _ => Err(format!("the database secret has no {k}").into()),
        }
    };
    Ok(format!(
        "postgres://{}:{}@{}:{}/{}?sslmode=require",
        field("username")?,
        field("password")?,
        field("host")?,
        field("port").unwrap_or_else(|_| "5432".into()),
        field("dbname")?
    ))
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

/// The data centre (`TDS_ZOHO_DC`, default `us`).
pub fn data_centre() -> Result<DataCentre, BootError> {
    std::env::var("TDS_ZOHO_DC")
        .unwrap_or_else(|_| "us".into())
        .parse()
        .map_err(|e: String| format!("TDS_ZOHO_DC: {e}").into())
}

/// The Zoho client for the organisations of the credentials secret `secret_arn`.
pub async fn zoho(
    secrets: &SecretsManagerStore,
    secret_arn: &str,
    dc: DataCentre,
    store: &Store,
) -> Result<ZohoClient, BootError> {
    let credentials = StaticCredentials::from_json(&secrets.secret(secret_arn).await?, dc)?;
    let orgs = credentials.organizations().to_vec();
    Ok(ZohoClient::new(
        orgs,
        Arc::new(credentials),
        store.pool().clone(),
        ClientSettings::default(),
    )?)
}

/// JSON logs for CloudWatch (level from `RUST_LOG`; Lambda adds the timestamp).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time()
        .try_init();
}
