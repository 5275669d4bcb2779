//! `tds up`: the local stack in one process (see the crate docs). Wiring only: every piece of logic is
//! the production core behind the ports the Lambdas use, with the local twins plugged in.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tds_admin::Admin;
use tds_core::ingest::{SecretWebhookAuth, WebhookIngest};
use tds_core::ports::Queue;
use tds_local::{DirBlobStore, LocalEventBus, MemorySecrets};
use tds_store::{PgQueue, PgRedrive};
use tds_store::{Store, StoreConfig};
use tds_sync::compare::CompareRequest;
use tds_sync::stock::{StockPoller, StockRequest};
use tds_sync::{
    App, Comparator, Disposition, Incoming, Processor, Settings, StartSync, SyncJob, SyncMode,
};
use tds_zoho::{ClientSettings, StaticCredentials, ZohoClient};
use tds_zoho_sim::{DemoSpec, RunningSimulator, Simulator, WebhookConfig};

/// Options of `tds up`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Port of the webhooks and the admin API (0 picks a free one).
    #[arg(long, value_name = "P", default_value_t = 8080)]
    port: u16,
    /// Items of the embedded simulator's demo organisation.
    #[arg(long, value_name = "N", default_value_t = 3000)]
    items: usize,
    /// Runs the schedules this many times as often (60 runs an hour's schedule every minute).
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = positive_number)]
    time_scale: f64,
    /// Where the private PostgreSQL cluster, images and local state live.
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    /// Start without the initial full sync.
    #[arg(long = "no-initial-sync", action = clap::ArgAction::SetFalse)]
    initial_sync: bool,
    /// Zoho calls per minute the embedded simulator allows.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    zoho_per_minute: u32,
    /// How the embedded simulator behaves where Zoho's documentation is silent.
    #[arg(long, value_name = "PROFILE", default_value = "documented", value_parser = profile,
          help = format!("How the embedded simulator behaves where Zoho's documentation is silent: {}",
                         profile_names().join(", ")))]
    zoho_profile: tds_zoho_sim::Profile,
}

/// `~/.cache/tds/local`, or `.tds-local` without a home directory.
fn default_data_dir() -> PathBuf {
    std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache/tds/local"))
        .unwrap_or_else(|_| PathBuf::from(".tds-local"))
}

/// A finite number above 0 (`--time-scale`).
fn positive_number(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| *x > 0.0 && x.is_finite())
        .ok_or_else(|| {
            "must be a positive number (60 runs an hour's schedule every minute)".to_string()
        })
}

fn profile_names() -> Vec<String> {
    tds_zoho_sim::Profile::all()
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// A simulator profile by name (`--zoho-profile`).
fn profile(name: &str) -> Result<tds_zoho_sim::Profile, String> {
    tds_zoho_sim::Profile::all()
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("no profile {name:?}; valid: {}", profile_names().join(", ")))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut buf);
    }
    if buf.iter().all(|b| *b == 0) {
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        buf = seed.into_bytes();
        buf.truncate(bytes);
    }
    hex::encode(buf)
}

/// The database: `DATABASE_URL`, or `tds_local` in a private cluster under the data directory.
async fn database(
    data_dir: &std::path::Path,
) -> Result<(Store, String, Option<crate::pg::Cluster>), String> {
    let mut cluster = None;
    let url = match std::env::var("DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            let c = crate::pg::Cluster::start(data_dir)?;
            let admin_url = c.admin_url.clone();
            cluster = Some(c);
            tds_store::ensure_database(&admin_url, "tds_local")
                .await
                .map_err(|e| format!("cannot create database tds_local at {admin_url}: {e}"))?;
            admin_url.replacen("/postgres?", "/tds_local?", 1)
        }
    };
    let config = StoreConfig::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "TDS_DB_MAX_CONNECTIONS" => Some(std::env::var(name).unwrap_or_else(|_| "8".into())),
        other => std::env::var(other).ok(),
    })
    .map_err(|e| e.to_string())?;
    let shown = config.redacted_url();
    let store = Store::connect_lazy(&config).map_err(|e| e.to_string())?;
    store
        .migrate()
        .await
        .map_err(|e| format!("cannot migrate the database at {shown}: {e}"))?;
    Ok((store, shown, cluster))
}

