//! The admin API: one axum router for the admin-api Lambda and the local stack alike, and the
//! dashboard it serves.
//!
//! Every `/api` route needs a caller: one that a layer in front of the router already authenticated
//! (on AWS, the API Gateway IAM or JWT authorizer, which admin-api turns into a [`VerifiedCaller`]),
//! or `Authorization: Bearer <token>` matching one of the configured tokens (compared in constant
//! time; what the local stack and the dashboard's token sign-in use); anything else is a 401 with a
//! JSON message. Errors are JSON `{"error": "..."}` with a status that says whose fault it was. The
//! routes only translate HTTP to the sync core, the store and the ports: no logic of their own. Their
//! request and response types are [`api`]'s; the OpenAPI document ([`openapi`], committed as
//! `openapi.json` beside this crate) is generated from the same declarations that build the router.
//! The dashboard's files (`/dashboard/`, [`dashboard`]) need no caller: they hold no data.

pub mod api;
pub mod dashboard;

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use tds_core::ports::{Queue, Redrive};
use tds_core::webhook::secrets_match;
use tds_core::{EntityKind, RunMode};
use tds_store::Store;
use tds_sync::compare::{CompareRequest, ComparisonReport};
use tds_sync::stock::{StockPoller, StockRequest};
use tds_sync::{Comparator, Failure, StartSync, SyncRunner};
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::*;

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
    /// How the dashboard signs in.
    pub dashboard: DashboardConfig,
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
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
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

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, message.into())
}

type Answer<T> = Result<Json<T>, ApiError>;
type Shared = State<Arc<Admin>>;

/// The document's metadata; the paths and schemas come from the routes ([`openapi`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "TDS admin API",
        description = "Health, status, syncs, runs, queue and dead letters, stock, statistics and comparisons of TDS (Zoho → PostgreSQL). Every route needs `Authorization: Bearer <token>` (the local stack, the dashboard's token sign-in) or, on AWS, the HTTP API's authorizer (IAM SigV4 or JWT). Errors are `{\"error\": \"...\"}`."
    ),
    tags((name = "tds", description = "Operations"), (name = "statistics", description = "Comparisons of Zoho and PostgreSQL"), (name = "bff", description = "Summaries for the mobile app"))
)]
struct Doc;

/// Every route with its OpenAPI operation; the router and the document are both made from this.
fn routes() -> OpenApiRouter<Arc<Admin>> {
    OpenApiRouter::with_openapi(Doc::openapi())
        .routes(routes!(health))
        .routes(routes!(overview))
        .routes(routes!(status))
        .routes(routes!(start_sync))
        .routes(routes!(sync_runs))
        .routes(routes!(sync_run))
        .routes(routes!(queue))
        .routes(routes!(metrics))
        .routes(routes!(deadletter))
        .routes(routes!(deadletter_retry))
        .routes(routes!(stock_sync))
        .routes(routes!(statistics_overview))
        .routes(routes!(statistics_compare))
        .routes(routes!(statistics_history))
        .routes(routes!(sync_differences))
        .routes(routes!(statistics_group))
        .routes(routes!(bff_status))
        .routes(routes!(bff_recent))
        .routes(routes!(alerts))
        .routes(routes!(cursors))
        .routes(routes!(organizations))
        .routes(routes!(entity))
}

/// The OpenAPI document of every route (what `openapi.json` holds): bearer security on every
/// operation, and the 401 and 503 answers every route can give.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
    let (_, mut doc) = routes().split_for_parts();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    doc.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            op.responses.responses.entry("401".into()).or_insert_with(|| {
                error("No caller: the bearer token is missing or wrong, or the authorizer did not identify the caller.")
            });
            op.responses
                .responses
                .entry("503".into())
                .or_insert_with(|| {
                    error("The database, a queue or Zoho is unavailable now; retry later.")
                });
        }
    }
    doc
}

/// Every documented route as (method, path), e.g. `("get", "/api/tds/health")`.
pub fn documented_routes() -> Vec<(String, String)> {
    let doc = openapi();
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        if item.get.is_some() {
            out.push(("get".to_string(), path.clone()));
        }
        if item.post.is_some() {
            out.push(("post".to_string(), path.clone()));
        }
    }
    out
}

