//! The operator commands: a thin client of the admin API (the same routes whether TDS runs on AWS or
//! under `tds up`), plus `migrate`, which talks to the database directly.
//!
//! Exit codes scripts can rely on: 0 done (healthy), 1 the operation failed or TDS is unhealthy,
//! 2 bad usage, 3 degraded, 4 the API or the database cannot be reached.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tds_admin::api::{
    Compared, DeadLetters, ErrorBody, GroupStatistics, Health, HealthLevel, Retried, RetryRequest,
    Run, StatisticsOverview, StockPolled, SyncRequest, SyncStarted,
};
use tds_core::{EntityKind, StockMode, SyncMode};
use tds_store::RunStatus;
use tds_sync::compare::{CompareRequest, ComparisonReport};
use tds_sync::stock::StockRequest;

/// A command's failure: exit code and message.
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

fn usage(message: impl Into<String>) -> Exit {
    Exit(2, message.into())
}

/// Options every client command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Client {
    /// The admin API [default: TDS_API_URL, else http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    api: Option<String>,
    /// The admin token [default: TDS_ADMIN_TOKEN; `tds up` prints it].
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// Sign requests with AWS credentials (the admin API on AWS; as TDS_API_AUTH=aws-iam).
    #[arg(long)]
    aws_iam: bool,
    /// Print the API's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// How requests prove who sends them.
enum Auth {
    /// `Authorization: Bearer` with the admin token (the local stack, or a token-checked deployment).
    Bearer(String),
    /// SigV4 with the caller's AWS credentials (the admin HTTP API's IAM authorizer).
    AwsIam(crate::sigv4::Signer),
}

/// Where and how a client command calls.
struct Common {
    api: String,
    auth: Auth,
    json: bool,
}

impl Client {
    /// `--api`/`TDS_API_URL`, and the credentials: `--aws-iam` (or `TDS_API_AUTH=aws-iam`, or an
    /// execute-api URL with no token given) signs with AWS credentials; else the bearer token from
    /// `--token`/`TDS_ADMIN_TOKEN`.
    async fn common(&self) -> Result<Common, Exit> {
        let api = self
            .api
            .clone()
            .or_else(|| std::env::var("TDS_API_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let api = api.trim_end_matches('/').to_string();
        let token = self
            .token
            .clone()
            .or_else(|| std::env::var("TDS_ADMIN_TOKEN").ok())
            .filter(|t| !t.is_empty());
        let iam = match std::env::var("TDS_API_AUTH").ok().as_deref() {
            _ if self.aws_iam => true,
            Some("aws-iam") => true,
            Some("token") | Some("") | None => {
                token.is_none() && crate::sigv4::region_of(&api).is_some()
            }
            Some(other) => {
                return Err(usage(format!(
                    "TDS_API_AUTH={other:?} is not a way to authenticate; use token or aws-iam"
                )))
            }
        };
        let auth = match (iam, token) {
            (true, _) => Auth::AwsIam(
                crate::sigv4::Signer::from_environment(&api)
                    .await
                    .map_err(usage)?,
            ),
            (false, Some(token)) => Auth::Bearer(token),
            (false, None) => {
                return Err(usage(
                    "no admin token: pass --token or set TDS_ADMIN_TOKEN (tds up prints it); \
                     for the admin API on AWS pass --aws-iam",
                ))
            }
        };
        Ok(Common {
            api,
            auth,
            json: self.json,
        })
    }
}

/// An entity kind's name as the API takes it, or `all` (the value parser of `<ENTITY>`/`--entity`).
fn entity(name: &str) -> Result<String, String> {
    if name == "all" {
        return Ok(name.into());
    }
    name.parse::<EntityKind>()
        .map(|k| k.as_str().to_string())
        .map_err(|e| format!("{e} (or `all`)"))
}

/// A number of stock units (`tds stock --threshold`).
fn number(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("must be a number, not {s:?}"))
}

/// A count of differences (`tds compare --threshold`).
fn whole(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("must be a whole number of differences, not {s:?}"))
}

/// An answer: typed for the command, and as sent, for `--json`.
struct Answer<T> {
    typed: T,
    raw: Value,
}

/// API Gateway's own refusals (`{"message": "Forbidden"}`), which are not the admin API's [`ErrorBody`].
#[derive(Deserialize)]
struct GatewayMessage {
    message: String,
}

