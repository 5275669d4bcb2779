//! The admin API: one axum router for the admin-api Lambda and the local stack alike.
//!
//! Every route needs a caller: one that a layer in front of the router already authenticated (on AWS,
//! the API Gateway IAM or JWT authorizer, which admin-api turns into a [`VerifiedCaller`]), or
//! `Authorization: Bearer <token>` matching one of the configured tokens (compared in constant time;
//! what the local stack uses); anything else is a 401 with a JSON message. Errors are JSON `{"error": "..."}` with a
//! status that says whose fault it was. The routes only translate HTTP to the sync core, the store and
//! the ports: no logic of their own. The routes and their shapes are documented in `openapi.json`
//! beside this crate, which a test checks against [`ROUTES`].

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use tds_core::ports::{Queue, Redrive};
use tds_core::webhook::secrets_match;
use tds_core::EntityKind;
use tds_store::Store;
use tds_sync::compare::CompareRequest;
use tds_sync::stock::{StockPoller, StockRequest};
use tds_sync::{Comparator, Failure, StartSync, SyncMode, SyncRunner};

/// Every route: (method, path as in `openapi.json`).
pub const ROUTES: [(&str, &str); 26] = [
    ("get", "/api/tds/health"),
    ("get", "/api/tds/status"),
    ("post", "/api/tds/sync"),
    ("get", "/api/tds/sync-runs"),
    ("get", "/api/tds/sync-runs/{id}"),
    ("get", "/api/tds/queue"),
    ("get", "/api/tds/metrics"),
    ("get", "/api/tds/deadletter"),
    ("post", "/api/tds/deadletter/retry"),
    ("post", "/api/tds/stock/sync"),
    ("get", "/api/tds/statistics/overview"),
    ("get", "/api/tds/statistics/compare"),
    ("get", "/api/tds/statistics/items"),
    ("get", "/api/tds/statistics/customers"),
    ("get", "/api/tds/statistics/vendors"),
    ("get", "/api/tds/statistics/pricelists"),
    ("get", "/api/tds/statistics/stock"),
    ("get", "/api/tds/statistics/images"),
    ("get", "/api/tds/statistics/history"),
    ("post", "/api/tds/statistics/sync-differences"),
    ("get", "/api/bff/tds/status"),
    ("get", "/api/bff/tds/recent"),
    ("get", "/api/tds/alerts"),
    ("get", "/api/tds/cursors"),
    ("get", "/api/tds/organizations"),
    ("get", "/api/tds/entities/{kind}/{id}"),
];

/// How healthy TDS is, worst last (a health check keeps the worst it finds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthLevel {
    /// Everything answers and nothing needs attention.
    Healthy,
    /// Working, with something to look at (dead letters, a failed last run).
    Degraded,
    /// A part TDS needs does not answer (database, queues).
    Unhealthy,
}

impl HealthLevel {
    /// `healthy`, `degraded` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthLevel::Healthy => "healthy",
            HealthLevel::Degraded => "degraded",
            HealthLevel::Unhealthy => "unhealthy",
        }
    }
}

/// What the routes work with.
pub struct Admin {
    /// The database.
    pub store: Store,
    /// Starts syncs.
    pub runner: SyncRunner,
    /// Compares and heals.
    pub comparator: Comparator,
    /// The stock poller.
    pub poller: StockPoller,
    /// The inbox queue.
    pub inbox: Arc<dyn Queue>,
    /// Its dead-letter queue.
    pub dead_letters: Arc<dyn Queue>,
    /// Moves dead letters back to the inbox.
    pub redrive: Arc<dyn Redrive>,
    /// Accepted bearer tokens.
    pub tokens: Vec<String>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .finish_non_exhaustive()
    }
}

/// A caller authenticated before the request reached the router (the API Gateway authorizer's
/// principal, e.g. an IAM user or role ARN, or a JWT subject). Only in-process code can attach it, as
/// a request extension; the bearer check lets such a request through and logs who it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCaller(pub String);

/// An error answer: status and message.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<tds_store::StoreError> for ApiError {
    /// The database's own text stays in the logs: callers learn that it failed, not how.
    fn from(e: tds_store::StoreError) -> Self {
        tracing::error!(error = %e, "admin request failed in the database");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable or refused the request; details are in the logs".into(),
        )
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Retry(r) => ApiError(StatusCode::SERVICE_UNAVAILABLE, r),
            Failure::Permanent(r) => ApiError(StatusCode::BAD_REQUEST, r),
        }
    }
}

