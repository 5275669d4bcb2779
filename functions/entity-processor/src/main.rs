//! entity-processor Lambda entry point: reads configuration once at cold start (a missing variable
//! fails the start, naming it), wires PostgreSQL, the Zoho client, EventBridge and the DLQ into the
//! sync core, then serves SQS batches.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use tds_aws::{EventBridgeBus, SecretsManagerStore, SqsQueue};
use tds_core::ports::SecretStore;
use tds_store::{Store, StoreConfig};
use tds_sync::Processor;
use tds_zoho::{ClientSettings, DataCentre, StaticCredentials, ZohoClient};

fn required(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("environment variable {name} is required but not set").into())
}

/// The database URL: `DATABASE_URL`, or built from the RDS-style secret `TDS_DATABASE_SECRET_ARN`
/// (`{"host","port","username","password","dbname"}` or `{"database_url"}`).
async fn database_url(secrets: &SecretsManagerStore) -> Result<String, Error> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok(url);
    }
    let arn = required("TDS_DATABASE_SECRET_ARN")?;
    let doc: serde_json::Value = serde_json::from_str(&secrets.secret(&arn).await?)
        .map_err(|_| "the database secret is not JSON")?;
    if let Some(url) = doc.get("database_url").and_then(|v| v.as_str()) {
        return Ok(url.to_string());
    }
    let field = |k: &str| -> Result<String, Error> {
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

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let dlq_url = required("TDS_DLQ_URL")?;
    let bus = required("TDS_EVENT_BUS_NAME")?;
    let zoho_secret = required("TDS_ZOHO_SECRET_ARN")?;
    let dc: DataCentre = std::env::var("TDS_ZOHO_DC")
        .unwrap_or_else(|_| "us".into())
        .parse()
        .map_err(|e: String| format!("TDS_ZOHO_DC: {e}"))?;
    let config = tds_aws::load_config().await;
    let secrets = SecretsManagerStore::new(&config);
    // Pool settings (TDS_DB_*) come from the environment whichever way the URL was found; a bad value
    // fails the start, naming the variable.
    let url = database_url(&secrets).await?;
    let store_config = StoreConfig::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        other => std::env::var(other).ok(),
    })?;
    let store = Store::connect_lazy(&store_config)?;
    let credentials = StaticCredentials::from_json(&secrets.secret(&zoho_secret).await?, dc)?;
    let orgs = credentials.organizations().to_vec();
    let zoho = ZohoClient::new(
        orgs,
        Arc::new(credentials),
        store.pool().clone(),
        ClientSettings::default(),
    )?;
    let processor = Arc::new(Processor::new(
        store,
        Arc::new(zoho),
        Arc::new(EventBridgeBus::new(&config, bus)),
        Arc::new(SqsQueue::new(&config, dlq_url)),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let processor = processor.clone();
        async move { Ok::<_, Error>(entity_processor::handle(&processor, event.payload).await) }
    }))
    .await
}
