//! stock-poller Lambda entry point: the configuration read once at cold start (a missing or bad
//! variable fails the start, naming it), the application built by `tds_aws::bootstrap::lambda`, then
//! scheduled invocations served by the stock poller.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tds_aws::bootstrap::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let wired = lambda(&[]).await?;
    let (poller, emf) = (Arc::new(wired.app.poller()), Arc::new(wired.emf));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (poller, emf) = (poller.clone(), emf.clone());
        async move {
            let result = stock_poller::handle(&poller, event.payload).await;
            emf.flush();
            result.map_err(Error::from)
        }
    }))
    .await
}
