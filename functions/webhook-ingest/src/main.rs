//! webhook-ingest Lambda entry point: reads configuration once at cold start, wires the SQS queue and
//! the cached Secrets Manager store into the ingest core, then serves API Gateway events.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{service_fn, Error, Request};
use tds_aws::{SecretsManagerStore, SqsQueue};
use tds_core::ingest::{SecretWebhookAuth, WebhookIngest};
use tds_core::ports::CachedSecrets;

fn required(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("environment variable {name} is required but not set").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tds_aws::bootstrap::init_tracing();
    let queue_url = required("TDS_INBOX_QUEUE_URL")?;
    let secret_name = required("TDS_ZOHO_SECRET_ARN")?;
    let config = tds_aws::load_config().await;
    let secrets = CachedSecrets::new(SecretsManagerStore::new(&config), Duration::from_secs(300));
    let ingest = Arc::new(WebhookIngest::new(
        Arc::new(SqsQueue::new(&config, queue_url)),
        Arc::new(SecretWebhookAuth::new(Arc::new(secrets), secret_name)),
    ));
    lambda_http::run(service_fn(move |request: Request| {
        let ingest = ingest.clone();
        async move { Ok::<_, Error>(webhook_ingest::handle(&ingest, request).await) }
    }))
    .await
}