/// What an error answer says: its [`ErrorBody`], a gateway's message, or its text.
fn error_text(bytes: &[u8]) -> Option<String> {
    if let Ok(ErrorBody { error }) = serde_json::from_slice(bytes) {
        return Some(error);
    }
    if let Ok(GatewayMessage { message }) = serde_json::from_slice(bytes) {
        return Some(message);
    }
    let text = String::from_utf8_lossy(bytes).trim().to_string();
    (!text.is_empty()).then(|| text.chars().take(300).collect())
}

async fn get<T: DeserializeOwned>(c: &Common, path: &str) -> Result<Answer<T>, Exit> {
    send(c, "GET", path, Vec::new()).await
}

async fn post<T: DeserializeOwned>(
    c: &Common,
    path: &str,
    body: &impl Serialize,
) -> Result<Answer<T>, Exit> {
    let body = serde_json::to_vec(body).map_err(|e| Exit(1, e.to_string()))?;
    send(c, "POST", path, body).await
}

async fn send<T: DeserializeOwned>(
    c: &Common,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<Answer<T>, Exit> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| Exit(1, e.to_string()))?;
    let url = format!("{}{path}", c.api);
    let mut req = match method {
        "POST" => client.post(&url).header("content-type", "application/json"),
        _ => client.get(&url),
    };
    req = match &c.auth {
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::AwsIam(signer) => {
            let headers = signer
                .headers(method, &url, &body, std::time::SystemTime::now())
                .await
                .map_err(|e| Exit(1, e))?;
            headers
                .iter()
                .fold(req, |req, (name, value)| req.header(name, value))
        }
    };
    if method == "POST" {
        req = req.body(body);
    }
    let unreachable = |e: reqwest::Error| {
        Exit(
            4,
            format!(
                "cannot reach the admin API at {} ({e}); is `tds up` running, or pass --api",
                c.api
            ),
        )
    };
    let resp = req.send().await.map_err(unreachable)?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(unreachable)?;
    let answer = || -> Result<Answer<T>, Exit> {
        let typed = serde_json::from_slice(&bytes).map_err(|e| {
            Exit(
                1,
                format!(
                    "the admin API's answer to {method} {path} is not what this tds reads ({e})"
                ),
            )
        })?;
        let raw = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { typed, raw })
    };
    match status.as_u16() {
        200..=299 => answer(),
        // Health answers 503 when unhealthy: that is an answer, not a failure to call.
        503 if path == "/api/tds/health" => answer(),
        401 => Err(Exit(
            1,
            format!(
                "the admin API refused the token: {}",
                error_text(&bytes).unwrap_or_else(|| "401".into())
            ),
        )),
        // API Gateway's IAM authorizer: a bad signature or a principal without execute-api:Invoke.
        403 => Err(Exit(
            1,
            format!(
                "the admin API refused the request (403 {}); the caller needs execute-api:Invoke on it \
                 (the stack's AdminApiInvokePolicy) and valid AWS credentials",
                error_text(&bytes).unwrap_or_else(|| "Forbidden".into())
            ),
        )),
        // 400: the request was wrong (bad usage); 404 and the rest: there is nothing to show, or
        // the operation failed.
        code => Err(Exit(
            if code == 400 { 2 } else { 1 },
            error_text(&bytes).unwrap_or_else(|| format!("HTTP {code}")),
        )),
    }
}

fn emit(c: &Common, value: &Value, table: impl FnOnce(&mut dyn Write)) {
    let mut out = std::io::stdout().lock();
    if c.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        table(&mut out);
    }
}

/// Prints rows as aligned columns.
fn print_table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    );
    for r in rows {
        let _ = writeln!(out, "{}", line(r.clone()));
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A figure as its JSON shows it (`100.0`, not `100`).
fn figure(x: f64) -> String {
    text(&Value::from(x))
}

/// An optional value, `-` when absent.
fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn run_rows(runs: &[Run]) -> Vec<Vec<String>> {
    runs.iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.entity.clone(),
                r.mode.to_string(),
                r.status.as_str().to_string(),
                r.fetched.to_string(),
                r.changed.to_string(),
                r.api_calls.to_string(),
                or_dash(r.duration_ms),
            ]
        })
        .collect()
}

/// `--mode` of `tds sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncModeArg {
    /// Every record, whatever the cursor says.
    Full,
    /// What changed since the cursor.
    Incremental,
}

