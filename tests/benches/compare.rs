//! Benchmark of the comparison engine.
//!
//! Part `diff`: the in-memory id-by-id diff of 100,000 items (1 % each missing locally, deleted in Zoho,
//! stale), five runs; time per run and the process's peak resident memory (inputs included).
//! Targets: < 1 s, < 200 MB.
//!
//! Part `e2e`: a full comparison (every kind, stock by totals plus the rotating `/itemdetails` sample,
//! price-book rates, images, statistics of both sides, report recorded) of a demo organisation already synced into PostgreSQL, against the
//! simulator with its per-minute limit on. Comparisons may use 80 % of the budget, so N calls cannot
//! finish sooner than (ceil(N / (0.8 × L)) − 1) × W.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p tds-tests --bench compare`
//! Options (env): `TDS_BENCH_PART` (all | diff | e2e), `TDS_BENCH_ITEMS` (10000), `TDS_BENCH_WINDOW_MS`
//! (60000), `TDS_BENCH_LIMIT` (100), `TDS_BENCH_PROFILE` (a `tds_zoho_sim::Profile::all` name:
//! documented | filter-ignored-warehouses | filter-ignored-locations; default documented).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tds_core::ports::Queue;
use tds_local::{LocalEventBus, LocalQueue};
use tds_store::{RowVersion, Store};
use tds_sync::compare::{diff, CompareRequest, ZohoKey};
use tds_sync::{App, Incoming, Settings, StartSync, SyncJob, SyncMode};
use tds_tests::BenchDatabase;
use tds_zoho_sim::{ClientCredentials, DemoSpec, SimConfig, Simulator};

fn diff_part() {
    let n = 100_000usize;
    let base: DateTime<Utc> = DateTime::from_timestamp(1_760_000_000, 0).unwrap();
    let id = |i: usize| format!("{}", 4_815_000_010_000_000u64 + i as u64);
    let zoho: Vec<ZohoKey> = (0..n)
        .filter(|i| i % 100 != 1) // 1 % deleted in Zoho
        .map(|i| ZohoKey {
            id: id(i),
            modified: Some(
                base + chrono::Duration::seconds(if i % 100 == 2 { 60 } else { 0 } + i as i64),
            ),
        })
        .collect();
    // Zoho lists by creation time, not by id: shuffle so the diff gets no sorted input for free.
    let mut zoho = zoho;
    tds_zoho_sim::Rng::new(3).shuffle(&mut zoho);
    let local: Vec<RowVersion> = (0..n)
        .filter(|i| i % 100 != 0) // 1 % missing locally
        .map(|i| RowVersion {
            zoho_id: id(i),
            last_modified_time: base + chrono::Duration::seconds(i as i64),
            deleted_at: None,
        })
        .collect();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let started = Instant::now();
        let d = diff("item", &zoho, &local);
        times.push(started.elapsed());
        last = Some(d);
    }
    let d = last.unwrap();
    assert_eq!(d.missing_locally.len(), n / 100);
    assert_eq!(d.deleted_in_zoho.len(), n / 100);
    assert_eq!(d.stale.len(), n / 100);
    times.sort();
    println!(
        "diff of {n} items: min={:.1} ms median={:.1} ms max={:.1} ms; peak RSS {:.1} MB; differences={}",
        times[0].as_secs_f64() * 1000.0,
        times[2].as_secs_f64() * 1000.0,
        times[4].as_secs_f64() * 1000.0,
        tds_tests::peak_rss_mb(),
        d.differences()
    );
}