impl From<tds_core::ports::PortError> for ApiError {
    /// Resource names and SDK error chains stay in the logs.
    fn from(e: tds_core::ports::PortError) -> Self {
        tracing::error!(error = %e, "admin request failed in a backing service");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "a backing service (queue, secrets, events) is unavailable; details are in the logs"
                .into(),
        )
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

type Answer = Result<Json<Value>, ApiError>;
type Shared = State<Arc<Admin>>;

/// The router with every route behind the bearer-token check.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/api/tds/health", get(health))
        .route("/api/tds/status", get(status))
        .route("/api/tds/sync", post(start_sync))
        .route("/api/tds/sync-runs", get(sync_runs))
        .route("/api/tds/sync-runs/{id}", get(sync_run))
        .route("/api/tds/queue", get(queue))
        .route("/api/tds/metrics", get(metrics))
        .route("/api/tds/deadletter", get(deadletter))
        .route("/api/tds/deadletter/retry", post(deadletter_retry))
        .route("/api/tds/stock/sync", post(stock_sync))
        .route("/api/tds/statistics/overview", get(statistics_overview))
        .route("/api/tds/statistics/compare", get(statistics_compare))
        .route("/api/tds/statistics/history", get(statistics_history))
        .route(
            "/api/tds/statistics/sync-differences",
            post(sync_differences),
        )
        .route("/api/tds/statistics/{group}", get(statistics_group))
        .route("/api/bff/tds/status", get(bff_status))
        .route("/api/bff/tds/recent", get(bff_recent))
        .route("/api/tds/alerts", get(alerts))
        .route("/api/tds/cursors", get(cursors))
        .route("/api/tds/organizations", get(organizations))
        .route("/api/tds/entities/{kind}/{id}", get(entity))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            authenticate,
        ))
        .with_state(admin)
}

/// Input no handler should see and answers no caller should get: a NUL byte anywhere in the path or
/// query is refused (400: PostgreSQL text cannot hold one), and an extractor's plain-text rejection
/// (a malformed number, a missing field) becomes the documented `{"error": "..."}` JSON.
async fn json_errors(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let raw = format!("{}?{}", uri.path(), uri.query().unwrap_or(""));
    if raw.to_ascii_lowercase().contains("%00") || raw.contains('\0') {
        return bad_request("the request contains a NUL byte").into_response();
    }
    let response = next.run(request).await;
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    if !(response.status().is_client_error() && plain) {
        return response;
    }
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 16 * 1024)
        .await
        .unwrap_or_default();
    ApiError(status, String::from_utf8_lossy(&body).into_owned()).into_response()
}

async fn authenticate(
    State(admin): Shared,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(caller) = request.extensions().get::<VerifiedCaller>() {
        tracing::info!(caller = %caller.0, method = %request.method(), path = %request.uri().path(), "admin call");
        return next.run(request).await;
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        None => ApiError(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer <token>)".into(),
        )
        .into_response(),
        Some(t) if !t.is_empty() && admin.tokens.iter().any(|k| secrets_match(t, k)) => {
            next.run(request).await
        }
        Some(_) => {
            ApiError(StatusCode::UNAUTHORIZED, "invalid bearer token".into()).into_response()
        }
    }
}

/// `?org_id=` (defaults to the only configured organisation).
#[derive(Debug, Deserialize)]
struct OrgQuery {
    org_id: Option<String>,
}

fn org_of(admin: &Admin, org: Option<String>) -> Result<String, ApiError> {
    // The organisations the Zoho client knows now (it reads the credentials again on changes).
    let orgs = admin.runner.zoho().org_ids();
    match org {
        Some(o) if orgs.contains(&o) => Ok(o),
        Some(o) => Err(bad_request(format!(
            "unknown organisation {}; configured: {}",
            tds_core::fields::truncate(&o, 40),
            orgs.join(", ")
        ))),
        None if orgs.len() == 1 => Ok(orgs[0].clone()),
        None => Err(bad_request(format!(
            "several organisations are configured: pass org_id ({})",
            orgs.join(", ")
        ))),
    }
}

