//! Benchmark: a scheduled full sync (every entity kind, fanned out as jobs through an inbox queue twin,
//! written to PostgreSQL, item images downloaded into a blob directory as the deployed stack does with
//! its image bucket) of the 10,000-item demo organisation, against the simulator with its
//! per-minute limit on (the window may be scaled down so a run takes minutes, not a quarter hour).
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p tds-tests --bench full_sync`
//! Options (env): `TDS_BENCH_ITEMS` (10000), `TDS_BENCH_WINDOW_MS` (10000; Zoho's real minute is 60000),
//! `TDS_BENCH_LIMIT` (100 requests per window), `TDS_BENCH_ENTITIES` (`all`, or a comma list such as
//! `item`), `TDS_BENCH_CONSUMERS` (2 concurrent entity-processor instances).
//!
//! The bound: a sliding window of L requests per W lets N requests finish no sooner than
//! (ceil(N / L) - 1) × W after the first. The figure is wall time / bound (target ≤ 1.2).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tds_core::ports::Queue;
use tds_local::{DirBlobStore, LocalEventBus, LocalQueue};
use tds_store::Store;
use tds_sync::{App, Disposition, Incoming, Processor, Settings, StartSync, SyncJob, SyncMode};
use tds_tests::{env_or, BenchDatabase};

async fn consume(processor: Arc<Processor>, inbox: Arc<LocalQueue>) {
    loop {
        let batch = inbox.receive(10).await.unwrap();
        if batch.is_empty() {
            let stats = inbox.stats().await.unwrap();
            if stats.visible == 0 && stats.in_flight == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let incoming = batch.iter().map(Incoming::from).collect();
        let results = processor.process(incoming).await;
        for (m, (_, d)) in batch.iter().zip(results) {
            match d {
                Disposition::Retry(reason) => {
                    eprintln!("retry: {reason}");
                    inbox
                        .release(&m.receipt_handle, Duration::ZERO)
                        .await
                        .unwrap();
                }
                _ => inbox.delete(&m.receipt_handle).await.unwrap(),
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let items = env_or::<u64>("TDS_BENCH_ITEMS", 10_000) as usize;
    let window = Duration::from_millis(env_or::<u64>("TDS_BENCH_WINDOW_MS", 10_000));
    let limit = env_or::<u64>("TDS_BENCH_LIMIT", 100) as u32;
    let consumers = env_or::<u64>("TDS_BENCH_CONSUMERS", 2) as usize;
    let entities: Vec<String> = std::env::var("TDS_BENCH_ENTITIES")
        .unwrap_or_else(|_| "all".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let db = BenchDatabase::create(8).await;

    let (sim, zoho, org_id) =
        tds_tests::paced_sim_client(items, limit, window, db.pool.clone()).await;
    let zoho = Arc::new(zoho);
    let store = Store::from_pool(db.pool.clone());
    let inbox = LocalQueue::new("inbox", Duration::from_secs(600));
    let dlq = LocalQueue::new("dlq", Duration::from_secs(600));
    // As deployed with an image bucket: item runs are followed by an image run.
    let blob_dir = std::env::temp_dir().join(format!("tds-bench-full-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&blob_dir);
    let processor = Arc::new(
        App::new(
            store.clone(),
            zoho,
            LocalEventBus::new(),
            Settings::default(),
        )
        .with_inbox(inbox.clone())
        .with_dead_letters(dlq.clone())
        .with_blobs(Arc::new(DirBlobStore::new(&blob_dir)))
        .processor()
        .unwrap(),
    );

    let started = Instant::now();
    let start = SyncJob::Start(StartSync {
        org_id: Some(org_id.clone()),
        entities: entities.clone(),
        mode: SyncMode::Full,
        trigger: tds_core::Trigger::Test,
    });
    inbox.send(start.to_body()).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..consumers {
        let (p, q) = (processor.clone(), inbox.clone());
        tasks.spawn(async move {
            // Stagger the consumers so the first receives the start message alone.
            tokio::time::sleep(Duration::from_millis(50 * n as u64)).await;
            consume(p, q).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let wall = started.elapsed();

    let runs = store.recent_runs(Some(&org_id), 100).await.unwrap();
    assert!(
        runs.iter()
            .all(|r| r.status == tds_store::RunStatus::Completed),
        "{runs:?}"
    );
    assert!(
        dlq.peek_all().is_empty(),
        "dead letters: {:?}",
        dlq.peek_all()
    );
    let records: i64 = runs.iter().map(|r| r.counts.fetched).sum();
    let stats = sim.sim.stats();
    let org = &stats.orgs[&org_id];
    let calls = org.calls;
    let windows_needed = calls.div_ceil(u64::from(limit)).saturating_sub(1);
    let bound = window * u32::try_from(windows_needed).unwrap();
    println!(
        "items={items} entities={entities:?} limit={limit}/window window={window:?} consumers={consumers} runs={}",
        runs.len()
    );
    for r in runs.iter().rev() {
        println!(
            "  {:<16} fetched={:>6} changed={:>6} api_calls={:>5} pages={:>3}",
            r.entity, r.counts.fetched, r.counts.changed, r.counts.api_calls, r.counts.pages
        );
    }
    println!(
        "api calls={calls} rate_limited={} records={records} calls per 1000 records={:.1}",
        org.rate_limited,
        calls as f64 * 1000.0 / records.max(1) as f64
    );
    println!(
        "wall={:.2}s bound={:.2}s ratio={} items/min at Zoho's 60 s window={:.0}",
        wall.as_secs_f64(),
        bound.as_secs_f64(),
        tds_tests::bound_ratio(wall, bound),
        items as f64 / (wall.as_secs_f64() * 60_000.0 / window.as_millis() as f64 / 60.0)
    );
    let images: i64 = runs
        .iter()
        .filter(|r| r.entity == "item_image")
        .map(|r| r.counts.changed)
        .sum();
    println!("images downloaded={images} (one Zoho call each)");
    let _ = std::fs::remove_dir_all(&blob_dir);
    db.drop_now().await;
}
