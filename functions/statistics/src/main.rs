//! statistics Lambda entry point: reads configuration once at cold start (a missing or bad variable
//! fails the start, naming it), wires PostgreSQL, the Zoho client, EventBridge and the inbox (for heal
//! jobs) into the comparison engine, then serves scheduled invocations.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tds_aws::bootstrap::{self, required};
use tds_aws::{EventBridgeBus, SecretsManagerStore, SqsQueue};
use tds_sync::Processor;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tds_aws::bootstrap::init_tracing();
    let inbox_url = required("TDS_INBOX_QUEUE_URL")?;
    let dlq_url = required("TDS_DLQ_URL")?;
    let bus = required("TDS_EVENT_BUS_NAME")?;
    let zoho_secret = required("TDS_ZOHO_SECRET_ARN")?;
    let dc = bootstrap::data_centre()?;
    let config = tds_aws::load_config().await;
    let secrets = SecretsManagerStore::new(&config);
    let store = bootstrap::store(&secrets).await?;
    let zoho = bootstrap::zoho(&secrets, &zoho_secret, dc, &store).await?;
    let processor = Arc::new(
        Processor::new(
            store,
            Arc::new(zoho),
            Arc::new(EventBridgeBus::new(&config, bus)),
            Arc::new(SqsQueue::new(&config, dlq_url)),
        )
        .with_inbox(Arc::new(SqsQueue::new(&config, inbox_url))),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let processor = processor.clone();
        async move {
            statistics::handle(&processor, event.payload)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
