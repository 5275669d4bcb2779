//! The admin API's wire types: what every route answers and accepts. The handlers build them, the
//! `tds` CLI and the dashboard read them, and `openapi.json` is generated from them, so a field
//! cannot change in one place only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tds_core::ports::QueueStats;
use tds_core::{RunMode, StockMode, SyncMode, Trigger};
use tds_store::{ActivityHour, AlertRow, HistoryRow, RunStatus};
use tds_sync::compare::{ComparisonReport, Severity};
use tds_sync::stats::Stats;
use tds_sync::stock::StockReport;
use utoipa::ToSchema;

/// An error: what was wrong, for a person to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The message.
    pub error: String,
}

/// How healthy TDS is, worst last (a health check keeps the worst it finds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthLevel {
    /// Everything answers and nothing needs attention.
    Healthy,
    /// Working, with something to look at (dead letters, a failed last run, a warning alert).
    Degraded,
    /// A part TDS needs does not answer, or a critical alert is open.
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

/// A sync run as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// Run id.
    pub id: i64,
    /// Organisation.
    pub org_id: String,
    /// Entity kind (`item`, `item_stock`, ...).
    pub entity: String,
    /// Mode.
    pub mode: RunMode,
    /// What started it.
    pub trigger: Trigger,
    /// Status.
    pub status: RunStatus,
    /// Pages committed.
    pub pages: i32,
    /// Records fetched from Zoho.
    pub fetched: i64,
    /// Rows that changed.
    pub changed: i64,
    /// Rows already current.
    pub unchanged: i64,
    /// Records that failed.
    pub failed: i64,
    /// Zoho calls made.
    pub api_calls: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Duration in milliseconds, once finished.
    pub duration_ms: Option<i64>,
    /// What it failed on, or the record errors it completed with.
    pub error: Option<String>,
}

impl From<&tds_store::SyncRun> for Run {
    fn from(r: &tds_store::SyncRun) -> Self {
        Run {
            id: r.id,
            org_id: r.org_id.clone(),
            entity: r.entity.clone(),
            mode: r.mode,
            trigger: r.trigger,
            status: r.status,
            pages: r.counts.pages,
            fetched: r.counts.fetched,
            changed: r.counts.changed,
            unchanged: r.counts.unchanged,
            failed: r.counts.failed,
            api_calls: r.counts.api_calls,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: r.duration_ms,
            error: r.error.clone(),
        }
    }
}

/// Whether a part answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartState {
    /// It answered.
    pub ok: bool,
}

/// The inbox and its dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Queues {
    /// The inbox.
    pub inbox: QueueStats,
    /// Its dead-letter queue.
    pub deadletter: QueueStats,
}

/// The queues as health sees them: figures when they answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueHealth {
    /// Both queues answered.
    pub ok: bool,
    /// The inbox, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<QueueStats>,
    /// The dead-letter queue, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadletter: Option<QueueStats>,
}

/// A cached Zoho access token's state (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenState {
    /// The credential it belongs to.
    pub credential: String,
    /// When it expires (none cached when null).
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it is still valid.
    pub valid: bool,
}

/// What TDS knows of Zoho.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ZohoState {
    /// Configured organisations.
    pub organizations: Vec<String>,
    /// Cached tokens.
    pub tokens: Vec<TokenState>,
}

/// `GET /api/tds/health` (503 when unhealthy, same body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// The verdict.
    pub status: HealthLevel,
    /// Why it is not healthy (empty when it is).
    pub reasons: Vec<String>,
    /// The database.
    pub database: PartState,
    /// The queues.
    pub queue: QueueHealth,
    /// Open alerts of every organisation.
    pub open_alerts: usize,
    /// Zoho.
    pub zoho: ZohoState,
    /// The most recent run.
    pub last_sync: Option<Run>,
}

/// An incremental-sync position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CursorView {
    /// The newest committed `last_modified_time`.
    pub time: DateTime<Utc>,
    /// The id that broke the tie at that time.
    pub id: String,
}

impl From<tds_store::Cursor> for CursorView {
    fn from(c: tds_store::Cursor) -> Self {
        CursorView {
            time: c.time,
            id: c.id,
        }
    }
}

/// One kind's rows in PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EntityState {
    /// Live rows.
    pub rows: i64,
    /// Tombstoned rows.
    pub tombstoned: i64,
    /// Its incremental cursor.
    pub cursor: Option<CursorView>,
}

