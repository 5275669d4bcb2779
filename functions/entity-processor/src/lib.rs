//! entity-processor: the thin edge between the SQS event source and the sync core (`tds_sync`).
//! Messages the core says to retry are reported as batch item failures (`ReportBatchItemFailures`), so
//! SQS redelivers only those; done and dead-lettered ones are deleted by SQS.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tds_sync::{Disposition, Incoming, Processor};

/// Handles one SQS batch.
pub async fn handle(processor: &Processor, event: SqsEvent) -> SqsBatchResponse {
    let batch: Vec<Incoming> = event
        .records
        .into_iter()
        .map(|r| Incoming {
            message_id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect();
    let total = batch.len();
    let results = processor.process(batch).await;
    let mut response = SqsBatchResponse::default();
    for (message_id, disposition) in results {
        if let Disposition::Retry(reason) = disposition {
            tracing::warn!(%message_id, %reason, "message will be retried");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    tracing::info!(
        total,
        retried = response.batch_item_failures.len(),
        "batch processed"
    );
    response
}
