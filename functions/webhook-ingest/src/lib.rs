//! webhook-ingest: the thin edge between API Gateway and the ingest core (`tds_core::ingest`).
//! It reads the route (`POST /webhooks/zoho/{org}` or `/webhooks/zoho/{org}/{action}`), the query,
//! headers and raw body from the HTTP API event, and turns the core's answer into a JSON response.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_http::{Body, Request, RequestExt, Response};
use tds_aws::bootstrap::{self, BootError};
use tds_aws::{SecretsManagerStore, SqsQueue};
use tds_core::ingest::{SecretWebhookAuth, WebhookIngest};
use tds_core::ports::CachedSecrets;
use tds_core::webhook::{parse_urlencoded, WebhookRequest};

/// The ingest core of this function's configuration, read once at cold start: the inbox queue
/// (`TDS_INBOX_QUEUE_URL`) and the webhook secrets of the Zoho secret (`TDS_ZOHO_SECRET_ARN`), cached
/// for five minutes.
pub async fn from_env() -> Result<WebhookIngest, BootError> {
    bootstrap::init_tracing();
    let names = ["TDS_INBOX_QUEUE_URL", "TDS_ZOHO_SECRET_ARN"];
    let [queue_url, secret]: [String; 2] = bootstrap::require_all(&names)?
        .try_into()
        .map_err(|_| "two variables expected")?;
    let config = tds_aws::load_config().await;
    let secrets = CachedSecrets::new(SecretsManagerStore::new(&config), Duration::from_secs(300));
    let auth = SecretWebhookAuth::new(Arc::new(secrets), secret);
    let queue = SqsQueue::new(&config, queue_url);
    Ok(WebhookIngest::new(Arc::new(queue), Arc::new(auth)))
}

/// Handles one API Gateway request.
pub async fn handle(ingest: &WebhookIngest, request: Request) -> Response<Body> {
    if request.method() != lambda_http::http::Method::POST {
        return json(
            405,
            serde_json::json!({"error": format!("method {} is not allowed; Zoho webhooks POST", request.method())}),
        );
    }
    let path_params = request.path_parameters();
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Route parameters when API Gateway provides them, else the raw path (local runs, tests).
    let org = path_params
        .first("org")
        .map(str::to_string)
        .or_else(|| match segments.as_slice() {
            ["webhooks", "zoho", org, ..] => Some((*org).to_string()),
            _ => None,
        });
    let action =
        path_params
            .first("action")
            .map(str::to_string)
            .or_else(|| match segments.as_slice() {
                ["webhooks", "zoho", _, action] => Some((*action).to_string()),
                _ => None,
            });
    let Some(org) = org else {
        return json(
            404,
            serde_json::json!({"error": "unknown route; POST /webhooks/zoho/{organization_id}[/{action}]"}),
        );
    };
    let query = parse_urlencoded(request.uri().query().unwrap_or(""));
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone());
    let body: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let req = WebhookRequest {
        org_id: &org,
        route_action: action.as_deref(),
        content_type: content_type.as_deref(),
        query: &query,
        headers: &headers,
        body,
    };
    let answer = ingest.handle(&req, Utc::now()).await;
    json(answer.status, answer.body)
}

fn json(status: u16, body: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = lambda_http::http::StatusCode::from_u16(status)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    resp
}
