//! Benchmarks of the real-time path, in-process:
//! * `ingest`: webhook-ingest's handler latency per request (p50 / p99 / max) with the local queue twin
//!   and cached secrets, realistic signed item webhooks;
//! * `processor`: entity-processor's throughput into PostgreSQL with complete invoice messages (no
//!   re-fetch needed), receipts, version-gated writes and events included, at the template's SQS
//!   batch size (10) and at 100; with round trips per batch (BEGINs, statements, connection tests), and the ratio to a
//!   raw COPY of the same rows in batches of the same size and to a raw bulk write of everything the batch writes
//!   (rows, receipts, outbox row), each batch's baselines written right after it.
//!
//! Each prints the process's peak resident memory (VmHWM); run one phase per process to read it alone.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p tds-tests --bench realtime -- ingest`
//! (or `-- processor`). Options (env): `TDS_BENCH_REQUESTS` (20000), `TDS_BENCH_MESSAGES` (20000),
//! `TDS_BENCH_BATCHES` (`10,100`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hmac::Mac;
use lambda_http::Body;
use serde_json::json;
use tds_core::ingest::{SecretWebhookAuth, WebhookIngest};
use tds_core::ports::{CachedSecrets, Queue};
use tds_core::webhook::{Action, InboxMessage};
use tds_core::{Document, EntityKind, VersionedRow};
use tds_local::{LocalQueue, MemorySecrets};
use tds_store::Store;
use tds_sync::{App, Incoming, Settings};
use tds_tests::BenchDatabase;
use tds_zoho::{
    ClientSettings, Credentials, OrgConfig, SecretString, StaticCredentials, ZohoClient,
};

const ORG: &str = "60001234567";

/// An event bus that only counts (a recording twin would hold every event in memory).
#[derive(Default)]
struct CountingBus {
    count: std::sync::atomic::AtomicUsize,
}

impl tds_core::ports::EventBus for CountingBus {
    fn publish(
        &self,
        events: Vec<tds_core::ports::DomainEvent>,
    ) -> tds_core::ports::PortFuture<'_, ()> {
        self.count
            .fetch_add(events.len(), std::sync::atomic::Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn ingest_phase() {
    let n = tds_tests::env_or::<usize>("TDS_BENCH_REQUESTS", 20_000);
    let doc = json!({"organizations": [{"organization_id": ORG,
        "webhook": {"header": "X-TDS-Webhook-Secret", "secret": "wh-secret-123", "signing_secret": "SignKey123456"}}]})
    .to_string();
    let queue = LocalQueue::new("inbox", Duration::from_secs(30));
    let secrets = CachedSecrets::new(
        Arc::new(MemorySecrets::new([("zoho".to_string(), doc)])),
        Duration::from_secs(300),
    );
    let ingest = WebhookIngest::new(
        queue.clone(),
        Arc::new(SecretWebhookAuth::new(Arc::new(secrets), "zoho")),
    );
    let mut rng = tds_tests::Rng::new(7);
    let bodies: Vec<String> = (0..256)
        .map(|i| {
            let mut record = tds_tests::sample_item(&mut rng, i, 1, tds_tests::base_time());
            record.as_object_mut().unwrap().remove("locations");
            json!({"item": record}).to_string()
        })
        .collect();
    let signatures: Vec<String> = bodies
        .iter()
        .map(|b| {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"SignKey123456").unwrap();
            mac.update(b.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        })
        .collect();
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % bodies.len();
        let req = lambda_http::http::Request::builder()
            .method("POST")
            .uri(format!("https://api.example/webhooks/zoho/{ORG}/edited"))
            .header("Content-Type", "application/json")
            .header("X-TDS-Webhook-Secret", "wh-secret-123")
            .header("X-Zoho-Webhook-Signature", &signatures[k])
            .body(Body::Text(bodies[k].clone()))
            .unwrap();
        let t = Instant::now();
        let resp = webhook_ingest::handle(&ingest, req).await;
        times.push(t.elapsed());
        assert_eq!(resp.status(), 202);
        if i % 1000 == 999 {
            // Drain the twin so its memory does not count as the handler's.
            while let Ok(batch) = queue.receive(10).await {
                if batch.is_empty() {
                    break;
                }
                for m in batch {
                    queue.delete(&m.receipt_handle).await.unwrap();
                }
            }
        }
    }
    times.sort();
    println!(
        "ingest requests={n} avg_body_bytes={} p50={:?} p99={:?} max={:?} peak_rss={:.1} MB",
        bodies.iter().map(String::len).sum::<usize>() / bodies.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1],
        tds_tests::peak_rss_mb()
    );
}