impl From<SyncModeArg> for SyncMode {
    fn from(m: SyncModeArg) -> SyncMode {
        match m {
            SyncModeArg::Full => SyncMode::Full,
            SyncModeArg::Incremental => SyncMode::Incremental,
        }
    }
}

/// `tds sync <entity|all> [--mode full|incremental] [--wait] [--org ID]`.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// Entity kind (item, contact, sales_order, ...) or `all`.
    #[arg(value_name = "ENTITY", value_parser = entity)]
    target: String,
    /// Full or incremental.
    #[arg(long, value_enum, default_value_t = SyncModeArg::Incremental)]
    mode: SyncModeArg,
    /// Follow the runs until they finish, then show them (exit 1 if one failed).
    #[arg(long)]
    wait: bool,
    /// One organisation [default: every configured one].
    #[arg(long, value_name = "ID")]
    org: Option<String>,
    #[command(flatten)]
    client: Client,
}

/// Progress of `tds sync --wait` on stderr: a bar redrawn in place on a terminal, else one plain
/// line each time another run finishes.
struct Progress {
    terminal: bool,
    last: Option<usize>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, done: usize, total: usize, fetched: i64) {
        if self.terminal {
            let width = 30;
            let filled = (done * width).checked_div(total).unwrap_or(width);
            eprint!(
                "\r[{}{}] {done}/{total} runs, {fetched} records   ",
                "#".repeat(filled),
                ".".repeat(width - filled),
            );
        } else if self.last != Some(done) {
            eprintln!("{done}/{total} runs finished, {fetched} records");
        }
        self.last = Some(done);
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

/// `tds sync`.
pub async fn sync(a: SyncArgs) -> Result<(), Exit> {
    let c = a.client.common().await?;
    let request = SyncRequest {
        org_id: a.org.clone(),
        entity: None,
        entities: Some(vec![a.target.clone()]),
        mode: a.mode.into(),
    };
    let started: Answer<SyncStarted> = post(&c, "/api/tds/sync", &request).await?;
    let ids = started.typed.run_ids.clone();
    let mode = started.typed.mode.as_str();
    if !a.wait {
        emit(&c, &started.raw, |out| {
            let _ = writeln!(out, "started {} run(s): {ids:?} ({mode}); follow with `tds sync ... --wait` or GET /api/tds/sync-runs", ids.len());
        });
        return Ok(());
    }
    // Progress until every run finished.
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut progress = Progress::new();
    let (mut runs, mut raw) = (Vec::new(), Vec::new());
    loop {
        runs.clear();
        raw.clear();
        for id in &ids {
            let run: Answer<Run> = get(&c, &format!("/api/tds/sync-runs/{id}")).await?;
            runs.push(run.typed);
            raw.push(run.raw);
        }
        let done = runs
            .iter()
            .filter(|r| r.status != RunStatus::Running)
            .count();
        if !c.json {
            let fetched: i64 = runs.iter().map(|r| r.fetched).sum();
            progress.show(done, ids.len(), fetched);
        }
        if done == ids.len() {
            break;
        }
        if Instant::now() > deadline {
            return Err(Exit(1, "gave up waiting after an hour".into()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !c.json {
        progress.finish();
    }
    let failed = runs
        .iter()
        .filter(|r| r.status == RunStatus::Failed)
        .count();
    emit(&c, &json!({"runs": raw}), |out| {
        print_table(
            out,
            &[
                "id",
                "entity",
                "mode",
                "status",
                "fetched",
                "changed",
                "api calls",
                "ms",
            ],
            &run_rows(&runs),
        )
    });
    if failed > 0 {
        return Err(Exit(1, format!("{failed} run(s) failed")));
    }
    Ok(())
}

/// `--mode` of `tds stock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StockModeArg {
    /// Items changed since the stock cursor.
    Incremental,
    /// Every item.
    Full,
    /// One warehouse (as --warehouse).
    Warehouse,
    /// The listed items (as --items).
    Items,
    /// Items below the threshold (as --low-stock).
    #[value(name = "low_stock")]
    LowStock,
}

impl From<StockModeArg> for StockMode {
    fn from(m: StockModeArg) -> StockMode {
        match m {
            StockModeArg::Incremental => StockMode::Incremental,
            StockModeArg::Full => StockMode::Full,
            StockModeArg::Warehouse => StockMode::Warehouse,
            StockModeArg::Items => StockMode::Items,
            StockModeArg::LowStock => StockMode::LowStock,
        }
    }
}

/// `tds stock [--mode M] [--warehouse ID] [--items a,b] [--low-stock --threshold N] [--org ID]`.
#[derive(Debug, Clone, clap::Args)]
pub struct StockArgs {
    /// What to poll (--warehouse, --items and --low-stock choose it too).
    #[arg(long, value_enum, default_value_t = StockModeArg::Incremental)]
    mode: StockModeArg,
    /// Poll one warehouse (location).
    #[arg(long, value_name = "ID")]
    warehouse: Option<String>,
    /// Poll these items (comma-separated ids).
    #[arg(long, value_name = "A,B")]
    items: Option<String>,
    /// Poll the items stored below the threshold.
    #[arg(long)]
    low_stock: bool,
    /// Low-stock threshold [default: the configured one].
    #[arg(long, value_name = "N", value_parser = number)]
    threshold: Option<f64>,
    /// One organisation [default: every configured one].
    #[arg(long, value_name = "ID")]
    org: Option<String>,
    #[command(flatten)]
    client: Client,
}

/// `tds stock`.
pub async fn stock(a: StockArgs) -> Result<(), Exit> {
    let c = a.client.common().await?;
    let mode = if a.low_stock {
        StockMode::LowStock
    } else if a.warehouse.is_some() {
        StockMode::Warehouse
    } else if a.items.is_some() {
        StockMode::Items
    } else {
        a.mode.into()
    };
    let request = StockRequest {
        mode,
        org_id: a.org.clone(),
        warehouse_id: a.warehouse.clone(),
        item_ids: a
            .items
            .iter()
            .flat_map(|items| items.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        threshold: a.threshold,
    };
    let answer: Answer<StockPolled> = post(&c, "/api/tds/stock/sync", &request).await?;
    let rows: Vec<Vec<String>> = answer
        .typed
        .reports
        .iter()
        .map(|r| {
            vec![
                r.org_id.clone(),
                r.run_id.to_string(),
                r.items_checked.to_string(),
                r.rows_changed.to_string(),
                r.rows_unchanged.to_string(),
                r.low_stock.to_string(),
                r.api_calls.to_string(),
            ]
        })
        .collect();
    emit(&c, &answer.raw, |out| {
        print_table(
            out,
            &[
                "org",
                "run",
                "items",
                "changed",
                "unchanged",
                "low",
                "api calls",
            ],
            &rows,
        )
    });
    Ok(())
}

/// `--entity` of `tds stats`: a statistics group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Group {
    /// Items.
    Items,
    /// Customers.
    Customers,
    /// Vendors.
    Vendors,
    /// Price lists.
    Pricelists,
    /// Stock, per warehouse.
    Stock,
    /// Item images.
    Images,
}

impl Group {
    fn as_str(self) -> &'static str {
        match self {
            Group::Items => "items",
            Group::Customers => "customers",
            Group::Vendors => "vendors",
            Group::Pricelists => "pricelists",
            Group::Stock => "stock",
            Group::Images => "images",
        }
    }
}

/// `tds stats [--entity GROUP] [--detailed] [--org ID]`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// One statistics group, both sides' figures.
    #[arg(long, value_enum, value_name = "GROUP")]
    entity: Option<Group>,
    /// Every group's figures of the latest comparison.
    #[arg(long)]
    detailed: bool,
    /// The organisation [default: the only configured one].
    #[arg(long, value_name = "ID")]
    org: Option<String>,
    #[command(flatten)]
    client: Client,
}

/// `tds stats`: exit 1 with a hint when no comparison has been made yet.
pub async fn stats(a: StatsArgs) -> Result<(), Exit> {
    stats_of_latest(a).await.map_err(|Exit(code, message)| {
        if message.starts_with("no comparison yet") {
            Exit(code, "no comparison yet: run `tds compare` first".into())
        } else {
            Exit(code, message)
        }
    })
}

async fn stats_of_latest(a: StatsArgs) -> Result<(), Exit> {
    let c = a.client.common().await?;
    let org = a
        .org
        .as_ref()
        .map(|o| format!("?org_id={o}"))
        .unwrap_or_default();
    if a.detailed {
        let report: Answer<ComparisonReport> =
            get(&c, &format!("/api/tds/statistics/compare{org}")).await?;
        emit(&c, &report.raw, |out| {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report.typed.statistics).unwrap_or_default()
            );
        });
        return Ok(());
    }
    if let Some(group) = a.entity {
        let answer: Answer<GroupStatistics> =
            get(&c, &format!("/api/tds/statistics/{}{org}", group.as_str())).await?;
        // The figures are free-form per group: key by key, as both sides give them.
        let rows: Vec<Vec<String>> = match &answer.typed.statistics {
            Some(s) => {
                let keys: BTreeMap<&String, &Value> =
                    s.zoho.as_object().into_iter().flatten().collect();
                keys.into_iter()
                    .map(|(k, zoho)| {
                        vec![
                            k.clone(),
                            text(zoho),
                            text(s.database.get(k).unwrap_or(&Value::Null)),
                        ]
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        emit(&c, &answer.raw, |out| {
            print_table(out, &["statistic", "zoho", "database"], &rows)
        });
        return Ok(());
    }
    let overview: Answer<StatisticsOverview> =
        get(&c, &format!("/api/tds/statistics/overview{org}")).await?;
    let o = &overview.typed;
    let rows: Vec<Vec<String>> = o
        .kinds
        .iter()
        .map(|k| {
            vec![
                k.kind.clone(),
                k.zoho_total.to_string(),
                k.local_total.to_string(),
                k.differences.to_string(),
            ]
        })
        .collect();
    emit(&c, &overview.raw, |out| {
        let _ = writeln!(
            out,
            "match {:.1} %  health {}  {}",
            o.match_pct,
            figure(o.health_score),
            o.severity.as_str()
        );
        print_table(out, &["kind", "zoho", "database", "differences"], &rows);
    });
    Ok(())
}

/// `tds compare [--entity E] [--sync [--threshold N]] [--dry-run] [--save FILE] [--org ID]`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// One entity kind [default: all].
    #[arg(long, value_name = "ENTITY", value_parser = entity)]
    entity: Option<String>,
    /// Heal the differences found (every one; see --threshold).
    #[arg(long)]
    sync: bool,
    /// Report what healing would do, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Heal only kinds with more than N differences.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = whole)]
    threshold: usize,
    /// Also write the report (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// One organisation [default: every configured one].
    #[arg(long, value_name = "ID")]
    org: Option<String>,
    #[command(flatten)]
    client: Client,
}

/// `tds compare`. An operator's `--sync` heals every difference (threshold 0), unlike the schedule,
/// which leaves small drift to the next sync; `--threshold N` heals only kinds with more than N
/// differences.
pub async fn compare(a: CompareArgs) -> Result<(), Exit> {
    let c = a.client.common().await?;
    let request = CompareRequest {
        org_id: a.org.clone(),
        entities: vec![a.entity.clone().unwrap_or_else(|| "all".into())],
        heal: a.sync || a.dry_run,
        dry_run: a.dry_run,
        thresholds: EntityKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), a.threshold))
            .collect(),
        low_stock_threshold: None,
        stock_sample_cycles: None,
    };
    let answer: Answer<Compared> =
        post(&c, "/api/tds/statistics/sync-differences", &request).await?;
    if let Some(path) = &a.save {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&answer.raw).unwrap_or_default(),
        )
        .map_err(|e| Exit(1, format!("cannot write {}: {e}", path.display())))?;
    }
    let reports = &answer.typed.reports;
    let mut rows = Vec::new();
    for r in reports {
        for k in &r.kinds {
            rows.push(vec![
                r.org_id.clone(),
                k.kind.clone(),
                k.missing_locally.len().to_string(),
                k.deleted_in_zoho.len().to_string(),
                k.stale.len().to_string(),
                k.mismatched.len().to_string(),
            ]);
        }
    }
    emit(&c, &answer.raw, |out| {
        for r in reports {
            let _ = writeln!(
                out,
                "{}: match {:.1} % ({}){}",
                r.org_id,
                r.match_pct,
                r.severity.as_str(),
                if r.dry_run { ", dry run" } else { "" }
            );
        }
        print_table(
            out,
            &[
                "org",
                "kind",
                "missing",
                "deleted in zoho",
                "stale",
                "mismatched",
            ],
            &rows,
        );
        if let Some(path) = &a.save {
            let _ = writeln!(out, "report saved to {}", path.display());
        }
    });
    Ok(())
}

