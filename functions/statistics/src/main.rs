//! statistics Lambda entry point: the configuration read once at cold start (a missing or bad variable
//! fails the start, naming it), the application built by `tds_aws::bootstrap::lambda` with the inbox
//! its heal runs go to, then scheduled invocations served by the comparator.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tds_aws::bootstrap::{lambda, Part};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let wired = lambda(&[Part::Inbox]).await?;
    let (comparator, emf) = (Arc::new(wired.app.comparator()?), Arc::new(wired.emf));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (comparator, emf) = (comparator.clone(), emf.clone());
        async move {
            let result = statistics::handle(&comparator, event.payload).await;
            emf.flush();
            result.map_err(Error::from)
        }
    }))
    .await
}