/// The router: every `/api` route behind the caller check, and the dashboard's files without it.
pub fn router(admin: Arc<Admin>) -> Router {
    let admin_dashboard = admin.dashboard.clone();
    let (api, _) = routes().split_for_parts();
    let api = api
        .fallback(|| async { not_found("no such route") })
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            authenticate,
        ))
        .with_state(admin);
    dashboard::router(admin_dashboard).merge(api)
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

/// `?org_id=`: one organisation (defaults to the only configured one).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OrgQuery {
    /// Organisation id; may be left out when only one is configured.
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

/// Health as `/api/tds/health` and the overview judge it.
struct Judged {
    level: HealthLevel,
    reasons: Vec<String>,
    database: bool,
    queue: QueueHealth,
    alerts: Vec<(String, tds_store::AlertRow)>,
    last: Option<tds_store::SyncRun>,
}

/// The worst of: the database and queues answering, dead letters waiting, the last run failing,
/// and open alerts (TDS's own verdict about the data: a critical one makes TDS unhealthy, a
/// warning degraded, whatever the parts say).
async fn judge(admin: &Admin) -> Judged {
    let mut reasons = Vec::new();
    let mut level = HealthLevel::Healthy;
    let database = match admin.store.ping().await {
        Ok(_) => true,
        Err(e) => {
            level = HealthLevel::Unhealthy;
            reasons.push(format!("database unreachable: {e}"));
            false
        }
    };
    let queue = match (admin.inbox.stats().await, admin.dead_letters.stats().await) {
        (Ok(i), Ok(d)) => {
            if d.visible > 0 {
                level = level.max(HealthLevel::Degraded);
                reasons.push(format!("{} message(s) in the dead-letter queue", d.visible));
            }
            QueueHealth {
                ok: true,
                inbox: Some(i),
                deadletter: Some(d),
            }
        }
        (i, d) => {
            level = HealthLevel::Unhealthy;
            let e = i
                .err()
                .or(d.err())
                .map(|e| e.to_string())
                .unwrap_or_default();
            reasons.push(format!("queue unreachable: {e}"));
            QueueHealth {
                ok: false,
                inbox: None,
                deadletter: None,
            }
        }
    };
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
    Judged {
        level,
        reasons,
        database,
        queue,
        alerts,
        last,
    }
}

/// Whether TDS works and why not: database, queues, dead letters, the last run, open alerts.
#[utoipa::path(get, path = "/api/tds/health", tag = "tds",
    responses((status = 200, description = "Healthy or degraded", body = Health),
              (status = 503, description = "Unhealthy (same body)", body = Health)))]
async fn health(State(admin): Shared) -> Response {
    let judged = judge(&admin).await;
    let tokens = admin.store.token_expiries().await.unwrap_or_default();
    let zoho = ZohoState {
        organizations: admin.runner.zoho().org_ids(),
        tokens: tokens
            .into_iter()
            .map(|t| TokenState {
                valid: t.expires_at.is_some_and(|e| e > Utc::now()),
                credential: t.credential_id,
                expires_at: t.expires_at,
            })
            .collect(),
    };
    let code = if judged.level == HealthLevel::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = Health {
        status: judged.level,
        reasons: judged.reasons,
        database: PartState {
            ok: judged.database,
        },
        queue: judged.queue,
        open_alerts: judged.alerts.len(),
        zoho,
        last_sync: judged.last.as_ref().map(Run::from),
    };
    (code, Json(body)).into_response()
}

/// What an operator looks at first: health, active runs, queues, the last success per kind, the
/// day's success rate and Zoho calls, open alerts.
#[utoipa::path(get, path = "/api/tds/overview", tag = "tds", params(OrgQuery),
    responses((status = 200, body = Overview), (status = 400, body = ErrorBody)))]