/// `tds health`.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    #[command(flatten)]
    client: Client,
}

/// `tds health`: exit 0 healthy, 3 degraded, 1 unhealthy.
pub async fn health(a: HealthArgs) -> Result<(), Exit> {
    let c = a.client.common().await?;
    let h: Answer<Health> = get(&c, "/api/tds/health").await?;
    emit(&c, &h.raw, |out| {
        let _ = writeln!(out, "{}", h.typed.status.as_str());
        for r in &h.typed.reasons {
            let _ = writeln!(out, "  - {r}");
        }
    });
    match h.typed.status {
        HealthLevel::Healthy => Ok(()),
        HealthLevel::Degraded => Err(Exit(3, "degraded".into())),
        HealthLevel::Unhealthy => Err(Exit(1, "unhealthy".into())),
    }
}

/// `tds deadletter list|retry`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeadletterArgs {
    #[command(subcommand)]
    action: DeadletterAction,
}

/// What `tds deadletter` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DeadletterAction {
    /// Shows the oldest dead letters and how many there are.
    List {
        /// How many to show.
        #[arg(long, value_name = "N", default_value_t = 10)]
        limit: u32,
        #[command(flatten)]
        client: Client,
    },
    /// Moves dead letters back to the inbox.
    Retry {
        /// How many to move.
        #[arg(long, value_name = "N", default_value_t = 100)]
        max: usize,
        #[command(flatten)]
        client: Client,
    },
}