fn run_json(r: &tds_store::SyncRun) -> Value {
    json!({"id": r.id, "org_id": r.org_id, "entity": r.entity, "mode": r.mode, "trigger": r.trigger,
           "status": r.status.as_str(), "pages": r.counts.pages, "fetched": r.counts.fetched,
           "changed": r.counts.changed, "unchanged": r.counts.unchanged, "failed": r.counts.failed,
           "api_calls": r.counts.api_calls, "started_at": r.started_at, "finished_at": r.finished_at,
           "duration_ms": r.duration_ms, "error": r.error})
}

async fn health(State(admin): Shared) -> Response {
    let mut reasons = Vec::new();
    let mut level = HealthLevel::Healthy;
    let database = match admin.store.ping().await {
        Ok(_) => json!({"ok": true}),
        Err(e) => {
            level = HealthLevel::Unhealthy;
            reasons.push(format!("database unreachable: {e}"));
            json!({"ok": false})
        }
    };
    let queue = match (admin.inbox.stats().await, admin.dead_letters.stats().await) {
        (Ok(i), Ok(d)) => {
            if d.visible > 0 {
                level = level.max(HealthLevel::Degraded);
                reasons.push(format!("{} message(s) in the dead-letter queue", d.visible));
            }
            json!({"ok": true, "inbox": i, "deadletter": d})
        }
        (i, d) => {
            level = HealthLevel::Unhealthy;
            let e = i
                .err()
                .or(d.err())
                .map(|e| e.to_string())
                .unwrap_or_default();
            reasons.push(format!("queue unreachable: {e}"));
            json!({"ok": false})
        }
    };
    let tokens = admin.store.token_expiries().await.unwrap_or_default();
    let zoho = json!({"organizations": admin.runner.zoho().org_ids(), "tokens": tokens.iter().map(|t| json!({
        "credential": t.credential_id, "expires_at": t.expires_at,
        "valid": t.expires_at.is_some_and(|e| e > Utc::now())})).collect::<Vec<_>>()});
    let last = admin
        .store
        .recent_runs(None, 1)
        .await
        .ok()
        .and_then(|r| r.into_iter().next());
    if let Some(run) = &last {
        if run.status == tds_store::RunStatus::Failed {
            level = level.max(HealthLevel::Degraded);
            reasons.push(format!(
                "the last sync run ({} {}) failed: {}",
                run.entity,
                run.mode,
                run.error.clone().unwrap_or_default()
            ));
        }
    }
    // Open alerts are TDS's own verdict about the data (drift found by the comparison): a critical
    // one makes TDS unhealthy, a warning degraded, whatever the parts above say.
    let alerts = match admin.store.open_alerts().await {
        Ok(alerts) => alerts,
        Err(e) => {
            level = level.max(HealthLevel::Degraded);
            reasons.push(format!("open alerts could not be read: {e}"));
            Vec::new()
        }
    };
    for (org, alert) in &alerts {
        let fold = match alert.severity.as_str() {
            "critical" => HealthLevel::Unhealthy,
            "warning" => HealthLevel::Degraded,
            _ => HealthLevel::Healthy,
        };
        if fold > HealthLevel::Healthy {
            level = level.max(fold);
            reasons.push(format!(
                "open {} {} alert for organisation {org}: {}",
                alert.severity, alert.kind, alert.message
            ));
        }
    }
    let status = level.as_str();
    let code = if level == HealthLevel::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(
            json!({"status": status, "reasons": reasons, "database": database, "queue": queue,
                   "open_alerts": alerts.len(),
                       "zoho": zoho, "last_sync": last.as_ref().map(run_json)}),
        ),
    )
        .into_response()
}

async fn status(State(admin): Shared, Query(q): Query<OrgQuery>) -> Answer {
    let org = org_of(&admin, q.org_id)?;
    let mut entities = serde_json::Map::new();
    for kind in EntityKind::ALL {
        let c = admin.store.counts(kind, &org).await?;
        let cursor = admin.store.cursor(&org, kind).await?;
        entities.insert(
            kind.as_str().into(),
            json!({"rows": c.active, "tombstoned": c.deleted,
            "cursor": cursor.map(|c| json!({"time": c.time, "id": c.id}))}),
        );
    }
    let runs: Vec<Value> = admin
        .store
        .recent_runs(Some(&org), 10)
        .await?
        .iter()
        .map(run_json)
        .collect();
    Ok(Json(
        json!({"org_id": org, "entities": entities, "recent_runs": runs,
                   "queue": {"inbox": admin.inbox.stats().await?, "deadletter": admin.dead_letters.stats().await?}}),
    ))
}