async fn e2e_part() {
    let items = tds_tests::env_or::<u64>("TDS_BENCH_ITEMS", 10_000) as usize;
    let window = Duration::from_millis(tds_tests::env_or::<u64>("TDS_BENCH_WINDOW_MS", 60_000));
    let limit = tds_tests::env_or::<u64>("TDS_BENCH_LIMIT", 100) as u32;
    let db = BenchDatabase::create(6).await;
    let spec = DemoSpec::with_items(items);
    let org_id = spec.org_id.clone();
    let profile_name = std::env::var("TDS_BENCH_PROFILE").unwrap_or_else(|_| "documented".into());
    let profile = tds_zoho_sim::Profile::all()
        .into_iter()
        .find(|p| p.name == profile_name)
        .unwrap_or_else(|| panic!("TDS_BENCH_PROFILE: no profile {profile_name}"));
    // First load without limits (not measured).
    let sim = Simulator::new(
        SimConfig {
            per_minute_limit: 1_000_000,
            ..SimConfig::default()
        },
        vec![tds_zoho_sim::generate(&spec).with_profile(profile)],
        ClientCredentials::default(),
    )
    .serve_local()
    .await
    .unwrap();
    let zoho = Arc::new(tds_tests::sim_client(
        &org_id,
        &sim.base_url,
        db.pool.clone(),
        tds_tests::test_client_settings(1_000_000),
    ));
    let store = Store::from_pool(db.pool.clone());
    let blob_dir = std::env::temp_dir().join(format!("tds-bench-images-{}", std::process::id()));
    let inbox = LocalQueue::new("inbox", Duration::from_secs(600));
    let app = App::new(
        store.clone(),
        zoho,
        LocalEventBus::new(),
        Settings::default(),
    )
    .with_inbox(inbox.clone())
    .with_dead_letters(LocalQueue::new("dlq", Duration::from_secs(60)))
    .with_blobs(Arc::new(tds_local::DirBlobStore::new(&blob_dir)));
    let processor = app.processor().unwrap();
    let comparator = app.comparator().unwrap();
    let start = SyncJob::Start(StartSync {
        org_id: Some(org_id.clone()),
        entities: vec!["all".into()],
        mode: SyncMode::Full,
        trigger: tds_core::Trigger::Test,
    });
    inbox.send(start.to_body()).await.unwrap();
    loop {
        let batch = inbox.receive(10).await.unwrap();
        if batch.is_empty() {
            break;
        }
        let incoming = batch.iter().map(Incoming::from).collect();
        processor.process(incoming).await;
        for m in &batch {
            inbox.delete(&m.receipt_handle).await.unwrap();
        }
    }

    // Now with Zoho's limit on, for the simulator and the shared budget row alike.
    sim.sim.configure(|c| {
        c.per_minute_limit = limit;
        c.window = window;
    });
    sqlx::query("UPDATE tds_rate_budget SET per_minute_limit = $1, window_ms = $2, grants = '{}'")
        .bind(limit as i32)
        .bind((window + window / 60).as_millis() as i32)
        .execute(&db.pool)
        .await
        .unwrap();
    sim.sim.reset_stats();
    sim.sim.reset_limits();
    let started = Instant::now();
    let report = comparator
        .compare(&CompareRequest::parse(&serde_json::json!({"heal": false})).unwrap())
        .await
        .unwrap()
        .remove(0);
    let wall = started.elapsed();
    let stats = sim.sim.stats();
    let org = &stats.orgs[&org_id];
    let share = (f64::from(limit) * 0.8).floor() as u64;
    let bound = window * u32::try_from(org.calls.div_ceil(share).saturating_sub(1)).unwrap();
    println!(
        "comparison of {items} items, profile {profile_name} (every kind, stock per location, rates, images, statistics): api calls={} (itemdetails {}) (report says {}) rate_limited={} match={:.1} % wall={:.2}s bound={:.2}s ratio={} (limit {limit} per {window:?}, comparisons 80 %)",
        org.calls,
        org.by_endpoint.get("GET /inventory/v1/itemdetails").copied().unwrap_or(0),
        report.api_calls,
        org.rate_limited,
        report.match_pct,
        wall.as_secs_f64(),
        bound.as_secs_f64(),
        if bound.is_zero() {
            "n/a (the calls fit in the first window)".to_string()
        } else {
            format!("{:.2}", wall.as_secs_f64() / bound.as_secs_f64())
        }
    );
    db.drop_now().await;
    let _ = std::fs::remove_dir_all(&blob_dir);
}

#[tokio::main]
async fn main() {
    let part = std::env::var("TDS_BENCH_PART").unwrap_or_else(|_| "all".into());
    if part == "all" || part == "diff" {
        diff_part();
    }
    if part == "all" || part == "e2e" {
        e2e_part().await;
    }
}
