//! webhook-ingest: the thin edge between HTTP and the ingest core (`tds_core::ingest`).
//!
//! [`router`] is an axum Router (`POST /webhooks/zoho/{org}` or `/webhooks/zoho/{org}/{action}`),
//! served to API Gateway events by `lambda_http` in the Lambda (as admin-api is) and mounted as it is
//! by `tds up`. It reads the route, the query, headers and raw body (at most [`READ_LIMIT`] bytes are
//! read; the core refuses anything over `MAX_BODY_BYTES` with 413 and the reason) and turns the
//! core's answer into a JSON response. [`handle`] answers a `lambda_http` request the same way, for
//! tests and benchmarks that build API Gateway requests.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use chrono::Utc;
use lambda_http::{Body, Request, RequestExt, Response};
use tds_aws::bootstrap::{self, BootError};
use tds_aws::{SecretsManagerStore, SqsQueue};
use tds_core::ingest::{SecretWebhookAuth, WebhookIngest};
use tds_core::metrics::Metrics;
use tds_core::ports::CachedSecrets;
use tds_core::webhook::{parse_urlencoded, WebhookRequest};

/// The ingest core of this function's configuration, read once at cold start: the inbox queue
/// (`TDS_INBOX_QUEUE_URL`) and the webhook secrets (`TDS_WEBHOOK_SECRET_ARN`: a secret of their own,
/// the credentials document's shape, so this function never holds the Zoho OAuth secrets), cached
/// for five minutes.
pub async fn from_env() -> Result<WebhookIngest, BootError> {
    bootstrap::init_tracing();
    let names = ["TDS_INBOX_QUEUE_URL", "TDS_WEBHOOK_SECRET_ARN"];
    let [queue_url, secret]: [String; 2] = bootstrap::require_all(&names)?
        .try_into()
        .map_err(|_| "two variables expected")?;
    let config = tds_aws::load_config().await;
    let secrets = CachedSecrets::new(SecretsManagerStore::new(&config), Duration::from_secs(300));
    let auth = SecretWebhookAuth::new(Arc::new(secrets), secret);
    let queue = SqsQueue::new(&config, queue_url);
    Ok(WebhookIngest::new(Arc::new(queue), Arc::new(auth)).with_metrics(Metrics::enabled()))
}

/// Bytes of a body read at most: exactly what the core accepts, so a larger body is refused (413)
/// before more of it is held in memory.
pub const READ_LIMIT: usize = tds_core::webhook::MAX_BODY_BYTES;

/// The webhook routes (any method but POST is a JSON 405) with a JSON 404 for any other path: what
/// the Lambda serves.
pub fn router(ingest: Arc<WebhookIngest>) -> axum::Router {
    let emf = tds_aws::emf::EmfWriter::from_env(ingest.metrics().clone());
    let router = routes(ingest).fallback(|| async { unknown_route().into_axum() });
    tds_aws::emf::flush_after_each_response(router, emf)
}

/// The webhook routes alone, to merge into a router that has its own fallback (`tds up`).
pub fn routes(ingest: Arc<WebhookIngest>) -> axum::Router {
    axum::Router::new()
        .route("/webhooks/zoho/{org}", axum::routing::any(route))
        .route("/webhooks/zoho/{org}/{action}", axum::routing::any(route))
        .with_state(ingest)
}

async fn route(
    State(ingest): State<Arc<WebhookIngest>>,
    Path(params): Path<Vec<(String, String)>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> axum::response::Response {
    let org = params.first().map(|(_, v)| v.clone()).unwrap_or_default();
    let action = params.get(1).map(|(_, v)| v.clone());
    let Ok(body) = axum::body::to_bytes(body, READ_LIMIT).await else {
        // Said as the core says it when the size is declared (the rest of the body is not read).
        let declared = headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        let error = match declared {
            Some(size) => tds_core::webhook::WebhookError::TooLarge {
                size,
                limit: tds_core::webhook::MAX_BODY_BYTES,
            }
            .to_string(),
            None => format!(
                "webhook body exceeds the limit of {} bytes",
                tds_core::webhook::MAX_BODY_BYTES
            ),
        };
        return Answer(413, serde_json::json!({ "error": error })).into_axum();
    };
    let delivery = Delivery {
        method: method.as_str(),
        org: Some(org),
        action,
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    deliver(&ingest, delivery).await.into_axum()
}

/// Handles one API Gateway request (the route from API Gateway's parameters, else the raw path).
pub async fn handle(ingest: &WebhookIngest, request: Request) -> Response<Body> {
    let path_params = request.path_parameters();
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
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
    let body: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let delivery = Delivery {
        method: request.method().as_str(),
        org,
        action,
        query: request.uri().query().unwrap_or(""),
        headers: request.headers(),
        body,
    };
    deliver(ingest, delivery).await.into_lambda()
}

/// A request as both adapters read it.
struct Delivery<'a> {
    method: &'a str,
    org: Option<String>,
    action: Option<String>,
    query: &'a str,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

/// A status and a JSON body.
struct Answer(u16, serde_json::Value);

impl Answer {
    fn into_axum(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.0)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.1)).into_response()
    }

    fn into_lambda(self) -> Response<Body> {
        let mut resp = Response::new(Body::Text(self.1.to_string()));
        *resp.status_mut() = lambda_http::http::StatusCode::from_u16(self.0)
            .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut().insert(
            lambda_http::http::header::CONTENT_TYPE,
            lambda_http::http::HeaderValue::from_static("application/json"),
        );
        resp
    }
}

fn unknown_route() -> Answer {
    Answer(
        404,
        serde_json::json!({"error": "unknown route; POST /webhooks/zoho/{organization_id}[/{action}]"}),
    )
}

/// The core's answer to one delivery.
async fn deliver(ingest: &WebhookIngest, d: Delivery<'_>) -> Answer {
    if d.method != "POST" {
        return Answer(
            405,
            serde_json::json!({"error": format!("method {} is not allowed; Zoho webhooks POST", d.method)}),
        );
    }
    let Some(org) = d.org else {
        return unknown_route();
    };
    let query = parse_urlencoded(d.query);
    let headers: Vec<(String, String)> = d
        .headers
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
    let req = WebhookRequest {
        org_id: &org,
        route_action: d.action.as_deref(),
        content_type: content_type.as_deref(),
        query: &query,
        headers: &headers,
        body: d.body,
    };
    let answer = ingest.handle(&req, Utc::now()).await;
    Answer(answer.status, answer.body)
}