/// Body of `POST /api/tds/sync`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    #[serde(default)]
    org_id: Option<String>,
    #[serde(default)]
    entity: Option<String>,
    #[serde(default)]
    entities: Option<Vec<String>>,
    #[serde(default = "incremental")]
    mode: SyncMode,
}

fn incremental() -> SyncMode {
    SyncMode::Incremental
}

fn json_body<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    let body = if body.trim().is_empty() { "{}" } else { body };
    serde_json::from_str(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

async fn start_sync(
    State(admin): Shared,
    body: String,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: SyncBody = json_body(&body)?;
    let entities = match (b.entities, b.entity) {
        (Some(e), _) => e,
        (None, Some(e)) => vec![e],
        (None, None) => vec!["all".into()],
    };
    let zoho = admin.runner.zoho();
    // An organisation added to the credentials since start-up is found by reading them again.
    known_org(&admin, b.org_id.as_deref()).await?;
    let runs = admin
        .runner
        .start_sync(&StartSync {
            org_id: b.org_id,
            entities,
            mode: b.mode,
            trigger: tds_core::Trigger::AdminApi,
        })
        .await?;
    let mut answer = json!({"run_ids": runs, "mode": b.mode});
    if runs.is_empty() {
        // Say why nothing started.
        answer["reason"] = json!(if zoho.org_ids().is_empty() {
            "no organisation is configured in the Zoho credentials".to_string()
        } else {
            "a run of every requested kind is already in progress: see /api/tds/sync-runs?status=running"
                .to_string()
        });
    }
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// Pagination and filters of run lists.
#[derive(Debug, Deserialize)]
struct RunsQuery {
    org_id: Option<String>,
    entity: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn sync_runs(State(admin): Shared, Query(q): Query<RunsQuery>) -> Answer {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(bad_request("limit must be between 1 and 500"));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(bad_request("offset must be 0 or more"));
    }
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(tds_store::RunStatus::from_name(s).ok_or_else(|| {
            bad_request(format!(
                "status must be running, completed or failed, not {}",
                tds_core::fields::truncate(s, 40)
            ))
        })?),
    };
    let filter = tds_store::RunFilter {
        org_id: q.org_id,
        entity: q.entity,
        status,
    };
    let runs: Vec<Value> = admin
        .store
        .runs_page(&filter, limit, offset)
        .await?
        .iter()
        .map(run_json)
        .collect();
    Ok(Json(
        json!({"runs": runs, "limit": limit, "offset": offset}),
    ))
}

async fn sync_run(State(admin): Shared, Path(id): Path<String>) -> Answer {
    let id: i64 = id
        .parse()
        .map_err(|_| bad_request(format!("run id must be a number, not {id}")))?;
    match admin.store.run(id).await? {
        Some(r) => Ok(Json(run_json(&r))),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no sync run {id}"))),
    }
}

async fn queue(State(admin): Shared) -> Answer {
    Ok(Json(
        json!({"inbox": admin.inbox.stats().await?, "deadletter": admin.dead_letters.stats().await?}),
    ))
}

/// `?hours=`.
#[derive(Debug, Deserialize)]
struct MetricsQuery {
    hours: Option<i64>,
}

/// The seeds' monitoring figures over the last `hours` (1 to 720, default 24), from PostgreSQL:
/// throughput per minute (webhooks applied and records synced), average sync time, error rate (failed
/// runs of those finished) and Zoho API calls per hour (by sync runs), with the hourly series behind
/// them for charts.
async fn metrics(State(admin): Shared, Query(q): Query<MetricsQuery>) -> Answer {
    let hours = q.hours.unwrap_or(24);
    if !(1..=720).contains(&hours) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("hours must be from 1 to 720, not {hours}"),
        ));
    }
    let to = chrono::Utc::now();
    let from = to - chrono::Duration::hours(hours);
    let series = admin.store.activity(from).await?;
    let total = |f: fn(&tds_store::ActivityHour) -> i64| series.iter().map(f).sum::<i64>();
    let (webhooks, records) = (total(|h| h.webhooks_applied), total(|h| h.records_synced));
    let (runs, failed) = (total(|h| h.runs_finished), total(|h| h.runs_failed));
    let (calls, ms) = (total(|h| h.api_calls), total(|h| h.duration_ms_sum));
    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
    let minutes = (hours * 60) as f64;
    Ok(Json(json!({
        "from": from, "to": to, "hours": hours,
        "throughput_per_minute": (webhooks + records) as f64 / minutes,
        "webhooks_applied": webhooks, "records_synced": records,
        "average_sync_ms": ratio(ms, runs),
        "runs_finished": runs, "runs_failed": failed, "error_rate": ratio(failed, runs),
        "api_calls": calls, "api_calls_per_hour": calls as f64 / hours as f64,
        "series": series,
    })))
}

