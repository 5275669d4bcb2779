//! Benchmark: full listing plus bulk details of a 10,000-item organisation through the Zoho client,
//! against the simulator with its per-minute limit on (the window scaled down so a run takes seconds).
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p tds-tests --bench zoho_listing`
//! Options (env): `TDS_BENCH_ITEMS` (10000), `TDS_BENCH_WINDOW_MS` (60000: Zoho's real minute; smaller values scale the run down),
//! `TDS_BENCH_LIMIT` (100 requests per window).
//!
//! The bound: a sliding window of L requests per W lets N requests finish no sooner than
//! (ceil(N / L) - 1) × W after the first. The figure is wall time / bound (target ≤ 1.1). The client's
//! own budget window is W + W/60 (its default guard: 61 s for Zoho's 60 s).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tds_core::EntityKind;
use tds_tests::{env_or, BenchDatabase};
use tds_zoho::Priority;

#[tokio::main]
async fn main() {
    let items = env_or::<u64>("TDS_BENCH_ITEMS", 10_000) as usize;
    let window = Duration::from_millis(env_or::<u64>("TDS_BENCH_WINDOW_MS", 60_000));
    let limit = env_or::<u64>("TDS_BENCH_LIMIT", 100) as u32;
    let db = BenchDatabase::create(6).await;

    let (sim, client, org_id) =
        tds_tests::paced_sim_client(items, limit, window, db.pool.clone()).await;
    let client = Arc::new(client);

    let started = Instant::now();
    let mut details = tokio::task::JoinSet::new();
    let mut listed = 0usize;
    {
        let mut pages = client
            .pages(
                &org_id,
                EntityKind::Item,
                vec![("filter_by".into(), "Status.All".into())],
                Priority::Poll,
            )
            .unwrap();
        while let Some(page) = pages.next().await {
            let page = page.unwrap();
            listed += page.records.len();
            let ids: Vec<String> = page
                .records
                .iter()
                .map(|r| r["item_id"].as_str().unwrap().to_string())
                .collect();
            // Details of this page while the next page is listed: 100 ids per call.
            for chunk in ids.chunks(100) {
                let client = client.clone();
                let org_id = org_id.clone();
                let chunk = chunk.to_vec();
                details.spawn(async move {
                    client
                        .item_details(&org_id, &chunk, Priority::Poll)
                        .await
                        .unwrap()
                        .len()
                });
            }
        }
    }
    let mut detailed = 0usize;
    while let Some(n) = details.join_next().await {
        detailed += n.unwrap();
    }
    let wall = started.elapsed();

    let stats = sim.sim.stats();
    let org = &stats.orgs[&org_id];
    let calls = org.calls;
    let windows_needed = calls.div_ceil(u64::from(limit)).saturating_sub(1);
    let bound = window * u32::try_from(windows_needed).unwrap();
    assert_eq!(listed, items);
    assert_eq!(detailed, items);
    println!(
        "items={items} limit={limit}/window window={window:?} (client window {:?})",
        window + window / 60
    );
    println!(
        "api calls={calls} (list={} itemdetails={}) rate_limited={} calls per 1000 records={:.1}",
        org.by_endpoint
            .get("GET /inventory/v1/items")
            .copied()
            .unwrap_or(0),
        org.by_endpoint
            .get("GET /inventory/v1/itemdetails")
            .copied()
            .unwrap_or(0),
        org.rate_limited,
        calls as f64 * 1000.0 / items as f64
    );
    println!(
        "wall={wall:.2?} bound={bound:.2?} ratio={} token refreshes={}",
        tds_tests::bound_ratio(wall, bound),
        stats.token_refreshes
    );
    drop(sim);
    db.drop_now().await;
}