/// Zoho: the configured credentials, or the embedded simulator (its webhooks signed and sent to `hook_url`).
async fn zoho(
    items: usize,
    per_minute: u32,
    profile: tds_zoho_sim::Profile,
    hook_base: &str,
) -> Result<(String, Option<RunningSimulator>, String), String> {
    if let Ok(doc) = std::env::var("TDS_ZOHO_CREDENTIALS") {
        return Ok((
            doc,
            None,
            "the organisations in TDS_ZOHO_CREDENTIALS".into(),
        ));
    }
    if let Ok(path) = std::env::var("TDS_ZOHO_CREDENTIALS_FILE") {
        let doc = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read TDS_ZOHO_CREDENTIALS_FILE {path}: {e}"))?;
        return Ok((doc, None, format!("the organisations in {path}")));
    }
    let spec = DemoSpec::with_items(items);
    let sim = Simulator::demo(&spec)
        .serve_local()
        .await
        .map_err(|e| format!("cannot start the embedded Zoho simulator: {e}"))?;
    sim.sim.configure(|c| c.per_minute_limit = per_minute);
    sim.sim.set_profile(&spec.org_id, profile);
    let client = tds_zoho_sim::ClientCredentials::default();
    let (secret, signing) = (random_hex(16), random_hex(16));
    sim.sim.configure_webhooks(Some(WebhookConfig {
        url: format!("{hook_base}/{}", spec.org_id),
        header_secret: Some(("X-TDS-Webhook-Secret".into(), secret.clone())),
        signing_secret: Some(signing.clone()),
        include_action: true,
        ..WebhookConfig::default()
    }));
    let doc = json!({"organizations": [{
        "organization_id": spec.org_id, "client_id": client.client_id, "client_secret": client.client_secret,
        "refresh_token": client.refresh_token, "accounts_server": sim.base_url, "api_domain": sim.base_url,
        "webhook": {"header": "X-TDS-Webhook-Secret", "secret": secret, "signing_secret": signing}
    }]})
    .to_string();
    let what = format!(
        "embedded simulator at {} (organisation {}, {items} items; control API {}/__sim/stats)",
        sim.base_url, spec.org_id, sim.base_url
    );
    Ok((doc, Some(sim), what))
}

/// entity-processor's loop over the in-process inbox.
/// Largest request body the local stack reads (a webhook is at most 200 KiB).
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Requests served at once; more are answered 503 at once.
const MAX_IN_FLIGHT: usize = 256;
/// Longest a request (its body included) may take.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Serves `request` within [`REQUEST_DEADLINE`] if one of the in-flight slots is free.
async fn limited(
    slots: Arc<tokio::sync::Semaphore>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Ok(_slot) = slots.try_acquire() else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": "too many requests in flight: retry later"})),
        )
            .into_response();
    };
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            axum::http::StatusCode::REQUEST_TIMEOUT,
            axum::Json(serde_json::json!({"error": "the request took too long (body included)"})),
        )
            .into_response(),
    }
}

async fn worker(processor: Arc<Processor>, inbox: Arc<PgQueue>) {
    loop {
        let batch = match inbox.receive(10).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "inbox receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let incoming = batch.iter().map(Incoming::from).collect();
        for (m, (_, d)) in batch.iter().zip(processor.process(incoming).await) {
            match d {
                // Redelivered after the visibility timeout; dead-lettered after five receives.
                Disposition::Retry(reason) => tracing::warn!(%reason, "message will be retried"),
                _ => {
                    if let Err(e) = inbox.delete(&m.receipt_handle).await {
                        tracing::warn!(error = %e, "delete failed");
                    }
                }
            }
        }
    }
}

