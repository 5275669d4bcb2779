//! entity-processor Lambda entry point: reads configuration once at cold start (a missing variable
//! fails the start, naming it), wires PostgreSQL, the Zoho client, EventBridge, the DLQ, the inbox (for
//! sync jobs) and the image bucket into the sync core, then serves SQS batches.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use tds_aws::bootstrap::{self, optional, required};
use tds_aws::{EventBridgeBus, S3BlobStore, SecretsManagerStore, SqsQueue};
use tds_sync::{Processor, SyncSettings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tds_aws::bootstrap::init_tracing();
    let dlq_url = required("TDS_DLQ_URL")?;
    let inbox_url = required("TDS_INBOX_QUEUE_URL")?;
    let bus = required("TDS_EVENT_BUS_NAME")?;
    let zoho_secret = required("TDS_ZOHO_SECRET_ARN")?;
    let dc = bootstrap::data_centre()?;
    let image_bucket: Option<String> = optional("TDS_IMAGE_BUCKET")?;
    let mut settings = SyncSettings::default();
    if let Some(secs) = optional::<i64>("TDS_SYNC_OVERLAP_SECS")? {
        settings.overlap = chrono::Duration::seconds(secs.max(0));
    }
    if let Some(secs) = optional::<u64>("TDS_JOB_TIME_BUDGET_SECS")? {
        settings.job_time_budget = Duration::from_secs(secs);
    }
    let config = tds_aws::load_config().await;
    let secrets = SecretsManagerStore::new(&config);
    let store = bootstrap::store(&secrets).await?;
    let zoho = bootstrap::zoho(&secrets, &zoho_secret, dc, &store).await?;
    let mut processor = Processor::new(
        store,
        Arc::new(zoho),
        Arc::new(EventBridgeBus::new(&config, bus)),
        Arc::new(SqsQueue::new(&config, dlq_url)),
    )
    .with_inbox(Arc::new(SqsQueue::new(&config, inbox_url)))
    .with_settings(settings);
    if let Some(bucket) = image_bucket {
        processor = processor.with_blobs(Arc::new(S3BlobStore::new(&config, bucket)));
    }
    let processor = Arc::new(processor);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let processor = processor.clone();
        async move { Ok::<_, Error>(entity_processor::handle(&processor, event.payload).await) }
    }))
    .await
}
