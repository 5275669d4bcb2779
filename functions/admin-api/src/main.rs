//! admin-api Lambda entry point: the admin router of this function's configuration (read once at
//! cold start; a missing or bad variable fails the start, naming it), served to HTTP API events.
//! Callers are those the API Gateway authorizer verified; with `TDS_ADMIN_TOKEN_SECRET_ARN` set,
//! bearer tokens from that secret are accepted too. The routes are `tds_admin`'s.

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(admin_api::from_env().await?).await
}