/// What a schedule does.
enum Task {
    Sync(SyncMode),
    Stock(&'static str),
    Compare(bool),
}

/// Runs `task` every `every` (the template's default interval divided by the time scale).
fn schedule(
    name: &'static str,
    every: Duration,
    task: Task,
    comparator: Arc<Comparator>,
    poller: Arc<StockPoller>,
    inbox: Arc<PgQueue>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            tracing::info!(schedule = name, "schedule fired");
            let outcome = match &task {
                Task::Sync(mode) => {
                    let start = SyncJob::Start(StartSync {
                        org_id: None,
                        entities: vec!["all".into()],
                        mode: *mode,
                        trigger: tds_core::Trigger::Schedule,
                    });
                    inbox
                        .send(start.to_body())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                Task::Stock(mode) => match StockRequest::parse(&json!({"mode": mode})) {
                    Ok(r) => poller.poll(&r).await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                },
                Task::Compare(heal) => match CompareRequest::parse(&json!({"heal": heal})) {
                    Ok(r) => comparator
                        .compare(&r)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = outcome {
                tracing::error!(schedule = name, error = %e, "scheduled task failed");
            }
        }
    });
}

/// Runs the local stack until Ctrl-C.
pub async fn run(o: Options) -> Result<(), String> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    // Settings first: a mistake is reported before anything starts.
    let token = match std::env::var("TDS_ADMIN_TOKEN") {
        Ok(t) if t.len() >= 16 => t,
        Ok(t) if !t.is_empty() => {
            return Err(format!(
                "TDS_ADMIN_TOKEN is {} characters; it must have at least 16 (unset it to have one generated)",
                t.len()
            ))
        }
        _ => random_hex(24),
    };
    let app_settings = Settings::from_env()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", o.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{} ({e}); pass --port", o.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");

    let (store, database_shown, cluster) = database(&o.data_dir).await?;
    let database_shown = match &cluster {
        Some(c) => format!("{database_shown} (private cluster in {})", c.dir.display()),
        None => database_shown,
    };
    let (doc, sim, zoho_what) = zoho(
        o.items,
        o.zoho_per_minute,
        o.zoho_profile.clone(),
        &format!("{base}/webhooks/zoho"),
    )
    .await?;
    let credentials =
        StaticCredentials::from_json(&doc, app_settings.data_centre).map_err(|e| e.to_string())?;
    let orgs = credentials.organizations().to_vec();
    let mut settings = ClientSettings::default();
    settings.budget.per_minute_limit = o.zoho_per_minute;
    let zoho = Arc::new(
        ZohoClient::new(orgs, Arc::new(credentials), store.pool().clone(), settings)
            .map_err(|e| e.to_string())?,
    );
    // Rows of organisations from an earlier run keep their limit otherwise: this run's is in force.
    if let Err(e) = zoho.budget().enforce_limit_everywhere().await {
        tracing::warn!(error = %e, "the Zoho budget limit was not applied to every organisation");
    }

