//! entity-processor Lambda entry point: the configuration read once at cold start (a missing or bad
//! variable fails the start, naming it), the application built by `tds_aws::bootstrap::lambda`, then
//! SQS batches served by the inbox applier.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use tds_aws::bootstrap::{lambda, Part};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let wired = lambda(&[Part::Inbox, Part::DeadLetters, Part::Images]).await?;
    let processor = Arc::new(wired.app.processor()?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let processor = processor.clone();
        async move { Ok::<_, Error>(entity_processor::handle(&processor, event.payload).await) }
    }))
    .await
}