/// `tds deadletter list [--limit N]` and `tds deadletter retry [--max N]`.
pub async fn deadletter(a: DeadletterArgs) -> Result<(), Exit> {
    match a.action {
        DeadletterAction::List { limit, client } => {
            let c = client.common().await?;
            let answer: Answer<DeadLetters> =
                get(&c, &format!("/api/tds/deadletter?limit={limit}")).await?;
            let rows: Vec<Vec<String>> = answer
                .typed
                .messages
                .iter()
                .map(|m| {
                    vec![
                        m.message_id.clone(),
                        or_dash(m.failed_at.as_ref()),
                        or_dash(m.reason.as_ref()),
                    ]
                })
                .collect();
            emit(&c, &answer.raw, |out| {
                let _ = writeln!(
                    out,
                    "{} message(s) in the dead-letter queue",
                    answer.typed.depth
                );
                print_table(out, &["message", "failed at", "reason"], &rows);
            });
            Ok(())
        }
        DeadletterAction::Retry { max, client } => {
            let c = client.common().await?;
            let request = RetryRequest {
                max: Some(max),
                message_ids: None,
            };
            let answer: Answer<Retried> = post(&c, "/api/tds/deadletter/retry", &request).await?;
            emit(&c, &answer.raw, |out| {
                let _ = writeln!(
                    out,
                    "moved {} message(s) back to the inbox",
                    answer.typed.moved
                );
            });
            Ok(())
        }
    }
}