async fn overview(State(admin): Shared, Query(q): Query<OrgQuery>) -> Answer<Overview> {
    let org = org_of(&admin, q.org_id)?;
    let judged = judge(&admin).await;
    let running = tds_store::RunFilter {
        org_id: Some(org.clone()),
        status: Some(tds_store::RunStatus::Running),
        ..Default::default()
    };
    let active_runs = admin.store.runs_page(&running, 100, 0).await?;
    let last_success = admin
        .store
        .last_successes(&org)
        .await?
        .into_iter()
        .map(|r| LastSuccess {
            entity: r.entity,
            run_id: r.id,
            finished_at: r.finished_at,
        })
        .collect();
    let now = Utc::now();
    let day = admin
        .store
        .activity(now - chrono::Duration::hours(24), Some(&org))
        .await?;
    let runs_24h = RunTally {
        finished: day.iter().map(|h| h.runs_finished).sum(),
        failed: day.iter().map(|h| h.runs_failed).sum(),
    };
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let zoho_calls_today = day
        .iter()
        .filter(|h| h.hour >= midnight)
        .map(|h| h.api_calls)
        .sum();
    Ok(Json(Overview {
        health: Verdict {
            status: judged.level,
            reasons: judged.reasons,
        },
        active_runs: active_runs.iter().map(Run::from).collect(),
        // The figures health just read; the queues are asked again only if they did not answer.
        queue: match (judged.queue.inbox, judged.queue.deadletter) {
            (Some(inbox), Some(deadletter)) => Queues { inbox, deadletter },
            _ => queues(&admin).await?,
        },
        last_success,
        success_rate: (runs_24h.finished > 0)
            .then(|| (runs_24h.finished - runs_24h.failed) as f64 / runs_24h.finished as f64),
        runs_24h,
        zoho_calls_today,
        open_alerts: judged
            .alerts
            .into_iter()
            .filter(|(o, _)| *o == org)
            .map(|(_, a)| a)
            .collect(),
        org_id: org,
    }))
}

async fn queues(admin: &Admin) -> Result<Queues, ApiError> {
    Ok(Queues {
        inbox: admin.inbox.stats().await?,
        deadletter: admin.dead_letters.stats().await?,
    })
}

/// Rows, tombstones and cursor of every kind, the recent runs and the queues.
#[utoipa::path(get, path = "/api/tds/status", tag = "tds", params(OrgQuery),
    responses((status = 200, body = Status), (status = 400, body = ErrorBody)))]
async fn status(State(admin): Shared, Query(q): Query<OrgQuery>) -> Answer<Status> {
    let org = org_of(&admin, q.org_id)?;
    let mut entities = std::collections::BTreeMap::new();
    for kind in EntityKind::ALL {
        let c = admin.store.counts(kind, &org).await?;
        let cursor = admin.store.cursor(&org, kind).await?;
        entities.insert(
            kind.as_str().to_string(),
            EntityState {
                rows: c.active,
                tombstoned: c.deleted,
                cursor: cursor.map(CursorView::from),
            },
        );
    }
    let recent_runs = admin.store.recent_runs(Some(&org), 10).await?;
    Ok(Json(Status {
        org_id: org,
        entities,
        recent_runs: recent_runs.iter().map(Run::from).collect(),
        queue: queues(&admin).await?,
    }))
}

fn json_body<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    let body = if body.trim().is_empty() { "{}" } else { body };
    serde_json::from_str(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

/// Starts a full or incremental sync of some kinds (or all) of one organisation (or all); the runs
/// go on in the background (`GET /api/tds/sync-runs/{id}`).
#[utoipa::path(post, path = "/api/tds/sync", tag = "tds", request_body = SyncRequest,
    responses((status = 202, body = SyncStarted), (status = 400, body = ErrorBody)))]