/// `GET /api/tds/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// Organisation.
    pub org_id: String,
    /// Per entity kind.
    pub entities: BTreeMap<String, EntityState>,
    /// The 10 most recent runs.
    pub recent_runs: Vec<Run>,
    /// The queues.
    pub queue: Queues,
}

/// The newest completed run of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastSuccess {
    /// Entity kind.
    pub entity: String,
    /// The run.
    pub run_id: i64,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Runs finished in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunTally {
    /// Runs that finished.
    pub finished: i64,
    /// Of those, failed.
    pub failed: i64,
}

/// The verdict and its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Verdict {
    /// The level.
    pub status: HealthLevel,
    /// Why it is not healthy.
    pub reasons: Vec<String>,
}

/// `GET /api/tds/overview`: what an operator looks at first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Overview {
    /// Organisation.
    pub org_id: String,
    /// Health, as `/api/tds/health` judges it.
    pub health: Verdict,
    /// Runs in progress.
    pub active_runs: Vec<Run>,
    /// The queues.
    pub queue: Queues,
    /// The newest completed run of each kind.
    pub last_success: Vec<LastSuccess>,
    /// Runs finished in the last 24 hours.
    pub runs_24h: RunTally,
    /// Completed share of those (null when none finished).
    pub success_rate: Option<f64>,
    /// Zoho calls sync runs made since midnight UTC.
    pub zoho_calls_today: i64,
    /// Open alerts of the organisation.
    pub open_alerts: Vec<AlertRow>,
}

/// Body of `POST /api/tds/sync`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// One organisation; every configured one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// One kind (`entities` wins when both are given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Kinds, or `["all"]` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<String>>,
    /// Full or incremental (the default).
    #[serde(default = "incremental")]
    pub mode: SyncMode,
}

fn incremental() -> SyncMode {
    SyncMode::Incremental
}

/// `POST /api/tds/sync` (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncStarted {
    /// The runs started, one per (organisation, kind).
    pub run_ids: Vec<i64>,
    /// Their mode.
    pub mode: SyncMode,
    /// Why nothing started, when nothing did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /api/tds/sync-runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunsPage {
    /// Newest first.
    pub runs: Vec<Run>,
    /// The page size asked for.
    pub limit: i64,
    /// Runs skipped.
    pub offset: i64,
}

/// `GET /api/tds/metrics`: the seeds' monitoring figures, from PostgreSQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsReport {
    /// Period start.
    pub from: DateTime<Utc>,
    /// Period end (now).
    pub to: DateTime<Utc>,
    /// Its length in hours.
    pub hours: i64,
    /// Webhooks applied and records synced, per minute.
    pub throughput_per_minute: f64,
    /// Webhook deliveries applied.
    pub webhooks_applied: i64,
    /// Records fetched by sync runs.
    pub records_synced: i64,
    /// Average duration of the finished runs (null when none finished).
    pub average_sync_ms: Option<f64>,
    /// Runs that finished.
    pub runs_finished: i64,
    /// Of those, failed.
    pub runs_failed: i64,
    /// `runs_failed / runs_finished` (null when none finished).
    pub error_rate: Option<f64>,
    /// Zoho calls those runs made.
    pub api_calls: i64,
    /// Per hour.
    pub api_calls_per_hour: f64,
    /// The hours behind the figures, oldest first.
    pub series: Vec<ActivityHour>,
}

/// A dead letter as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    /// Queue message id (what `message_ids` of a retry names).
    pub message_id: String,
    /// Times it was received.
    pub receive_count: u32,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// Why it was dead-lettered (absent when SQS moved it after too many receives).
    pub reason: Option<String>,
    /// When it was dead-lettered.
    pub failed_at: Option<String>,
    /// What TDS was to apply: the original inbox message (JSON, or its text).
    pub original: Value,
}

/// `GET /api/tds/deadletter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetters {
    /// Up to `limit` of them, oldest first.
    pub messages: Vec<DeadLetter>,
    /// Messages in the dead-letter queue.
    pub depth: u64,
}

/// Body of `POST /api/tds/deadletter/retry`: the dead letters with these ids, or up to `max` (100 by
/// default) of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// How many to move (1–10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
    /// Exactly these (ids as `GET /api/tds/deadletter` shows them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_ids: Option<Vec<String>>,
}

/// `POST /api/tds/deadletter/retry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Retried {
    /// Messages moved back to the inbox.
    pub moved: usize,
}

/// `POST /api/tds/stock/sync`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StockPolled {
    /// The mode polled.
    pub mode: StockMode,
    /// One per organisation.
    pub reports: Vec<StockReport>,
}