    // The inbox lives in PostgreSQL: a webhook answered 202 is in a committed row, so it survives
    // the process being killed, and the next start delivers it (as SQS would).
    let dlq = PgQueue::new(store.clone(), "tds-inbox-dlq", Duration::from_secs(30));
    let inbox = Arc::new(
        PgQueue::new(store.clone(), "tds-inbox", Duration::from_secs(60)).with_dead_letter(&dlq, 5),
    );
    let dlq = Arc::new(dlq);
    // Every event also goes to <data-dir>/events.jsonl, so what the stack published can be read
    // (and counted) after it stopped.
    std::fs::create_dir_all(&o.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", o.data_dir.display()))?;
    let event_log = o.data_dir.join("events.jsonl");
    let events = LocalEventBus::with_log(&event_log)
        .map_err(|e| format!("cannot open the event log {}: {e}", event_log.display()))?;
    let blob_dir = o.data_dir.join("images");
    std::fs::create_dir_all(&blob_dir)
        .map_err(|e| format!("cannot create {}: {e}", blob_dir.display()))?;
    let secrets = Arc::new(MemorySecrets::new([("zoho".to_string(), doc)]));
    let app = App::new(store.clone(), zoho.clone(), events.clone(), app_settings)
        .with_inbox(inbox.clone())
        .with_dead_letters(dlq.clone())
        .with_blobs(Arc::new(DirBlobStore::new(&blob_dir)));
    let processor = Arc::new(app.processor().map_err(|e| e.to_string())?);
    let comparator = Arc::new(app.comparator().map_err(|e| e.to_string())?);
    let poller = Arc::new(app.poller());
    let admin = Arc::new(Admin {
        store: store.clone(),
        runner: processor.runner().clone(),
        comparator: (*comparator).clone(),
        poller: (*poller).clone(),
        inbox: inbox.clone(),
        dead_letters: dlq.clone(),
        redrive: Arc::new(PgRedrive {
            source: (*inbox).clone(),
            dead_letter: (*dlq).clone(),
        }),
        tokens: vec![token.clone()],
        // Locally the dashboard signs in with the admin token.
        dashboard: Default::default(),
    });
    let ingest = Arc::new(WebhookIngest::new(
        inbox.clone(),
        Arc::new(SecretWebhookAuth::new(secrets, "zoho")),
    ));
    // Both routers as the Lambda functions serve them, mounted directly, behind the limits API
    // Gateway would apply: a body size limit, a deadline per request (a slow body cannot hold a
    // connection for ever) and a cap on requests in flight.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let app = webhook_ingest::routes(ingest)
        .merge(tds_admin::router(admin))
        .layer(axum::middleware::from_fn(move |request, next| {
            limited(in_flight.clone(), request, next)
        }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES));
    tokio::spawn(async move {
        // A header-read timeout (a slow or idle client is cut off), then the limits above.
        tds_zoho_sim::http::serve(listener, app, tds_zoho_sim::http::HEADER_READ_TIMEOUT).await;
    });
    tokio::spawn(worker(processor.clone(), inbox.clone()));

    let scale = o.time_scale;
    let every = |secs: f64| Duration::from_secs_f64((secs / scale).max(1.0));
    let schedules: [(&str, f64, Task); 6] = [
        (
            "incremental sync (template: rate(1 hour))",
            3600.0,
            Task::Sync(SyncMode::Incremental),
        ),
        (
            "full sync (template: nightly)",
            86_400.0,
            Task::Sync(SyncMode::Full),
        ),
        (
            "stock poll (template: rate(15 minutes))",
            900.0,
            Task::Stock("incremental"),
        ),
        (
            "full stock poll (template: nightly)",
            86_400.0,
            Task::Stock("full"),
        ),
        (
            "compare and heal (template: rate(6 hours))",
            21_600.0,
            Task::Compare(true),
        ),
        (
            "statistics snapshot (template: daily)",
            86_400.0,
            Task::Compare(false),
        ),
    ];
    let mut lines = Vec::new();
    for (name, secs, task) in schedules {
        lines.push(format!("    {name}: every {:?}", every(secs)));
        schedule(
            name,
            every(secs),
            task,
            comparator.clone(),
            poller.clone(),
            inbox.clone(),
        );
    }
    let resumed = processor
        .runner()
        .resume_pending()
        .await
        .map_err(|e| e.to_string())?;
    if o.initial_sync {
        let start = SyncJob::Start(StartSync {
            org_id: None,
            entities: vec!["all".into()],
            mode: SyncMode::Full,
            trigger: tds_core::Trigger::TdsUp,
        });
        inbox
            .send(start.to_body())
            .await
            .map_err(|e| e.to_string())?;
    }

    let org = zoho.org_ids().first().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "TDS is up.");
    let _ = writeln!(
        out,
        "  dashboard:  {base}/dashboard/ (sign in with the token)"
    );
    let _ = writeln!(out, "  admin API:  {base}/api/tds/health");
    let _ = writeln!(out, "  token:      {token}");
    let _ = writeln!(
        out,
        "  try:        curl -H 'Authorization: Bearer {token}' {base}/api/tds/status"
    );
    let _ = writeln!(
        out,
        "  webhooks:   {base}/webhooks/zoho/{org}[/created|/edited|/deleted]"
    );
    let _ = writeln!(out, "  zoho:       {zoho_what}");
    let _ = writeln!(out, "  database:   {database_shown}");
    let _ = writeln!(out, "  images:     {}", blob_dir.display());
    let _ = writeln!(
        out,
        "  initial:    {}",
        if o.initial_sync {
            "full sync of every kind started (GET /api/tds/sync-runs)"
        } else {
            "none (--no-initial-sync)"
        }
    );
    if resumed > 0 {
        let _ = writeln!(
            out,
            "  resumed:    {resumed} pending job(s) of unfinished runs"
        );
    }
    let _ = writeln!(out, "  schedules (time scale {scale}):");
    for l in &lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(out, "Ctrl-C stops it.");
    let _ = out.flush();
    drop(out);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot wait for SIGTERM: {e}"))?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?,
        _ = term.recv() => {}
    }
    drop(sim);
    store.pool().close().await;
    if let Some(c) = cluster {
        c.stop();
    }
    let _ = writeln!(std::io::stdout(), "TDS stopped.");
    Ok(())
}