async fn start_sync(
    State(admin): Shared,
    body: String,
) -> Result<(StatusCode, Json<SyncStarted>), ApiError> {
    let b: SyncRequest = json_body(&body)?;
    let entities = match (b.entities, b.entity) {
        (Some(e), _) => e,
        (None, Some(e)) => vec![e],
        (None, None) => vec!["all".into()],
    };
    let zoho = admin.runner.zoho();
    // An organisation added to the credentials since start-up is found by reading them again.
    known_org(&admin, b.org_id.as_deref()).await?;
    let run_ids = admin
        .runner
        .start_sync(&StartSync {
            org_id: b.org_id,
            entities,
            mode: b.mode,
            trigger: tds_core::Trigger::AdminApi,
        })
        .await?;
    // Say why nothing started.
    let reason = run_ids.is_empty().then(|| {
        if zoho.org_ids().is_empty() {
            "no organisation is configured in the Zoho credentials".to_string()
        } else {
            "a run of every requested kind is already in progress: see /api/tds/sync-runs?status=running"
                .to_string()
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(SyncStarted {
            run_ids,
            mode: b.mode,
            reason,
        }),
    ))
}

/// Pagination and filters of run lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RunsQuery {
    /// Organisation.
    org_id: Option<String>,
    /// Entity kind (`item`, `item_stock`, ...).
    entity: Option<String>,
    /// `running`, `completed` or `failed`.
    status: Option<String>,
    /// `full`, `incremental`, `heal`, `stock_incremental`, ...
    mode: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<i64>,
    /// Runs to skip (default 0).
    offset: Option<i64>,
}

/// Sync runs, newest first, filtered by organisation, entity, status and mode.
#[utoipa::path(get, path = "/api/tds/sync-runs", tag = "tds", params(RunsQuery),
    responses((status = 200, body = RunsPage), (status = 400, body = ErrorBody)))]
async fn sync_runs(State(admin): Shared, Query(q): Query<RunsQuery>) -> Answer<RunsPage> {
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
    let mode = match q.mode.as_deref() {
        None => None,
        Some(m) => Some(
            m.parse::<RunMode>()
                .map_err(|e| bad_request(format!("mode: {e}")))?,
        ),
    };
    let filter = tds_store::RunFilter {
        org_id: q.org_id,
        entity: q.entity,
        status,
        mode,
    };
    let runs = admin.store.runs_page(&filter, limit, offset).await?;
    Ok(Json(RunsPage {
        runs: runs.iter().map(Run::from).collect(),
        limit,
        offset,
    }))
}

/// One run.
#[utoipa::path(get, path = "/api/tds/sync-runs/{id}", tag = "tds",
    params(("id" = i64, Path, description = "Run id")),
    responses((status = 200, body = Run), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn sync_run(State(admin): Shared, Path(id): Path<String>) -> Answer<Run> {
    let id: i64 = id.parse().map_err(|_| {
        bad_request(format!(
            "run id must be a number, not {}",
            tds_core::fields::truncate(&id, 40)
        ))
    })?;
    match admin.store.run(id).await? {
        Some(r) => Ok(Json(Run::from(&r))),
        None => Err(not_found(format!("no sync run {id}"))),
    }
}

/// Depth and oldest message age of the inbox and its dead-letter queue (age null when unknown).
#[utoipa::path(get, path = "/api/tds/queue", tag = "tds", responses((status = 200, body = Queues)))]
async fn queue(State(admin): Shared) -> Answer<Queues> {
    Ok(Json(queues(&admin).await?))
}

/// `?hours=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MetricsQuery {
    /// The period, 1–720 hours back from now (default 24).
    hours: Option<i64>,
}

/// The seeds' monitoring figures over the last `hours`, from PostgreSQL: throughput per minute
/// (webhooks applied and records synced), average sync time, error rate (failed runs of those
/// finished) and Zoho API calls per hour (by sync runs), with the hourly series behind them.
#[utoipa::path(get, path = "/api/tds/metrics", tag = "tds", params(MetricsQuery),
    responses((status = 200, body = MetricsReport), (status = 400, body = ErrorBody)))]
