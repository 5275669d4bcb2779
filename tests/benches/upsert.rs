//! Benchmark: the version-gated batch upsert of items with realistic jsonb payloads, against a plain
//! `COPY` of the same rows into an identical table (same columns, same indexes), in the same run.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p tds-tests --bench upsert`
//! Options (env): `TDS_BENCH_ROWS` (default 20000), `TDS_BENCH_BATCH` (default 1000), `TDS_BENCH_ROUNDS` (3),
//! `TDS_BENCH_RECORD` = `detail` (default: item detail GET, ~2.9 KB of JSON) or `list` (the same item as a
//! list page returns it, without locations, tax preferences and custom fields, ~1.9 KB).
//! It creates and drops its own database. Figures are recorded in docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use chrono::Utc;
use tds_core::{Item, VersionedRow};
use tds_store::Store;
use tds_tests::{base_time, copy_payload, sample_item, BenchDatabase, Rng};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(rows: usize, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n = tds_tests::env_or::<usize>("TDS_BENCH_ROWS", 20_000);
    let batch = tds_tests::env_or::<usize>("TDS_BENCH_BATCH", 1000);
    let rounds = tds_tests::env_or::<usize>("TDS_BENCH_ROUNDS", 3);
    let list_shape = match std::env::var("TDS_BENCH_RECORD").as_deref() {
        Ok("list") => true,
        Ok("detail") | Err(_) => false,
        Ok(other) => panic!("TDS_BENCH_RECORD must be detail or list, got {other:?}"),
    };
    let db = BenchDatabase::create(1).await;
    let pool = db.pool.clone();
    let store = Store::from_pool(pool.clone());
    sqlx::query("CREATE TABLE items_copy (LIKE items INCLUDING ALL)")
        .execute(&pool)
        .await
        .unwrap();

    // Realistic records: two versions of every item (for the insert and the update pass).
    let mut rng = Rng::new(42);
    let now = Utc::now();
    let make = |rng: &mut Rng, rev: u32| -> Vec<VersionedRow<Item>> {
        (0..n)
            .map(|i| {
                let mut record = sample_item(
                    rng,
                    i,
                    rev,
                    base_time() + chrono::Duration::minutes(i64::from(rev)),
                );
                if list_shape {
                    for key in [
                        "locations",
                        "item_tax_preferences",
                        "custom_fields",
                        "unit_id",
                    ] {
                        record.as_object_mut().unwrap().remove(key);
                    }
                }
                VersionedRow::new("bench-org", Item::parse(record).unwrap(), now)
            })
            .collect()
    };
    let v1 = make(&mut rng, 1);
    let v2 = make(&mut rng, 2);
    let avg_json: usize = v1
        .iter()
        .map(|r| r.entity.record.to_string().len())
        .sum::<usize>()
        / n;

    let (mut insert, mut update, mut unchanged, mut copy) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        sqlx::query("TRUNCATE items, items_copy")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("VACUUM ANALYZE items")
            .execute(&pool)
            .await
            .unwrap();

        let t = Instant::now();
        for chunk in v1.chunks(batch) {
            let report = store.upsert(chunk).await.unwrap();
            assert_eq!(report.changed(), chunk.len());
        }
        insert.push(t.elapsed());

        let t = Instant::now();
        for chunk in v1.chunks(batch) {
            let report = store.upsert(chunk).await.unwrap();
            assert_eq!(report.unchanged(), chunk.len());
        }
        unchanged.push(t.elapsed());

        let t = Instant::now();
        for chunk in v2.chunks(batch) {
            let report = store.upsert(chunk).await.unwrap();
            assert_eq!(report.changed(), chunk.len());
        }
        update.push(t.elapsed());

        // COPY the same rows (payload encoding included, as the upsert includes its own).
        let mut conn = pool.acquire().await.unwrap();
        let t = Instant::now();
        for chunk in v1.chunks(batch) {
            let (payload, names) = copy_payload(chunk);
            let sql = format!(
                "COPY items_copy (org_id, zoho_id, last_modified_time, content_hash, completeness, record, {}) FROM STDIN",
                names.join(", ")
            );
            let mut sink = conn.copy_in_raw(&sql).await.unwrap();
            sink.send(payload.into_bytes()).await.unwrap();
            let copied = sink.finish().await.unwrap();
            assert_eq!(copied as usize, chunk.len());
        }
        copy.push(t.elapsed());
    }
    let same: bool = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM items) = (SELECT count(*) FROM items_copy)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(same);

    let (insert, update, unchanged, copy) = (
        median(insert),
        median(update),
        median(unchanged),
        median(copy),
    );
    println!(
        "record={} rows={n} batch={batch} rounds={rounds} (median) avg_record_json_bytes={avg_json}",
        if list_shape { "list" } else { "detail" }
    );
    println!(
        "upsert insert     {:>10.0} rows/s  ({:.2?})",
        rate(n, insert),
        insert
    );
    println!(
        "upsert update     {:>10.0} rows/s  ({:.2?})",
        rate(n, update),
        update
    );
    println!(
        "upsert unchanged  {:>10.0} rows/s  ({:.2?})",
        rate(n, unchanged),
        unchanged
    );
    println!(
        "plain COPY        {:>10.0} rows/s  ({:.2?})",
        rate(n, copy),
        copy
    );
    println!(
        "ratio upsert/COPY insert={:.2} update={:.2} unchanged={:.2}",
        rate(n, insert) / rate(n, copy),
        rate(n, update) / rate(n, copy),
        rate(n, unchanged) / rate(n, copy)
    );

    db.drop_now().await;
}