/// `tds migrate [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// `tds migrate`: applies the migrations to `DATABASE_URL`.
pub async fn migrate(a: MigrateArgs) -> Result<(), Exit> {
    let config = tds_store::StoreConfig::from_env().map_err(|e| usage(e.to_string()))?;
    let shown = config.redacted_url();
    let store =
        tds_store::Store::connect_lazy(&config).map_err(|e| Exit(4, format!("{shown}: {e}")))?;
    store
        .ping()
        .await
        .map_err(|e| Exit(4, format!("cannot reach the database at {shown}: {e}")))?;
    let applied_before = store.applied_migrations().await.unwrap_or(0);
    store.migrate().await.map_err(|e| {
        let code = if e.is_retriable() { 4 } else { 1 };
        Exit(code, format!("cannot migrate the database at {shown}: {e}"))
    })?;
    let applied_after = store.applied_migrations().await.unwrap_or(0);
    let value = json!({"database": shown, "applied": applied_after - applied_before, "total": applied_after});
    let c = Common {
        api: String::new(),
        auth: Auth::Bearer(String::new()),
        json: a.json,
    };
    emit(&c, &value, |out| {
        let _ = writeln!(
            out,
            "{shown}: {} migration(s) applied, {} in total",
            applied_after - applied_before,
            applied_after
        );
    });
    Ok(())
}
