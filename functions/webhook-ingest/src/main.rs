//! webhook-ingest Lambda entry point: reads configuration once at cold start, wires the SQS queue and
//! the cached Secrets Manager store into the ingest core, then serves API Gateway events.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{service_fn, Error, Request};
use tds_aws::{bootstrap, SecretsManagerStore, SqsQueue};
use tds_core::ingest::{SecretWebhookAuth, WebhookIngest};
use tds_core::ports::CachedSecrets;

#[tokio::main]
async fn main() -> Result<(), Error> {
    bootstrap::init_tracing();
    let [queue_url, secret] =
        bootstrap::require_all(&["TDS_INBOX_QUEUE_URL", "TDS_ZOHO_SECRET_ARN"])?
            .try_into()
            .map_err(|_| "two variables expected")?;
    let config = tds_aws::load_config().await;
    let secrets = CachedSecrets::new(SecretsManagerStore::new(&config), Duration::from_secs(300));
    let auth = SecretWebhookAuth::new(Arc::new(secrets), secret);
    let ingest = Arc::new(WebhookIngest::new(
        Arc::new(SqsQueue::new(&config, queue_url)),
        Arc::new(auth),
    ));
    lambda_http::run(service_fn(move |request: Request| {
        let ingest = ingest.clone();
        async move { Ok::<_, Error>(webhook_ingest::handle(&ingest, request).await) }
    }))
    .await
}