async fn metrics(State(admin): Shared, Query(q): Query<MetricsQuery>) -> Answer<MetricsReport> {
    let hours = q.hours.unwrap_or(24);
    if !(1..=720).contains(&hours) {
        return Err(bad_request(format!(
            "hours must be from 1 to 720, not {hours}"
        )));
    }
    let to = chrono::Utc::now();
    let from = to - chrono::Duration::hours(hours);
    let series = admin.store.activity(from, None).await?;
    let total = |f: fn(&tds_store::ActivityHour) -> i64| series.iter().map(f).sum::<i64>();
    let (webhooks, records) = (total(|h| h.webhooks_applied), total(|h| h.records_synced));
    let (runs, failed) = (total(|h| h.runs_finished), total(|h| h.runs_failed));
    let (calls, ms) = (total(|h| h.api_calls), total(|h| h.duration_ms_sum));
    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
    let minutes = (hours * 60) as f64;
    Ok(Json(MetricsReport {
        from,
        to,
        hours,
        throughput_per_minute: (webhooks + records) as f64 / minutes,
        webhooks_applied: webhooks,
        records_synced: records,
        average_sync_ms: ratio(ms, runs),
        runs_finished: runs,
        runs_failed: failed,
        error_rate: ratio(failed, runs),
        api_calls: calls,
        api_calls_per_hour: calls as f64 / hours as f64,
        series,
    }))
}

/// `?limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LimitQuery {
    /// How many to show, 1–10 (default 10).
    limit: Option<usize>,
}

/// Dead letters (up to 10, without taking them), each with why it failed and what it was.
#[utoipa::path(get, path = "/api/tds/deadletter", tag = "tds", params(LimitQuery),
    responses((status = 200, body = DeadLetters)))]
async fn deadletter(State(admin): Shared, Query(q): Query<LimitQuery>) -> Answer<DeadLetters> {
    let limit = q.limit.unwrap_or(10).clamp(1, 10);
    let messages = admin
        .dead_letters
        .peek(limit)
        .await?
        .into_iter()
        .map(|m| {
            let body: Value = serde_json::from_str(&m.body).unwrap_or(Value::Null);
            let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_string);
            DeadLetter {
                reason: text("reason"),
                failed_at: text("failed_at"),
                original: body
                    .get("original")
                    .cloned()
                    .unwrap_or_else(|| Value::String(m.body.clone())),
                message_id: m.message_id,
                receive_count: m.receive_count,
                sent_at: m.sent_at,
            }
        })
        .collect();
    Ok(Json(DeadLetters {
        messages,
        depth: admin.dead_letters.stats().await?.visible,
    }))
}

/// Moves dead letters back to the inbox: those named, or up to `max` (default 100).
#[utoipa::path(post, path = "/api/tds/deadletter/retry", tag = "tds", request_body = RetryRequest,
    responses((status = 200, body = Retried), (status = 400, body = ErrorBody)))]
async fn deadletter_retry(State(admin): Shared, body: String) -> Answer<Retried> {
    let b: RetryRequest = json_body(&body)?;
    let moved = match b.message_ids {
        Some(_) if b.max.is_some() => {
            return Err(bad_request("give message_ids or max, not both"));
        }
        Some(ids) if ids.is_empty() || ids.len() > 1000 => {
            return Err(bad_request("message_ids must name 1 to 1000 messages"));
        }
        Some(ids) => admin.redrive.redrive_ids(&ids).await?,
        None => {
            admin
                .redrive
                .redrive(b.max.unwrap_or(100).clamp(1, 10_000))
                .await?
        }
    };
    Ok(Json(Retried { moved }))
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

/// Polls stock now (the stock-poller's input).
#[utoipa::path(post, path = "/api/tds/stock/sync", tag = "tds", request_body = StockRequest,
    responses((status = 200, body = StockPolled), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn stock_sync(State(admin): Shared, body: String) -> Answer<StockPolled> {
    let input: Value = json_body(&body)?;
    let request = StockRequest::parse(&input).map_err(bad_request)?;
    known_org(&admin, request.org_id.as_deref()).await?;
    let reports = admin.poller.poll(&request).await.map_err(upstream)?;
    Ok(Json(StockPolled {
        mode: request.mode,
        reports,
    }))
}

/// The latest comparison report of an organisation (404 before the first).
async fn latest_report(admin: &Admin, org: &str) -> Result<ComparisonReport, ApiError> {
    let Some(stored) = admin.store.latest_comparison(org).await? else {
        return Err(not_found(
            "no comparison yet: POST /api/tds/statistics/sync-differences",
        ));
    };
    serde_json::from_value(stored).map_err(|e| {
        tracing::error!(error = %e, "a stored comparison report does not read back");
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the latest comparison report could not be read; details are in the logs".into(),
        )
    })
}

/// The latest comparison in short: match %, health score, severity band, per-kind differences.
#[utoipa::path(get, path = "/api/tds/statistics/overview", tag = "statistics", params(OrgQuery),
    responses((status = 200, body = StatisticsOverview), (status = 400, body = ErrorBody), (status = 404, description = "No comparison yet", body = ErrorBody)))]