/// Counts the statements sqlx runs (its `sqlx::query` events, COMMIT included), adds up the time each
/// kind took as sqlx measured it (from send to last row, keyed by the statement's first words), and
/// counts COMMITs: each transaction's BEGIN is a round trip of its own too (sqlx 0.8 queues it and
/// then waits for its answer before the first statement), but it logs no event.
/// While paused (the baseline's raw writes) it counts nothing.
#[derive(Default, Clone)]
struct StatementCounter(
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::Mutex<std::collections::BTreeMap<String, Duration>>>,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicBool>,
);

/// The `summary` and `elapsed_secs` fields of a `sqlx::query` event.
#[derive(Default)]
struct QueryFields {
    summary: String,
    elapsed: f64,
}

impl tracing::field::Visit for QueryFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "summary" {
            self.summary = value
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = value;
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query"
            && !self.3.load(std::sync::atomic::Ordering::Relaxed)
        {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut fields = QueryFields::default();
            event.record(&mut fields);
            if fields.summary == "COMMIT" {
                self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let mut times = self.1.lock().unwrap();
            *times.entry(fields.summary).or_default() += Duration::from_secs_f64(fields.elapsed);
        }
    }
}

impl StatementCounter {
    /// Stops counting until [`StatementCounter::resume`].
    fn pause(&self) {
        self.3.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn resume(&self) {
        self.3.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// The time per statement kind since the last call, in µs per batch of `rounds`.
    fn take_times(&self, rounds: usize) -> String {
        std::mem::take(&mut *self.1.lock().unwrap())
            .into_iter()
            .map(|(k, d)| format!("\"{k}\" {:.0}", d.as_secs_f64() * 1e6 / rounds as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Complete invoice messages (no re-fetch needed) with ids `prefix` + index.
fn invoice_messages(prefix: &str, range: std::ops::Range<usize>) -> Vec<Incoming> {
    range
        .map(|i| {
            let id = format!("{prefix}{i:07}");
            let lmt = tds_tests::zoho_time(tds_tests::base_time() + chrono::Duration::seconds(i as i64));
            let payload = json!({
                "invoice_id": id, "invoice_number": format!("INV-{i:07}"), "status": "sent", "date": "2026-01-05",
                "due_date": "2026-01-20", "customer_id": "4815000000026049", "customer_name": "Bowman and Co",
                "currency_code": "INR", "total": 1234.5, "balance": 1234.5, "reference_number": "",
                "line_items": [{"line_item_id": format!("{id}1"), "item_id": "4815000000044208", "name": "Bags-small", "quantity": 3.0, "rate": 6.0, "item_total": 18.0},
                               {"line_item_id": format!("{id}2"), "item_id": "4815000000044444", "name": "Umbrella", "quantity": 1.0, "rate": 12.0, "item_total": 12.0}],
                "created_time": lmt, "last_modified_time": lmt
            });
            let m = InboxMessage {
                org_id: ORG.into(),
                kind: EntityKind::Invoice,
                zoho_id: id.clone(),
                last_modified_time: tds_core::fields::parse_zoho_timestamp(&lmt),
                action: Action::Created,
                payload,
                received_at: Utc::now(),
                // As webhook-ingest makes it: SHA-256 hex, so the receipts' key index takes
                // inserts all over its range, as in production.
                dedupe_key: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                    format!("{ORG}|invoice|{id}|{lmt}").as_bytes(),
                )),
            };
            Incoming { message_id: format!("m{prefix}{i}"), body: serde_json::to_string(&m).unwrap() }
        })
        .collect()
}

/// The baselines for one batch: what the processor writes for it, bulk-written raw.
struct RawBatch {
    rows: Vec<VersionedRow<Document>>,
    messages: Vec<(String, InboxMessage)>,
}

impl RawBatch {
    /// The batch's rows and messages, read from its bodies (not timed: only the writes are).
    fn new(batch: &[Incoming]) -> RawBatch {
        let messages: Vec<(String, InboxMessage)> = batch
            .iter()
            .map(|m| (m.message_id.clone(), serde_json::from_str(&m.body).unwrap()))
            .collect();
        let rows = messages
            .iter()
            .map(|(_, m)| {
                let doc = Document::parse(EntityKind::Invoice, m.payload.clone()).unwrap();
                VersionedRow::new(ORG, doc, m.received_at)
            })
            .collect();
        RawBatch { rows, messages }
    }

    /// COPYs the rows (payload encoding included) into `table`.
    async fn copy_rows_into(&self, conn: &mut sqlx::PgConnection, table: &str) {
        let (payload, names) = tds_tests::copy_payload(&self.rows);
        let sql = format!(
            "COPY {table} (org_id, zoho_id, last_modified_time, content_hash, completeness, record, {}) FROM STDIN",
            names.join(", ")
        );
        let mut sink = conn.copy_in_raw(&sql).await.unwrap();
        sink.send(payload.into_bytes()).await.unwrap();
        sink.finish().await.unwrap();
    }

    /// The raw COPY of the same invoice rows (its own transaction, one commit): the time it took.
    async fn copy_rows(&self, conn: &mut sqlx::PgConnection) -> Duration {
        let t = Instant::now();
        self.copy_rows_into(conn, "invoices_copy").await;
        t.elapsed()
    }

    /// Everything the processor writes for the batch, bulk-written raw in one transaction: the rows
    /// (COPY), a receipt per message (COPY) and one outbox row holding an event per row: the time.
    async fn copy_all(&self, conn: &mut sqlx::PgConnection) -> Duration {
        use sqlx::Connection;
        let t = Instant::now();
        let mut tx = conn.begin().await.unwrap();
        self.copy_rows_into(&mut tx, "invoices_all").await;
        let now = Utc::now().to_rfc3339();
        let mut receipts = String::with_capacity(self.messages.len() * 300);
        for (message_id, m) in &self.messages {
            let lmt = m.last_modified_time.map(|t| t.to_rfc3339()).unwrap();
            for (i, field) in [
                m.org_id.as_str(),
                "invoice",
                &m.zoho_id,
                "created",
                &m.dedupe_key,
                &lmt,
                message_id,
                &m.received_at.to_rfc3339(),
                "inserted",
                &now,
            ]
            .into_iter()
            .enumerate()
            {
                if i > 0 {
                    receipts.push('\t');
                }
                tds_tests::escape_into(&mut receipts, field);
            }
            receipts.push('\n');
        }
        let mut sink = tx
            .copy_in_raw(
                "COPY receipts_all (org_id, entity, zoho_id, action, dedupe_key, last_modified_time,
                 message_id, received_at, outcome, processed_at) FROM STDIN",
            )
            .await
            .unwrap();
        sink.send(receipts.into_bytes()).await.unwrap();
        sink.finish().await.unwrap();
        let events: Vec<serde_json::Value> = self
            .messages
            .iter()
            .map(|(_, m)| {
                json!({"detail_type": "tds.entity.synced", "time": now,
                       "detail": {"org_id": m.org_id, "kind": "invoice", "zoho_id": m.zoho_id, "outcome": "inserted"}})
            })
            .collect();
        sqlx::query("INSERT INTO outbox_all (events) VALUES ($1)")
            .bind(sqlx::types::Json(events))
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        t.elapsed()
    }
}

/// entity-processor at the template's batch sizes: messages/s, round trips per batch (each
/// transaction's BEGIN, the statements, and connection tests, made for a connection idle past
/// `tds_store::PING_IDLE_AFTER`), and two ratios, each batch's baselines written right after it: to a
/// raw COPY of the same invoice rows, and to a raw bulk write of everything the batch writes (rows,
/// receipts and the outbox row, one transaction).
async fn processor_phase() {
    let n = tds_tests::env_or::<usize>("TDS_BENCH_MESSAGES", 20_000);
    let batches: Vec<usize> = std::env::var("TDS_BENCH_BATCHES")
        .unwrap_or_else(|_| "10,100".into())
        .split(',')
        .map(|b| {
            b.trim()
                .parse()
                .expect("TDS_BENCH_BATCHES: sizes like 10,100")
        })
        .collect();
    let statements = StatementCounter::default();
    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(statements.clone());
        tracing::subscriber::set_global_default(subscriber).unwrap();
    }
    let db = BenchDatabase::create(4).await;
    for table in [
        "invoices_copy (LIKE invoices INCLUDING ALL)",
        "invoices_all (LIKE invoices INCLUDING ALL)",
        "receipts_all (LIKE tds_webhook_receipts INCLUDING ALL)",
        "outbox_all (LIKE tds_outbox INCLUDING ALL)",
    ] {
        sqlx::query(&format!("CREATE TABLE {table}"))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let c = tds_zoho_sim::ClientCredentials::default();
    // The client is never called: complete invoice payloads need no re-fetch.
    let zoho = ZohoClient::new(
        vec![OrgConfig::at(
            ORG,
            "http://127.0.0.1:9",
            "http://127.0.0.1:9",
        )],
        Arc::new(StaticCredentials::single(
            ORG,
            Credentials {
                client_id: c.client_id,
                client_secret: SecretString::new(c.client_secret),
                refresh_token: SecretString::new(c.refresh_token),
            },
        )),
        db.pool.clone(),
        ClientSettings::default(),
    )
    .unwrap();
    let events = Arc::new(CountingBus::default());
    let processor = App::new(
        Store::from_pool(db.pool.clone()),
        Arc::new(zoho),
        events.clone(),
        Settings::default(),
    )
    .with_inbox(LocalQueue::new("inbox", Duration::from_secs(30)))
    .with_dead_letters(LocalQueue::new("dlq", Duration::from_secs(30)))
    .processor()
    .unwrap();
    let count = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::Relaxed);
    let mut conn = db.pool.acquire().await.unwrap();
    for (phase, &size) in batches.iter().enumerate() {
        let prefix = format!("48150{phase:02}");
        // Batches are built as they are needed (as SQS hands them over). Each batch is processed,
        // then the same data is bulk-written raw, so both see the machine in the same state (the
        // disk's flush time drifts over a run); only the processing and the raw writes are timed.
        let (mut elapsed, mut rounds) = (Duration::ZERO, 0usize);
        let (mut copy, mut copy_all) = (Duration::ZERO, Duration::ZERO);
        let (s0, a0, b0) = (
            count(&statements.0),
            count(&tds_tests::ACQUIRES),
            count(&statements.2),
        );
        statements.take_times(1); // what came before this phase
        for start in (0..n).step_by(size) {
            let range = start..(start + size).min(n);
            let batch = invoice_messages(&prefix, range.clone());
            let raw = RawBatch::new(&batch);
            let t = Instant::now();
            let out = processor.process(batch).await;
            elapsed += t.elapsed();
            rounds += 1;
            assert!(out.iter().all(|(_, d)| *d == tds_sync::Disposition::Done));
            statements.pause();
            copy += raw.copy_rows(&mut conn).await;
            copy_all += raw.copy_all(&mut conn).await;
            statements.resume();
        }
        let per_batch = |now: usize, before: usize| (now - before) as f64 / rounds as f64;
        let times = statements.take_times(rounds);
        let (stmts, acquires, begins) = (
            per_batch(count(&statements.0), s0),
            per_batch(count(&tds_tests::ACQUIRES), a0),
            per_batch(count(&statements.2), b0),
        );
        let rate = n as f64 / elapsed.as_secs_f64();
        let copy_rate = n as f64 / copy.as_secs_f64();
        let copy_all_rate = n as f64 / copy_all.as_secs_f64();
        println!(
            "processor messages={n} batch={size} elapsed={elapsed:.2?} throughput={rate:.0} messages/s \
             round_trips/batch={:.1} (BEGIN {begins:.1} + statements {stmts:.1} + connection tests {acquires:.1}) \
             raw_copy={copy_rate:.0} rows/s ratio={:.2} raw_all={copy_all_rate:.0} messages/s ratio_all={:.2}",
            begins + stmts + acquires,
            rate / copy_rate,
            rate / copy_all_rate
        );
        println!(
            "processor batch={size} µs per batch: all {:.0}, by statement (sqlx's time, send to last row): {times}; \
             raw COPY {:.0}; raw everything {:.0}",
            elapsed.as_secs_f64() * 1e6 / rounds as f64,
            copy.as_secs_f64() * 1e6 / rounds as f64,
            copy_all.as_secs_f64() * 1e6 / rounds as f64
        );
    }
    drop(conn);
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(written as usize, n * batches.len());
    println!(
        "events={} peak_rss={:.1} MB",
        events.count.load(std::sync::atomic::Ordering::Relaxed),
        tds_tests::peak_rss_mb()
    );
    db.drop_now().await;
}

#[tokio::main]
async fn main() {
    let phase = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    match phase.as_str() {
        "ingest" => ingest_phase().await,
        "processor" => processor_phase().await,
        _ => {
            ingest_phase().await;
            processor_phase().await;
        }
    }
}
