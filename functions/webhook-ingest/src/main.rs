//! webhook-ingest Lambda entry point: the webhook router of this function's configuration (read once
//! at cold start; a missing variable fails the start, naming it), served to API Gateway events by
//! `lambda_http`, as admin-api is.

use std::sync::Arc;

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let ingest = Arc::new(webhook_ingest::from_env().await?);
    lambda_http::run(webhook_ingest::router(ingest)).await
}