async fn statistics_overview(
    State(admin): Shared,
    Query(q): Query<OrgQuery>,
) -> Answer<StatisticsOverview> {
    let org = org_of(&admin, q.org_id)?;
    let report = latest_report(&admin, &org).await?;
    Ok(Json(StatisticsOverview::from(&report)))
}

/// The latest comparison report in full: every differing id by kind and category, heal actions,
/// both sides' statistics.
#[utoipa::path(get, path = "/api/tds/statistics/compare", tag = "statistics", params(OrgQuery),
    responses((status = 200, body = ComparisonReport), (status = 400, body = ErrorBody), (status = 404, description = "No comparison yet", body = ErrorBody)))]
async fn statistics_compare(
    State(admin): Shared,
    Query(q): Query<OrgQuery>,
) -> Answer<ComparisonReport> {
    let org = org_of(&admin, q.org_id)?;
    Ok(Json(latest_report(&admin, &org).await?))
}

/// A statistics group of the latest comparison: both sides' figures.
#[utoipa::path(get, path = "/api/tds/statistics/{group}", tag = "statistics",
    params(("group" = String, Path, description = "items, customers, vendors, pricelists, stock or images"), OrgQuery),
    responses((status = 200, body = GroupStatistics), (status = 400, body = ErrorBody), (status = 404, description = "No such group, or no comparison yet", body = ErrorBody)))]
async fn statistics_group(
    State(admin): Shared,
    Path(group): Path<String>,
    Query(q): Query<OrgQuery>,
) -> Answer<GroupStatistics> {
    let key = match group.as_str() {
        "items" | "customers" | "vendors" | "stock" | "images" => group.clone(),
        "pricelists" => "price_lists".into(),
        other => return Err(not_found(format!(
            "no statistics group {}: items, customers, vendors, pricelists, stock, images, overview, compare, history",
            tds_core::fields::truncate(other, 40)))),
    };
    let org = org_of(&admin, q.org_id)?;
    let mut report = latest_report(&admin, &org).await?;
    Ok(Json(GroupStatistics {
        org_id: org,
        group,
        statistics: report.statistics.remove(&key),
    }))
}

/// `?entity=&limit=&org_id=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Organisation.
    org_id: Option<String>,
    /// One entity group.
    entity: Option<String>,
    /// How many, 1–1000 (default 50).
    limit: Option<i64>,
}

/// Statistics snapshots of both sides, newest first.
#[utoipa::path(get, path = "/api/tds/statistics/history", tag = "statistics", params(HistoryQuery),
    responses((status = 200, body = History), (status = 400, body = ErrorBody)))]
async fn statistics_history(
    State(admin): Shared,
    Query(q): Query<HistoryQuery>,
) -> Answer<History> {
    let org = org_of(&admin, q.org_id)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let history = admin
        .store
        .statistics_history(&org, q.entity.as_deref(), limit)
        .await?;
    Ok(Json(History {
        org_id: org,
        history,
    }))
}

