//! The shared test harness: a simulator serving a demo organisation over real HTTP, a fresh
//! PostgreSQL database, the local twins of the ports, and the application built from them exactly
//! as the Lambda functions build it (`tds_sync::App`); plus the checks several areas use (the store
//! equals the simulator, stock rows, the stock poller's requests).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use tds_core::metrics::Metrics;
use tds_core::ports::{DomainEvent, Queue};
use tds_core::EntityKind;
use tds_local::{DirBlobStore, LocalEventBus, LocalQueue};
use tds_store::Store;
use tds_sync::stock::{StockPoller, StockRequest};
use tds_sync::{
    App, Comparator, Disposition, Incoming, Processor, Settings, StartSync, SyncJob, SyncMode,
};
use tds_zoho::ZohoClient;
use tds_zoho_sim::{Collection, DemoSpec, RunningSimulator, Simulator};

pub(crate) const ORG: &str = "60001234567";

pub(crate) struct Harness {
    pub sim: RunningSimulator,
    pub zoho: Arc<ZohoClient>,
    pub store: Store,
    pub events: Arc<LocalEventBus>,
    pub inbox: Arc<LocalQueue>,
    pub dlq: Arc<LocalQueue>,
    pub blobs: Option<Arc<DirBlobStore>>,
    /// The metrics the application and its Zoho client record (as a Lambda's do).
    pub metrics: Metrics,
}

pub(crate) fn small_spec(items: usize) -> DemoSpec {
    DemoSpec {
        items,
        customers: 12,
        vendors: 6,
        invoices: 15,
        sales_orders: 10,
        bills: 8,
        customer_payments: 9,
        credit_notes: 4,
        vendor_payments: 5,
        purchase_orders: 6,
        ..DemoSpec::default()
    }
}

pub(crate) async fn harness(
    pool: PgPool,
    spec: &DemoSpec,
    blob_dir: Option<&std::path::Path>,
) -> Harness {
    let sim = Simulator::demo(spec).serve_local().await.unwrap();
    sim.sim.configure(|c| c.per_minute_limit = 1_000_000);
    let metrics = Metrics::enabled();
    let zoho = Arc::new(tds_tests::sim_client(
        ORG,
        &sim.base_url,
        pool.clone(),
        tds_zoho::ClientSettings {
            metrics: metrics.clone(),
            ..tds_tests::test_client_settings(1_000_000)
        },
    ));
    Harness {
        sim,
        zoho,
        store: Store::from_pool(pool),
        events: LocalEventBus::new(),
        inbox: LocalQueue::new("inbox", Duration::from_millis(300)),
        dlq: LocalQueue::new("dlq", Duration::from_secs(30)),
        blobs: blob_dir.map(|d| Arc::new(DirBlobStore::new(d))),
        metrics,
    }
}

impl Harness {
    /// The application as the Lambda functions build it, on the local ports.
    pub(crate) fn app(&self) -> App {
        let app = App::new(
            self.store.clone(),
            self.zoho.clone(),
            self.events.clone(),
            Settings::default(),
        )
        .with_metrics(self.metrics.clone())
        .with_inbox(self.inbox.clone())
        .with_dead_letters(self.dlq.clone());
        match &self.blobs {
            Some(b) => app.with_blobs(b.clone()),
            None => app,
        }
    }

    /// A processor as entity-processor builds one (a "restart" is a new one).
    pub(crate) fn processor(&self) -> Processor {
        self.app()
            .processor()
            .expect("inbox and dead-letter queue are set")
    }

    /// The comparator as the statistics function builds it.
    pub(crate) fn comparator(&self) -> Comparator {
        self.app().comparator().expect("the inbox is set")
    }

    pub(crate) async fn start(&self, entities: &[&str], mode: SyncMode) {
        let job = SyncJob::Start(StartSync {
            org_id: Some(ORG.into()),
            entities: entities.iter().map(|e| e.to_string()).collect(),
            mode,
            trigger: tds_core::Trigger::Test,
        });
        self.inbox.send(job.to_body()).await.unwrap();
    }