/// One kind of the latest comparison, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KindSummary {
    /// Kind.
    pub kind: String,
    /// Records in Zoho.
    pub zoho_total: usize,
    /// Live rows in PostgreSQL.
    pub local_total: usize,
    /// Records that differ.
    pub differences: usize,
}

/// `GET /api/tds/statistics/overview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatisticsOverview {
    /// Organisation.
    pub org_id: String,
    /// The report.
    pub report_id: i64,
    /// Overall match percentage.
    pub match_pct: f64,
    /// Health score (0–100).
    pub health_score: f64,
    /// Band of the health score.
    pub severity: Severity,
    /// Per kind.
    pub kinds: Vec<KindSummary>,
    /// What to do about it.
    pub recommendations: Vec<String>,
}

impl From<&ComparisonReport> for StatisticsOverview {
    fn from(r: &ComparisonReport) -> Self {
        StatisticsOverview {
            org_id: r.org_id.clone(),
            report_id: r.report_id,
            match_pct: r.match_pct,
            health_score: r.health_score,
            severity: r.severity,
            kinds: r
                .kinds
                .iter()
                .map(|k| KindSummary {
                    kind: k.kind.clone(),
                    zoho_total: k.zoho_total,
                    local_total: k.local_total,
                    differences: k.differences(),
                })
                .collect(),
            recommendations: r.recommendations.clone(),
        }
    }
}

/// `GET /api/tds/statistics/{group}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupStatistics {
    /// Organisation.
    pub org_id: String,
    /// The group asked for.
    pub group: String,
    /// Both sides' figures (null when the latest comparison did not measure the group).
    pub statistics: Option<Stats>,
}

/// `GET /api/tds/statistics/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// Organisation.
    pub org_id: String,
    /// Snapshots, newest first.
    pub history: Vec<HistoryRow>,
}

/// `POST /api/tds/statistics/sync-differences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Compared {
    /// One per organisation.
    pub reports: Vec<ComparisonReport>,
}

/// `GET /api/bff/tds/status`'s last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BffLastSync {
    /// Entity kind.
    pub entity: String,
    /// Status.
    pub status: RunStatus,
    /// When it started.
    pub at: DateTime<Utc>,
}

/// `GET /api/bff/tds/status`: the mobile summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BffStatus {
    /// No dead letters and the last run did not fail.
    pub ok: bool,
    /// Inbox messages (visible and in flight).
    pub inbox: u64,
    /// Dead letters.
    pub deadletter: u64,
    /// The most recent run.
    pub last_sync: Option<BffLastSync>,
}

/// A run as the mobile list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BffRun {
    /// Run id.
    pub id: i64,
    /// Entity kind.
    pub entity: String,
    /// Mode.
    pub mode: RunMode,
    /// Status.
    pub status: RunStatus,
    /// Rows changed.
    pub changed: i64,
}

/// `GET /api/bff/tds/recent`: the 5 most recent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BffRecent {
    /// Newest first.
    pub runs: Vec<BffRun>,
}

/// `GET /api/tds/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alerts {
    /// Organisation.
    pub org_id: String,
    /// The 100 most recent, open and resolved.
    pub alerts: Vec<AlertRow>,
}

/// `GET /api/tds/cursors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Cursors {
    /// Organisation.
    pub org_id: String,
    /// Per kind that has one.
    pub cursors: BTreeMap<String, CursorView>,
}

/// `GET /api/tds/organizations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Organizations {
    /// Configured organisation ids.
    pub organizations: Vec<String>,
}

/// `GET /api/tds/entities/{kind}/{id}`: one stored row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntityRow {
    /// Organisation.
    pub org_id: String,
    /// Kind.
    pub kind: tds_core::EntityKind,
    /// Zoho id.
    pub zoho_id: String,
    /// The version stored.
    pub last_modified_time: DateTime<Utc>,
    /// When it was tombstoned.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When TDS wrote it.
    pub synced_at: DateTime<Utc>,
    /// The record as Zoho gave it.
    pub record: Value,
}

/// `GET /dashboard/config.json`: how the dashboard signs in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DashboardConfig {
    /// OpenID Connect sign-in (on AWS, the JWT authorizer's issuer), or null for the token form only.
    pub oidc: Option<OidcConfig>,
}

/// An OpenID Connect provider the dashboard signs in with (authorization code with PKCE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcConfig {
    /// Issuer URL (its `/.well-known/openid-configuration` is read).
    pub issuer: String,
    /// The dashboard's client id (the JWT authorizer's audience).
    pub client_id: String,
    /// Scopes asked for.
    pub scopes: String,
}