/// `?limit=`.
#[derive(Debug, Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn deadletter(State(admin): Shared, Query(q): Query<LimitQuery>) -> Answer {
    let limit = q.limit.unwrap_or(10).clamp(1, 10);
    let messages: Vec<Value> = admin
        .dead_letters
        .peek(limit)
        .await?
        .into_iter()
        .map(|m| {
            let body: Value = serde_json::from_str(&m.body).unwrap_or(Value::Null);
            json!({"message_id": m.message_id, "receive_count": m.receive_count, "sent_at": m.sent_at,
                   "reason": body.get("reason"), "failed_at": body.get("failed_at"),
                   "original": body.get("original").cloned().unwrap_or(Value::String(m.body.clone()))})
        })
        .collect();
    Ok(Json(
        json!({"messages": messages, "depth": admin.dead_letters.stats().await?.visible}),
    ))
}

/// Body of `POST /api/tds/deadletter/retry`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    #[serde(default)]
    max: Option<usize>,
}

async fn deadletter_retry(State(admin): Shared, body: String) -> Answer {
    let b: RetryBody = json_body(&body)?;
    let moved = admin
        .redrive
        .redrive(b.max.unwrap_or(100).clamp(1, 10_000))
        .await?;
    Ok(Json(json!({"moved": moved})))
}

/// A failure of an operation whose input was valid: Zoho (or the database) refused it for good
/// (502: not the caller's fault, so `tds` does not call it bad usage) or for now (503).
fn upstream(f: Failure) -> ApiError {
    match f {
        Failure::Retry(r) => ApiError(StatusCode::SERVICE_UNAVAILABLE, r),
        Failure::Permanent(r) => ApiError(StatusCode::BAD_GATEWAY, r),
    }
}

/// Refuses (400) an organisation id that is not configured, after reading the credentials again.
async fn known_org(admin: &Admin, org: Option<&str>) -> Result<(), ApiError> {
    let Some(org) = org else { return Ok(()) };
    let zoho = admin.runner.zoho();
    if zoho.ensure_org(org).await.is_err() {
        return Err(bad_request(format!(
            "unknown organisation {}; configured: {}",
            tds_core::fields::truncate(org, 40),
            zoho.org_ids().join(", ")
        )));
    }
    Ok(())
}

async fn stock_sync(State(admin): Shared, body: String) -> Answer {
    let input: Value = json_body(&body)?;
    let request = StockRequest::parse(&input).map_err(bad_request)?;
    known_org(&admin, request.org_id.as_deref()).await?;
    let reports = admin.poller.poll(&request).await.map_err(upstream)?;
    Ok(Json(json!({"mode": request.mode, "reports": reports})))
}

async fn latest_report(admin: &Admin, org: &str) -> Result<Option<Value>, ApiError> {
    Ok(admin.store.latest_comparison(org).await?)
}

async fn statistics_overview(State(admin): Shared, Query(q): Query<OrgQuery>) -> Answer {
    let org = org_of(&admin, q.org_id)?;
    let Some(r) = latest_report(&admin, &org).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "no comparison yet: POST /api/tds/statistics/sync-differences".into(),
        ));
    };
    let kinds: Vec<Value> = r["kinds"].as_array().cloned().unwrap_or_default().iter().map(|k| {
        let diff = ["missing_locally", "deleted_in_zoho", "stale", "mismatched"]
            .iter().map(|f| k[*f].as_array().map_or(0, Vec::len)).sum::<usize>();
        json!({"kind": k["kind"], "zoho_total": k["zoho_total"], "local_total": k["local_total"], "differences": diff})
    }).collect();
    Ok(Json(
        json!({"org_id": org, "report_id": r["report_id"], "match_pct": r["match_pct"],
                   "health_score": r["health_score"], "severity": r["severity"], "kinds": kinds,
                   "recommendations": r["recommendations"]}),
    ))
}

async fn statistics_compare(State(admin): Shared, Query(q): Query<OrgQuery>) -> Answer {
    let org = org_of(&admin, q.org_id)?;
    latest_report(&admin, &org).await?.map(Json).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "no comparison yet: POST /api/tds/statistics/sync-differences".into(),
        )
    })
}