    /// Delivers inbox messages to `processor` until the queue is empty, as the SQS event source would.
    pub(crate) async fn drain(&self, processor: &Processor) {
        for _ in 0..100_000 {
            let batch = self.inbox.receive(10).await.unwrap();
            if batch.is_empty() {
                let stats = self.inbox.stats().await.unwrap();
                if stats.visible == 0 && stats.in_flight == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let incoming = batch.iter().map(Incoming::from).collect();
            let results = processor.process(incoming).await;
            for (m, (_, d)) in batch.iter().zip(results) {
                match d {
                    Disposition::Retry(reason) => panic!("unexpected retry: {reason}"),
                    _ => self.inbox.delete(&m.receipt_handle).await.unwrap(),
                }
            }
        }
        panic!("the inbox never drained");
    }

    pub(crate) fn calls(&self) -> HashMap<String, u64> {
        let stats = self.sim.sim.stats();
        let org = stats.orgs.get(ORG).cloned().unwrap_or_default();
        let mut out: HashMap<String, u64> = org.by_endpoint.into_iter().collect();
        out.insert("total".into(), org.calls);
        out
    }

    pub(crate) fn sim_records(&self, c: Collection) -> Vec<Value> {
        self.sim
            .sim
            .with_state(|s| s.orgs[ORG].collection(c).cloned().collect())
    }

    pub(crate) fn sim_detail(&self, c: Collection, record: &Value) -> Value {
        self.sim
            .sim
            .with_state(|s| s.orgs[ORG].render_detail(c, record))
    }

    pub(crate) fn sim_list(&self, c: Collection, record: &Value) -> Value {
        self.sim
            .sim
            .with_state(|s| s.orgs[ORG].render_list(c, record))
    }

    /// Sets fields of a record in the simulator without Zoho's bump of `last_modified_time`.
    pub(crate) fn set_raw(&self, c: Collection, id: &str, fields: Value) {
        self.sim.sim.with_state(|s| {
            let org = s.orgs.get_mut(ORG).unwrap();
            let record = org.records.get_mut(&c).unwrap().get_mut(id).unwrap();
            for (k, v) in fields.as_object().unwrap() {
                record[k] = v.clone();
            }
        });
    }

    pub(crate) fn edit(&self, c: Collection, id: &str, fields: Value) {
        let mut map: Map<String, Value> = fields.as_object().unwrap().clone();
        map.insert(c.spec().id_field.into(), Value::String(id.into()));
        self.sim.sim.upsert(ORG, c, map).unwrap();
    }

    pub(crate) fn events_of(&self, detail_type: &str) -> Vec<DomainEvent> {
        self.events
            .events()
            .into_iter()
            .filter(|e| e.detail_type == detail_type)
            .collect()
    }

    pub(crate) async fn stored(&self, kind: EntityKind) -> HashMap<String, tds_store::StoredRow> {
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT zoho_id FROM {} WHERE org_id = $1 AND deleted_at IS NULL",
            kind.table()
        ))
        .bind(ORG)
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        self.store
            .get_many(kind, ORG, &ids)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.zoho_id.clone(), r))
            .collect()
    }
}