/// Compares Zoho with PostgreSQL record by record now and (unless `heal` is false or `dry_run`
/// true) heals what differs.
#[utoipa::path(post, path = "/api/tds/statistics/sync-differences", tag = "statistics", request_body = CompareRequest,
    responses((status = 200, body = Compared), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn sync_differences(State(admin): Shared, body: String) -> Answer<Compared> {
    let input: Value = json_body(&body)?;
    let request = CompareRequest::parse(&input).map_err(bad_request)?;
    known_org(&admin, request.org_id.as_deref()).await?;
    let reports = admin.comparator.compare(&request).await.map_err(upstream)?;
    Ok(Json(Compared { reports }))
}

/// The mobile summary: ok, inbox and dead letters, the last run.
#[utoipa::path(get, path = "/api/bff/tds/status", tag = "bff", responses((status = 200, body = BffStatus)))]
async fn bff_status(State(admin): Shared) -> Answer<BffStatus> {
    let last = admin.store.recent_runs(None, 1).await?.into_iter().next();
    let dlq = admin.dead_letters.stats().await?.visible;
    let inbox = admin.inbox.stats().await?;
    Ok(Json(BffStatus {
        ok: dlq == 0
            && last
                .as_ref()
                .is_none_or(|r| r.status != tds_store::RunStatus::Failed),
        inbox: inbox.visible + inbox.in_flight,
        deadletter: dlq,
        last_sync: last.map(|r| BffLastSync {
            entity: r.entity,
            status: r.status,
            at: r.started_at,
        }),
    }))
}

/// The 5 most recent runs, for the mobile app.
#[utoipa::path(get, path = "/api/bff/tds/recent", tag = "bff", responses((status = 200, body = BffRecent)))]
async fn bff_recent(State(admin): Shared) -> Answer<BffRecent> {
    let runs = admin.store.recent_runs(None, 5).await?;
    Ok(Json(BffRecent {
        runs: runs
            .into_iter()
            .map(|r| BffRun {
                id: r.id,
                entity: r.entity,
                mode: r.mode,
                status: r.status,
                changed: r.counts.changed,
            })
            .collect(),
    }))
}

/// The organisation's 100 most recent alerts, open and resolved.
#[utoipa::path(get, path = "/api/tds/alerts", tag = "tds", params(OrgQuery),
    responses((status = 200, body = Alerts), (status = 400, body = ErrorBody)))]
async fn alerts(State(admin): Shared, Query(q): Query<OrgQuery>) -> Answer<Alerts> {
    let org = org_of(&admin, q.org_id)?;
    let alerts = admin.store.alerts(&org, 100).await?;
    Ok(Json(Alerts {
        org_id: org,
        alerts,
    }))
}

/// The incremental cursor of each kind that has one.
#[utoipa::path(get, path = "/api/tds/cursors", tag = "tds", params(OrgQuery),
    responses((status = 200, body = Cursors), (status = 400, body = ErrorBody)))]
async fn cursors(State(admin): Shared, Query(q): Query<OrgQuery>) -> Answer<Cursors> {
    let org = org_of(&admin, q.org_id)?;
    let mut cursors = std::collections::BTreeMap::new();
    for kind in EntityKind::ALL {
        if let Some(c) = admin.store.cursor(&org, kind).await? {
            cursors.insert(kind.as_str().to_string(), CursorView::from(c));
        }
    }
    Ok(Json(Cursors {
        org_id: org,
        cursors,
    }))
}

/// The configured organisations.
#[utoipa::path(get, path = "/api/tds/organizations", tag = "tds", responses((status = 200, body = Organizations)))]
async fn organizations(State(admin): Shared) -> Answer<Organizations> {
    Ok(Json(Organizations {
        organizations: admin.runner.zoho().org_ids(),
    }))
}

/// One stored record (live or tombstoned).
#[utoipa::path(get, path = "/api/tds/entities/{kind}/{id}", tag = "tds",
    params(("kind" = tds_core::EntityKind, Path, description = "Entity kind"), ("id" = String, Path, description = "Zoho id"), OrgQuery),
    responses((status = 200, body = EntityRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn entity(
    State(admin): Shared,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<OrgQuery>,
) -> Answer<EntityRow> {
    let kind: EntityKind = kind.parse().map_err(|e| bad_request(format!("{e}")))?;
    let org = org_of(&admin, q.org_id)?;
    match admin.store.get(kind, &org, &id).await? {
        Some(row) => Ok(Json(EntityRow {
            org_id: org,
            kind,
            zoho_id: row.zoho_id,
            last_modified_time: row.last_modified_time,
            deleted_at: row.deleted_at,
            synced_at: row.synced_at,
            record: row.record,
        })),
        None => Err(not_found(format!(
            "no {kind} {} in organisation {org}",
            tds_core::fields::truncate(&id, 40)
        ))),
    }
}
