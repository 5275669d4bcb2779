//! webhook-ingest Lambda entry point: the ingest core of this function's configuration (read once at
//! cold start; a missing variable fails the start, naming it), serving API Gateway events.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let ingest = Arc::new(webhook_ingest::from_env().await?);
    lambda_http::run(service_fn(move |request: Request| {
        let ingest = ingest.clone();
        async move { Ok::<_, Error>(webhook_ingest::handle(&ingest, request).await) }
    }))
    .await
}