pub(crate) fn id_of(c: Collection, record: &Value) -> String {
    match &record[c.spec().id_field] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Numbers compared as f64 (`5.000000` on the wire is 5), everything else exactly.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

pub(crate) const KINDS: [(Collection, EntityKind, bool); 11] = [
    // (collection, kind, stored from the detail GET)
    (Collection::Items, EntityKind::Item, true),
    (Collection::Locations, EntityKind::Location, false),
    (Collection::PriceBooks, EntityKind::PriceBook, true),
    (Collection::Contacts, EntityKind::Contact, true),
    (Collection::Invoices, EntityKind::Invoice, true),
    (Collection::SalesOrders, EntityKind::SalesOrder, true),
    (Collection::Bills, EntityKind::Bill, true),
    (
        Collection::CustomerPayments,
        EntityKind::CustomerPayment,
        false,
    ),
    (Collection::CreditNotes, EntityKind::CreditNote, true),
    (Collection::VendorPayments, EntityKind::VendorPayment, false),
    (Collection::PurchaseOrders, EntityKind::PurchaseOrder, true),
];

/// PostgreSQL equals the simulator, field by field, for every kind, stock per location and price-book
/// rates included.
pub(crate) async fn assert_equal_to_simulator(h: &Harness) {
    for (c, kind, detail) in KINDS {
        let sim = h.sim_records(c);
        let stored = h.stored(kind).await;
        assert_eq!(stored.len(), sim.len(), "{kind}: row count");
        for record in &sim {
            let id = id_of(c, record);
            let expected = if detail {
                h.sim_detail(c, record)
            } else {
                h.sim_list(c, record)
            };
            let row = stored
                .get(&id)
                .unwrap_or_else(|| panic!("{kind} {id} missing"));
            assert!(
                same(&row.record, &expected),
                "{kind} {id} differs:\nstored {}\nzoho   {}",
                row.record,
                expected
            );
        }
    }
    // Stock per location.
    let stock = h.stored(EntityKind::ItemStock).await;
    let mut expected_rows = 0;
    for item in h.sim_records(Collection::Items) {
        let id = id_of(Collection::Items, &item);
        for loc in item["locations"].as_array().into_iter().flatten() {
            expected_rows += 1;
            let row_id = format!("{id}:{}", loc["location_id"].as_str().unwrap());
            let row = stock
                .get(&row_id)
                .unwrap_or_else(|| panic!("stock {row_id} missing"));
            assert!(
                same(
                    &row.record["location_stock_on_hand"],
                    &loc["location_stock_on_hand"]
                ),
                "stock {row_id}: {} vs {}",
                row.record,
                loc
            );
        }
    }
    assert_eq!(stock.len(), expected_rows, "stock rows");
    // Price-book rates.
    let rates = h.stored(EntityKind::PriceBookRate).await;
    let mut expected_rates = 0;
    for book in h.sim_records(Collection::PriceBooks) {
        let detail = h.sim_detail(Collection::PriceBooks, &book);
        let book_id = id_of(Collection::PriceBooks, &book);
        for rate in detail["pricebook_items"].as_array().into_iter().flatten() {
            expected_rates += 1;
            let row_id = format!("{book_id}:{}", rate["item_id"].as_str().unwrap());
            let row = rates
                .get(&row_id)
                .unwrap_or_else(|| panic!("rate {row_id} missing"));
            assert!(same(&row.record, rate), "rate {row_id}");
        }
    }
    assert_eq!(rates.len(), expected_rates, "price-book rate rows");
}

/// The calls a full sync needs at least: every list page, `/itemdetails` per 100 items, and one detail
/// GET per price book, contact and document with line items.
pub(crate) fn minimum_full_sync_calls(h: &Harness) -> u64 {
    let mut calls = 0;
    for (c, _, detail) in KINDS {
        let n = h.sim_records(c).len() as u64;
        calls += n.div_ceil(200).max(1);
        calls += match (c, detail) {
            (Collection::Items, _) => n.div_ceil(100),
            (_, true) => n,
            _ => 0,
        };
    }
    calls
}

pub(crate) async fn assert_equal_to_simulator_kinds(h: &Harness, kinds: &[EntityKind]) {
    for (c, kind, detail) in KINDS.into_iter().filter(|(_, k, _)| kinds.contains(k)) {
        let stored = h.stored(kind).await;
        for record in h.sim_records(c) {
            let expected = if detail {
                h.sim_detail(c, &record)
            } else {
                h.sim_list(c, &record)
            };
            assert!(
                same(&stored[&id_of(c, &record)].record, &expected),
                "{kind}"
            );
        }
    }
}

pub(crate) fn poller(h: &Harness) -> StockPoller {
    h.app().poller()
}

pub(crate) async fn stock_rows(
    h: &Harness,
) -> HashMap<String, (Option<Decimal>, chrono::DateTime<chrono::Utc>)> {
    sqlx::query_as::<_, (String, Option<Decimal>, chrono::DateTime<chrono::Utc>)>(
        "SELECT zoho_id, stock_on_hand, synced_at FROM item_stock WHERE org_id = $1",
    )
    .bind(ORG)
    .fetch_all(h.store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(id, q, at)| (id, (q, at)))
    .collect()
}

/// Sets an item's stock at a location through the simulator's control path (no webhook).
pub(crate) async fn set_stock(h: &Harness, item: &str, location: &str, qty: i64) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/__sim/orgs/{ORG}/items/{item}/stock",
            h.sim.base_url
        ))
        .json(&json!({"location_id": location, "stock_on_hand": qty}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

pub(crate) fn goods(h: &Harness) -> Vec<Value> {
    h.sim_records(Collection::Items)
        .into_iter()
        .filter(|r| r["product_type"] != "service")
        .collect()
}

pub(crate) fn stock_request(v: Value) -> StockRequest {
    StockRequest::parse(&v).unwrap()
}