async fn statistics_group(
    State(admin): Shared,
    Path(group): Path<String>,
    Query(q): Query<OrgQuery>,
) -> Answer {
    let key = match group.as_str() {
        "items" | "customers" | "vendors" | "stock" | "images" => group.clone(),
        "pricelists" => "price_lists".into(),
        other => return Err(ApiError(StatusCode::NOT_FOUND, format!(
            "no statistics group {other}: items, customers, vendors, pricelists, stock, images, overview, compare, history"))),
    };
    let org = org_of(&admin, q.org_id)?;
    let report = latest_report(&admin, &org).await?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "no statistics yet: POST /api/tds/statistics/sync-differences".into(),
        )
    })?;
    Ok(Json(
        json!({"org_id": org, "group": group, "statistics": report["statistics"][key.as_str()]}),
    ))
}

/// `?entity=&limit=&org_id=`.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    org_id: Option<String>,
    entity: Option<String>,
    limit: Option<i64>,
}

async fn statistics_history(State(admin): Shared, Query(q): Query<HistoryQuery>) -> Answer {
    let org = org_of(&admin, q.org_id)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let history = admin
        .store
        .statistics_history(&org, q.entity.as_deref(), limit)
        .await?;
    Ok(Json(json!({"org_id": org, "history": history})))
}

async fn sync_differences(State(admin): Shared, body: String) -> Answer {
    let input: Value = json_body(&body)?;
    let request = CompareRequest::parse(&input).map_err(bad_request)?;
    known_org(&admin, request.org_id.as_deref()).await?;
    let reports = admin.comparator.compare(&request).await.map_err(upstream)?;
    Ok(Json(json!({"reports": reports})))
}

async fn bff_status(State(admin): Shared) -> Answer {
    let last = admin.store.recent_runs(None, 1).await?.into_iter().next();
    let dlq = admin.dead_letters.stats().await?.visible;
    let inbox = admin.inbox.stats().await?;
    Ok(Json(
        json!({"ok": dlq == 0 && last.as_ref().is_none_or(|r| r.status != tds_store::RunStatus::Failed),
                   "inbox": inbox.visible + inbox.in_flight, "deadletter": dlq,
                   "last_sync": last.map(|r| json!({"entity": r.entity, "status": r.status.as_str(), "at": r.started_at}))}),
    ))
}

async fn bff_recent(State(admin): Shared) -> Answer {
    let runs: Vec<Value> = admin.store.recent_runs(None, 5).await?.iter().map(|r| {
        json!({"id": r.id, "entity": r.entity, "mode": r.mode, "status": r.status.as_str(), "changed": r.counts.changed})
    }).collect();
    Ok(Json(json!({"runs": runs})))
}

async fn alerts(State(admin): Shared, Query(q): Query<OrgQuery>) -> Answer {
    let org = org_of(&admin, q.org_id)?;
    let alerts = admin.store.alerts(&org, 100).await?;
    Ok(Json(json!({"org_id": org, "alerts": alerts})))
}

async fn cursors(State(admin): Shared, Query(q): Query<OrgQuery>) -> Answer {
    let org = org_of(&admin, q.org_id)?;
    let mut out = serde_json::Map::new();
    for kind in EntityKind::ALL {
        if let Some(c) = admin.store.cursor(&org, kind).await? {
            out.insert(kind.as_str().into(), json!({"time": c.time, "id": c.id}));
        }
    }
    Ok(Json(json!({"org_id": org, "cursors": out})))
}

async fn organizations(State(admin): Shared) -> Answer {
    Ok(Json(
        json!({"organizations": admin.runner.zoho().org_ids()}),
    ))
}

async fn entity(
    State(admin): Shared,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<OrgQuery>,
) -> Answer {
    let kind: EntityKind = kind.parse().map_err(|e| bad_request(format!("{e}")))?;
    let org = org_of(&admin, q.org_id)?;
    match admin.store.get(kind, &org, &id).await? {
        Some(row) => Ok(Json(
            json!({"org_id": org, "kind": kind, "zoho_id": row.zoho_id,
            "last_modified_time": row.last_modified_time, "deleted_at": row.deleted_at,
            "synced_at": row.synced_at, "record": row.record}),
        )),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no {kind} {id} in organisation {org}"),
        )),
    }
}
