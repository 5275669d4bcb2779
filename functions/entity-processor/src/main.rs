//! entity-processor Lambda entry point: the configuration read once at cold start (a missing or bad
//! variable fails the start, naming it), the application built by `tds_aws::bootstrap::lambda`, then
//! SQS batches served by the inbox applier; its metrics printed as EMF lines after each batch.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use tds_aws::bootstrap::{lambda, Part};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let wired = lambda(&[Part::Inbox, Part::DeadLetters, Part::Images]).await?;
    let (processor, emf) = (Arc::new(wired.app.processor()?), Arc::new(wired.emf));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (processor, emf) = (processor.clone(), emf.clone());
        async move {
            let response = entity_processor::handle(&processor, event.payload).await;
            emf.flush();
            Ok::<_, Error>(response)
        }
    }))
    .await
}
