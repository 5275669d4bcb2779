//! The sync core behind entity-processor: inbox messages in, PostgreSQL rows, tombstones, receipts,
//! events and dispositions out; against the simulator (re-fetches through the client) and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use sqlx::PgPool;
use tds_core::webhook::{Action, InboxMessage};
use tds_core::EntityKind;
use tds_local::{LocalEventBus, LocalQueue};
use tds_store::Store;
use tds_sync::stock::{StockPoller, StockRequest};
use tds_sync::{App, Disposition, Incoming, Processor, Settings};
use tds_zoho_sim::{Collection, DemoSpec, RunningSimulator, Simulator};

const ORG: &str = "60001234567";

struct Setup {
    sim: RunningSimulator,
    processor: Processor,
    poller: StockPoller,
    events: Arc<LocalEventBus>,
    dlq: Arc<LocalQueue>,
    store: Store,
}

async fn setup(pool: PgPool) -> Setup {
    let spec = DemoSpec {
        items: 30,
        customers: 5,
        vendors: 2,
        invoices: 5,
        ..DemoSpec::default()
    };
    let sim = Simulator::demo(&spec).serve_local().await.unwrap();
    let mut settings = tds_tests::test_client_settings(100);
    settings.retry.request_timeout = Duration::from_secs(5);
    let zoho = Arc::new(tds_tests::sim_client(
        ORG,
        &sim.base_url,
        pool.clone(),
        settings,
    ));
    let store = Store::from_pool(pool);
    let events = LocalEventBus::new();
    let dlq = LocalQueue::new("dlq", Duration::from_secs(30));
    let app = App::new(store.clone(), zoho, events.clone(), Settings::default())
        .with_inbox(LocalQueue::new("inbox", Duration::from_secs(30)))
        .with_dead_letters(dlq.clone());
    Setup {
        sim,
        processor: app.processor().unwrap(),
        poller: app.poller(),
        events,
        dlq,
        store,
    }
}

/// The inbox message webhook-ingest would make of a Zoho webhook for `record` (which, like Zoho's,
/// lacks line items, addresses and image details).
pub(crate) fn message(kind: EntityKind, record: &Value, action: Action) -> Incoming {
    let mut payload = record.clone();
    for key in [
        "line_items",
        "billing_address",
        "shipping_address",
        "image_id",
        "image_name",
        "image_document_id",
        "locations",
    ] {
        payload.as_object_mut().unwrap().remove(key);
    }
    delivery(kind, payload, action)
}

/// The inbox message of a delivery of `payload` as it is (a complete one needs no re-fetch), keyed
/// by kind, id, action and version.
pub(crate) fn delivery(kind: EntityKind, payload: Value, action: Action) -> Incoming {
    let zoho_id = payload[kind.zoho_id_field().unwrap()]
        .as_str()
        .unwrap()
        .to_string();
    let m = InboxMessage {
        org_id: ORG.into(),
        kind,
        last_modified_time: payload["last_modified_time"]
            .as_str()
            .and_then(tds_core::fields::parse_zoho_timestamp),
        action,
        dedupe_key: format!(
            "{kind}-{zoho_id}-{action:?}-{}",
            payload["last_modified_time"]
        ),
        zoho_id,
        payload,
        received_at: Utc::now(),
    };
    Incoming {
        message_id: format!("m-{}", m.dedupe_key),
        body: serde_json::to_string(&m).unwrap(),
    }
}

fn first(sim: &RunningSimulator, c: Collection, pred: impl Fn(&Value) -> bool) -> Value {
    sim.sim
        .with_state(|s| s.orgs[ORG].collection(c).find(|r| pred(r)).unwrap().clone())
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn webhooks_are_completed_written_and_announced(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let item = first(&s.sim, Collection::Items, |i| {
        i["product_type"] == "goods" && i["image_id"] != ""
    });
    let invoice = first(&s.sim, Collection::Invoices, |_| true);
    let contact = first(&s.sim, Collection::Contacts, |c| {
        c["contact_type"] == "customer"
    });
    let batch = vec![
        message(EntityKind::Item, &item, Action::Edited),
        message(EntityKind::Invoice, &invoice, Action::Created),
        message(EntityKind::Contact, &contact, Action::Upserted),
    ];
    let out = s.processor.process(batch.clone()).await;
    assert!(out.iter().all(|(_, d)| *d == Disposition::Done), "{out:?}");

    // Completed from Zoho: image id and stock per location, line items, the billing country.
    let (image_id, stock_rows): (Option<String>, i64) = sqlx::query_as(
        "SELECT i.image_id, (SELECT count(*) FROM item_stock s WHERE s.item_id = i.zoho_id) FROM items i WHERE i.zoho_id = $1",
    )
    .bind(item["item_id"].as_str().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(image_id.as_deref(), item["image_id"].as_str());
    assert_eq!(stock_rows, 3);
    let lines: Option<i64> = sqlx::query_scalar("SELECT line_item_count FROM invoices")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(lines.unwrap() >= 1);
    let country: Option<String> = sqlx::query_scalar("SELECT country FROM contacts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(country.is_some());
    let calls = &s.sim.sim.stats().orgs[ORG].by_endpoint;
    assert_eq!(
        calls["GET /inventory/v1/itemdetails"], 1,
        "items re-fetched in bulk"
    );

    let synced: Vec<Value> = s
        .events
        .events()
        .into_iter()
        .filter(|e| e.detail_type == "tds.entity.synced")
        .map(|e| e.detail)
        .collect();
    assert_eq!(
        synced.len(),
        6,
        "item, 3 stock rows, invoice, contact: {synced:?}"
    );
    assert!(s.events.batch_sizes().iter().all(|n| *n <= 10));
    let receipts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tds_webhook_receipts WHERE processed_at IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(receipts, 3);

    // The same deliveries again: done, nothing written, nothing announced.
    let before = s.events.events().len();
    let again = s.processor.process(batch).await;
    assert!(again.iter().all(|(_, d)| *d == Disposition::Done));
    assert_eq!(s.events.events().len(), before);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn deletions_become_tombstones(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let items: Vec<Value> = s.sim.sim.with_state(|st| {
        st.orgs[ORG]
            .collection(Collection::Items)
            .take(2)
            .cloned()
            .collect()
    });
    let invoice = first(&s.sim, Collection::Invoices, |_| true);
    s.processor
        .process(vec![
            message(EntityKind::Item, &items[0], Action::Edited),
            message(EntityKind::Item, &items[1], Action::Edited),
        ])
        .await;

    // A Deleted rule's webhook (Zoho deleted the item: confirmed), and webhooks of later edits to
    // records Zoho has deleted since.
    s.sim
        .sim
        .delete(
            ORG,
            Collection::Items,
            items[0]["item_id"].as_str().unwrap(),
        )
        .unwrap();
    let edited = s
        .sim
        .sim
        .upsert(
            ORG,
            Collection::Items,
            serde_json::from_value(json!({"item_id": items[1]["item_id"], "rate": 1})).unwrap(),
        )
        .unwrap();
    s.sim
        .sim
        .delete(
            ORG,
            Collection::Items,
            items[1]["item_id"].as_str().unwrap(),
        )
        .unwrap();
    s.sim
        .sim
        .delete(
            ORG,
            Collection::Invoices,
            invoice["invoice_id"].as_str().unwrap(),
        )
        .unwrap();
    let out = s
        .processor
        .process(vec![
            message(EntityKind::Item, &items[0], Action::Deleted),
            message(EntityKind::Item, &edited, Action::Edited),
            message(EntityKind::Invoice, &invoice, Action::Edited),
        ])
        .await;
    assert!(out.iter().all(|(_, d)| *d == Disposition::Done), "{out:?}");
    let counts = s.store.counts(EntityKind::Item, ORG).await.unwrap();
    assert_eq!((counts.active, counts.deleted), (0, 2));
    // The invoice was never stored and Zoho does not know it: a receipt, not a row.
    let invoices = s.store.counts(EntityKind::Invoice, ORG).await.unwrap();
    assert_eq!(
        (invoices.active, invoices.deleted),
        (0, 0),
        "404 on re-fetch of an id never stored: no row"
    );
    let outcome: Option<String> = sqlx::query_scalar(
        "SELECT outcome FROM tds_webhook_receipts WHERE entity = 'invoice' AND processed_at IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(outcome.as_deref(), Some("unknown"));
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn failures_are_retried_or_dead_lettered_never_dropped(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let out = s
        .processor
        .process(vec![Incoming {
            message_id: "junk".into(),
            body: "{not json".into(),
        }])
        .await;
    assert!(
        matches!(&out[0].1, Disposition::DeadLettered(r) if r.contains("not an inbox message")),
        "{out:?}"
    );
    let dead = s.dlq.peek_all();
    assert_eq!(dead.len(), 1);
    let wrapped: Value = serde_json::from_str(&dead[0].0).unwrap();
    assert_eq!(wrapped["original"], "{not json");
    assert!(wrapped["reason"]
        .as_str()
        .unwrap()
        .contains("not an inbox message"));
    assert!(s
        .events
        .events()
        .iter()
        .any(|e| e.detail_type == "tds.deadletter.added"));

    // A record that can never parse: dead-lettered with the field named.
    let bad = json!({"location_id": "77", "location_name": "Broken", "is_primary": "perhaps"});
    let out = s
        .processor
        .process(vec![message(EntityKind::Location, &bad, Action::Created)])
        .await;
    assert!(
        matches!(&out[0].1, Disposition::DeadLettered(r) if r.contains("is_primary")),
        "{out:?}"
    );

    // Zoho failing: retried later, nothing dead-lettered, nothing marked processed.
    let item = first(&s.sim, Collection::Items, |_| true);
    s.sim.sim.configure(|c| c.error_rate = 1.0);
    let out = s
        .processor
        .process(vec![message(EntityKind::Item, &item, Action::Edited)])
        .await;
    assert!(
        matches!(&out[0].1, Disposition::Retry(r) if r.contains("500")),
        "{out:?}"
    );
    assert_eq!(s.dlq.peek_all().len(), 2);
    s.sim.sim.configure(|c| c.error_rate = 0.0);
    let out = s
        .processor
        .process(vec![message(EntityKind::Item, &item, Action::Edited)])
        .await;
    assert_eq!(out[0].1, Disposition::Done, "the redelivery succeeds");
    assert_eq!(
        s.store.counts(EntityKind::Item, ORG).await.unwrap().active,
        1
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn the_lambda_reports_only_retriable_messages_as_batch_item_failures(pool: PgPool) {
    let s = setup(pool.clone()).await;
    // The sample event in events/: a location created, and a body that is no inbox message.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/entity-processor/inbox-batch.json"
    );
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let response = entity_processor::handle(&s.processor, event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM locations WHERE zoho_id = '4815000000070009'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(name.as_deref(), Some("Pop-up Store"));
    assert_eq!(
        s.dlq.peek_all().len(),
        1,
        "the junk went to the DLQ with its reason"
    );

    // Zoho down: the item message is reported for retry, by its message id.
    s.sim.sim.configure(|c| c.error_rate = 1.0);
    let item = first(&s.sim, Collection::Items, |_| true);
    let incoming = message(EntityKind::Item, &item, Action::Edited);
    let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
    record.message_id = Some(incoming.message_id.clone());
    record.body = Some(incoming.body.clone());
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = vec![record];
    let response = entity_processor::handle(&s.processor, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, [incoming.message_id.as_str()]);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn published_events_match_their_schemas(pool: PgPool) {
    let s = setup(pool).await;
    let item = first(&s.sim, Collection::Items, |i| i["product_type"] == "goods");
    s.processor
        .process(vec![message(EntityKind::Item, &item, Action::Edited)])
        .await;
    s.sim
        .sim
        .delete(ORG, Collection::Items, item["item_id"].as_str().unwrap())
        .unwrap();
    s.processor
        .process(vec![message(EntityKind::Item, &item, Action::Deleted)])
        .await;
    s.processor
        .process(vec![Incoming {
            message_id: "x".into(),
            body: "nope".into(),
        }])
        .await;
    let events = s.events.events();
    let mut seen = std::collections::BTreeSet::new();
    for e in &events {
        match e.detail_type.as_str() {
            "tds.entity.synced" => tds_tests::conforms("tds.entity.synced.schema.json", &e.detail),
            "tds.deadletter.added" => {
                tds_tests::conforms("tds.deadletter.added.schema.json", &e.detail)
            }
            // Stock rows written by a webhook announce themselves as the poller's do.
            "tds.stock.changed" => tds_tests::conforms("tds.stock.changed.schema.json", &e.detail),
            other => panic!("{other} has no schema in events/schemas"),
        }
        seen.insert(e.detail_type.clone());
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(events.iter().any(|e| e.detail["outcome"] == "tombstoned"));
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_redriven_dead_letter_is_processed_as_the_message_it_carries(pool: PgPool) {
    let s = setup(pool.clone()).await;
    // A body that fails: dead-lettered in the processor's wrapper.
    s.processor
        .process(vec![Incoming {
            message_id: "junk".into(),
            body: "{not json".into(),
        }])
        .await;
    let (wrapper, _) = s.dlq.peek_all().remove(0);
    // Redriven (moved back to the inbox as is) and failing again: dead-lettered once more with the
    // same original, not a wrapper inside a wrapper.
    s.processor
        .process(vec![Incoming {
            message_id: "junk-again".into(),
            body: wrapper.clone(),
        }])
        .await;
    let again: Value = serde_json::from_str(&s.dlq.peek_all()[1].0).unwrap();
    assert_eq!(again["original"], "{not json", "{again}");

    // A dead letter in the same wrapper around a good webhook, redriven: applied.
    let location = first(&s.sim, Collection::Locations, |_| true);
    let good = message(EntityKind::Location, &location, Action::Edited);
    let mut redriven: Value = serde_json::from_str(&wrapper).unwrap();
    redriven["original"] = json!(good.body);
    let out = s
        .processor
        .process(vec![Incoming {
            message_id: "redriven".into(),
            body: redriven.to_string(),
        }])
        .await;
    assert_eq!(out[0].1, Disposition::Done, "{out:?}");
    assert_eq!(
        s.store
            .counts(EntityKind::Location, ORG)
            .await
            .unwrap()
            .active,
        1
    );
    assert_eq!(s.dlq.peek_all().len(), 2, "nothing new dead-lettered");
    // An inbox message that merely has a field called "original" is not mistaken for a wrapper.
    assert_eq!(
        tds_sync::unwrap_dead_letter(r#"{"original": "x"}"#),
        r#"{"original": "x"}"#
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_late_retried_webhook_of_a_deleted_record_still_tombstones_it(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let invoice = first(&s.sim, Collection::Invoices, |_| true);
    let id = invoice["invoice_id"].as_str().unwrap().to_string();
    let out = s
        .processor
        .process(vec![message(EntityKind::Invoice, &invoice, Action::Edited)])
        .await;
    assert_eq!(out[0].1, Disposition::Done);
    let stored: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT last_modified_time FROM invoices WHERE zoho_id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    // Zoho deletes it (no Deleted rule). A webhook received long before the stored version (retried
    // for hours, say) re-fetches it, finds it gone, and tombstones it as of now: not as of its
    // arrival, which the stored version would outrank.
    s.sim.sim.with_state(|st| {
        st.orgs
            .get_mut(ORG)
            .unwrap()
            .records
            .get_mut(&Collection::Invoices)
            .unwrap()
            .remove(&id);
    });
    let late = message(EntityKind::Invoice, &invoice, Action::Edited);
    let mut m: InboxMessage = serde_json::from_str(&late.body).unwrap();
    m.received_at = stored - chrono::Duration::hours(2);
    m.dedupe_key = format!("{}-late", m.dedupe_key);
    let out = s
        .processor
        .process(vec![Incoming {
            message_id: "late".into(),
            body: serde_json::to_string(&m).unwrap(),
        }])
        .await;
    assert_eq!(out[0].1, Disposition::Done, "{out:?}");
    let deleted: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT deleted_at FROM invoices WHERE zoho_id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(deleted.is_some_and(|d| d > stored), "{deleted:?}");
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_payload_without_zohos_time_is_read_again_not_versioned_by_its_arrival(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let payment = first(&s.sim, Collection::CustomerPayments, |_| true);
    let id = payment["payment_id"].as_str().unwrap().to_string();
    let mut thin = payment.clone();
    thin.as_object_mut().unwrap().remove("last_modified_time");
    let out = s
        .processor
        .process(vec![message(
            EntityKind::CustomerPayment,
            &thin,
            Action::Edited,
        )])
        .await;
    assert_eq!(out[0].1, Disposition::Done, "{out:?}");
    let stored: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT last_modified_time FROM customer_payments WHERE zoho_id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let zoho =
        tds_core::fields::parse_zoho_timestamp(payment["last_modified_time"].as_str().unwrap())
            .unwrap();
    assert_eq!(stored, zoho, "Zoho's version, from the re-fetch");
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_payload_dated_in_the_future_is_read_again_not_trusted(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let payment = first(&s.sim, Collection::CustomerPayments, |_| true);
    let id = payment["payment_id"].as_str().unwrap().to_string();
    let mut claimed = payment.clone();
    claimed["last_modified_time"] =
        json!(tds_tests::zoho_time(Utc::now() + chrono::Duration::days(1)));
    claimed["amount"] = json!(1.0);
    s.sim.sim.reset_stats();
    let out = s
        .processor
        .process(vec![message(
            EntityKind::CustomerPayment,
            &claimed,
            Action::Edited,
        )])
        .await;
    assert_eq!(out[0].1, Disposition::Done, "{out:?}");
    let (stored, amount): (chrono::DateTime<Utc>, serde_json::Value) = sqlx::query_as(
        "SELECT last_modified_time, record->'amount' FROM customer_payments WHERE zoho_id = $1",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let zoho =
        tds_core::fields::parse_zoho_timestamp(payment["last_modified_time"].as_str().unwrap())
            .unwrap();
    assert_eq!(stored, zoho, "Zoho's version, not the claimed one");
    assert_eq!(amount, payment["amount"], "Zoho's record, not the payload");
    let stats = s.sim.sim.stats();
    assert_eq!(
        stats.orgs[ORG].by_endpoint["GET /books/v3/customerpayments/{id}"],
        1
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_replayed_or_misrouted_deletion_does_not_delete_live_data(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let item = first(&s.sim, Collection::Items, |_| true);
    let invoice = first(&s.sim, Collection::Invoices, |_| true);
    s.processor
        .process(vec![
            message(EntityKind::Item, &item, Action::Edited),
            message(EntityKind::Invoice, &invoice, Action::Edited),
        ])
        .await;
    // The same deliveries sent again as deletions (an `/edited` delivery re-sent to `/deleted`):
    // Zoho still has both records, so both stay live (and are refreshed from Zoho).
    s.sim.sim.reset_stats();
    let out = s
        .processor
        .process(vec![
            message(EntityKind::Item, &item, Action::Deleted),
            message(EntityKind::Invoice, &invoice, Action::Deleted),
        ])
        .await;
    assert!(out.iter().all(|(_, d)| *d == Disposition::Done), "{out:?}");
    for kind in [EntityKind::Item, EntityKind::Invoice] {
        let counts = s.store.counts(kind, ORG).await.unwrap();
        assert_eq!((counts.active, counts.deleted), (1, 0), "{kind}");
    }
    let calls = s.sim.sim.stats().orgs[ORG].by_endpoint.clone();
    assert_eq!(calls["GET /inventory/v1/itemdetails"], 1, "{calls:?}");
    assert_eq!(calls["GET /books/v3/invoices/{id}"], 1, "{calls:?}");
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn stock_rows_of_locations_an_item_no_longer_lists_are_removed(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let item = first(&s.sim, Collection::Items, |i| {
        i["product_type"] == "goods" && i["locations"].as_array().is_some_and(|l| l.len() >= 2)
    });
    let id = item["item_id"].as_str().unwrap().to_string();
    s.processor
        .process(vec![message(EntityKind::Item, &item, Action::Edited)])
        .await;
    let live = |pool: PgPool, id: String| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT location_id FROM item_stock WHERE item_id = $1 AND deleted_at IS NULL ORDER BY 1",
        )
        .bind(id)
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let before = live(pool.clone(), id.clone()).await;
    assert!(before.len() >= 2, "{before:?}");
    // Zoho stops listing the item's last location (a location removed from the item).
    let dropped = s.sim.sim.with_state(|st| {
        let record = st
            .orgs
            .get_mut(ORG)
            .unwrap()
            .records
            .get_mut(&Collection::Items)
            .unwrap()
            .get_mut(&id)
            .unwrap();
        let locations = record["locations"].as_array_mut().unwrap();
        let gone = locations.pop().unwrap();
        gone["location_id"].as_str().unwrap().to_string()
    });
    // The next delivery for the item (another rule's, so another dedupe key).
    s.processor
        .process(vec![message(EntityKind::Item, &item, Action::Upserted)])
        .await;
    let after = live(pool.clone(), id.clone()).await;
    let expected: Vec<String> = before.into_iter().filter(|l| *l != dropped).collect();
    assert_eq!(
        after, expected,
        "the row of {dropped} is tombstoned, the others stay"
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn only_the_message_that_cannot_be_written_is_dead_lettered(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let invoices: Vec<Value> = s.sim.sim.with_state(|st| {
        st.orgs[ORG]
            .collection(Collection::Invoices)
            .take(3)
            .cloned()
            .collect()
    });
    // Complete payloads (line items included: no re-fetch); the second carries a NUL character,
    // which PostgreSQL cannot store, so its group's write fails permanently.
    let incoming: Vec<Incoming> = invoices
        .iter()
        .enumerate()
        .map(|(n, record)| {
            let mut payload = record.clone();
            if n == 1 {
                payload["customer_name"] = json!("Bad\u{0}Name");
            }
            let m = InboxMessage {
                org_id: ORG.into(),
                kind: EntityKind::Invoice,
                zoho_id: payload["invoice_id"].as_str().unwrap().to_string(),
                last_modified_time: payload["last_modified_time"]
                    .as_str()
                    .and_then(tds_core::fields::parse_zoho_timestamp),
                action: Action::Edited,
                payload,
                received_at: Utc::now(),
                dedupe_key: format!("nul-{n}"),
            };
            Incoming {
                message_id: format!("m{n}"),
                body: serde_json::to_string(&m).unwrap(),
            }
        })
        .collect();
    let out = s.processor.process(incoming).await;
    assert_eq!(out[0].1, Disposition::Done, "{out:?}");
    assert!(matches!(out[1].1, Disposition::DeadLettered(_)), "{out:?}");
    assert_eq!(out[2].1, Disposition::Done, "{out:?}");
    assert_eq!(s.dlq.peek_all().len(), 1);
    assert_eq!(
        s.store
            .counts(EntityKind::Invoice, ORG)
            .await
            .unwrap()
            .active,
        2
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn events_are_published_at_least_once_even_when_the_bus_fails(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let staged = |pool: PgPool| async move {
        // Events, not rows: a row holds one write batch's events.
        sqlx::query_scalar::<_, i64>(
            "SELECT coalesce(sum(jsonb_array_length(events)), 0)::bigint FROM tds_outbox",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let items: Vec<Value> = s.sim.sim.with_state(|st| {
        st.orgs[ORG]
            .collection(Collection::Items)
            .take(2)
            .cloned()
            .collect()
    });
    // A healthy bus: events carry their outbox ids (`<row>` for the first, `<row>.<n>` after; the
    // row is forgotten with the next write).
    let out = s
        .processor
        .process(vec![message(EntityKind::Item, &items[0], Action::Edited)])
        .await;
    assert_eq!(out[0].1, Disposition::Done);
    let first = s.events.events();
    assert!(!first.is_empty());
    assert!(
        first.iter().all(|e| e.detail["event_id"].is_string()),
        "{first:?}"
    );
    let ids: std::collections::HashSet<&str> = first
        .iter()
        .map(|e| e.detail["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), first.len(), "event ids are unique: {first:?}");

    // EventBridge fails after the rows are written: the rows stay, the events wait in the outbox.
    s.events.set_failing(true);
    let out = s
        .processor
        .process(vec![message(EntityKind::Item, &items[1], Action::Edited)])
        .await;
    assert_eq!(out[0].1, Disposition::Done, "the rows are written: {out:?}");
    // The outbox holds exactly the unpublished events: the first write's were forgotten.
    let waiting = staged(pool.clone()).await;
    let first_ids: Vec<String> = first
        .iter()
        .map(|e| e.detail["event_id"].as_str().unwrap().to_string())
        .collect();
    let left: Vec<i64> = sqlx::query_scalar("SELECT id FROM tds_outbox")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(waiting > 0);
    assert!(left.iter().all(|id| !first_ids.contains(&id.to_string())));
    assert_eq!(s.events.events().len(), first.len(), "nothing published");

    // Back again: the drain (of events staged over five minutes ago) publishes each of them once.
    s.events.set_failing(false);
    sqlx::query("UPDATE tds_outbox SET created_at = created_at - interval '10 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    let writer = tds_sync::writer::EntityWriter::new(s.store.clone(), s.events.clone());
    assert_eq!(writer.drain_outbox().await.unwrap() as i64, waiting);
    assert_eq!(staged(pool.clone()).await, 0);
    let all = s.events.events();
    let late = &all[first.len()..];
    assert_eq!(late.len() as i64, waiting);
    assert!(late.iter().any(
        |e| e.detail_type == "tds.entity.synced" && e.detail["zoho_id"] == items[1]["item_id"]
    ));
    for e in late {
        tds_tests::conforms(&format!("{}.schema.json", e.detail_type), &e.detail);
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn ids_that_are_not_zoho_ids_never_reach_a_zoho_url(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let zoho = tds_tests::sim_client(
        ORG,
        &s.sim.base_url,
        pool.clone(),
        tds_tests::test_client_settings(1_000_000),
    );
    s.sim.sim.reset_stats();
    for id in [
        "../items/4815000000044208",
        "1?organization_id=999&x=",
        "12 34",
        "",
    ] {
        let err = zoho
            .get_record(ORG, EntityKind::Contact, id, tds_zoho::Priority::Webhook)
            .await
            .unwrap_err();
        assert!(
            matches!(err, tds_zoho::ZohoError::InvalidId(_)),
            "{id}: {err}"
        );
        assert!(!err.is_retriable());
    }
    assert_eq!(s.sim.sim.stats().orgs.get(ORG).map_or(0, |o| o.calls), 0);
}

/// Live rates of a price book as stored: item id → rate.
async fn stored_rates(pool: &PgPool, book: &str) -> std::collections::BTreeMap<String, String> {
    let rows: Vec<(String, Option<rust_decimal::Decimal>)> = sqlx::query_as(
        "SELECT item_id, pricebook_rate FROM price_book_rates WHERE pricebook_id = $1 AND deleted_at IS NULL",
    )
    .bind(book)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(item, rate)| {
            (
                item,
                rate.map(|r| r.normalize().to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

/// Rates of a price book as Zoho has them: item id → rate.
fn zoho_rates(book: &Value) -> std::collections::BTreeMap<String, String> {
    book["pricebook_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let rate: rust_decimal::Decimal = r["pricebook_rate"]
                .to_string()
                .trim_matches('"')
                .parse()
                .unwrap();
            (
                r["item_id"].as_str().unwrap().to_string(),
                rate.normalize().to_string(),
            )
        })
        .collect()
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_price_book_webhook_writes_its_rates_like_a_sync(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let book = first(&s.sim, Collection::PriceBooks, |b| {
        b["pricebook_items"]
            .as_array()
            .is_some_and(|a| a.len() >= 2)
    });
    let book_id = book["pricebook_id"].as_str().unwrap().to_string();

    // A payload without `pricebook_items` (as a list shows the book): read again, rates written.
    let mut listed = book.clone();
    listed.as_object_mut().unwrap().remove("pricebook_items");
    s.sim.sim.reset_stats();
    let out = s
        .processor
        .process(vec![message(
            EntityKind::PriceBook,
            &listed,
            Action::Edited,
        )])
        .await;
    assert!(out.iter().all(|(_, d)| *d == Disposition::Done), "{out:?}");
    assert_eq!(
        s.sim.sim.stats().orgs[ORG].calls,
        1,
        "one detail GET of the book"
    );
    assert_eq!(stored_rates(&pool, &book_id).await, zoho_rates(&book));

    // A payload that carries its rates is complete: written as it is, and a rate it no longer
    // lists is tombstoned, as a sync does.
    let mut fewer = book.clone();
    fewer["name"] = json!("Wholesale (revised)");
    let dropped = fewer["pricebook_items"].as_array_mut().unwrap().remove(0);
    s.sim.sim.reset_stats();
    // Another delivery (webhook-ingest's dedupe key holds the content).
    let mut edited = message(EntityKind::PriceBook, &fewer, Action::Edited);
    edited.body = edited.body.replace("-Edited-null", "-Edited-revised");
    let out = s.processor.process(vec![edited]).await;
    assert!(out.iter().all(|(_, d)| *d == Disposition::Done), "{out:?}");
    let calls = s.sim.sim.stats().orgs.get(ORG).map_or(0, |o| o.calls);
    assert_eq!(calls, 0, "nothing to read again");
    let stored = stored_rates(&pool, &book_id).await;
    assert_eq!(stored, zoho_rates(&fewer));
    assert!(!stored.contains_key(dropped["item_id"].as_str().unwrap()));
}

/// The stock events of one item: (detail type, detail keys) of `tds.stock.changed` and of
/// `tds.entity.synced` for `item_stock` rows, sorted.
fn stock_event_shapes(
    events: &[tds_core::ports::DomainEvent],
    item: &str,
) -> Vec<(String, Vec<String>)> {
    let mut shapes: Vec<(String, Vec<String>)> = events
        .iter()
        .filter(|e| match e.detail_type.as_str() {
            "tds.stock.changed" => e.detail["item_id"] == item,
            "tds.entity.synced" => {
                e.detail["kind"] == "item_stock"
                    && e.detail["zoho_id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with(&format!("{item}:")))
            }
            _ => false,
        })
        .map(|e| {
            let schema = format!("{}.schema.json", e.detail_type);
            tds_tests::conforms(&schema, &e.detail);
            let mut keys: Vec<String> = e.detail.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            (e.detail_type.clone(), keys)
        })
        .collect();
    shapes.sort();
    shapes
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_stock_change_publishes_the_same_events_by_webhook_and_by_poll(pool: PgPool) {
    let s = setup(pool.clone()).await;
    let goods: Vec<Value> = s.sim.sim.with_state(|st| {
        st.orgs[ORG]
            .collection(Collection::Items)
            .filter(|i| i["product_type"] == "goods")
            .take(2)
            .cloned()
            .collect()
    });
    let (by_webhook, by_poll) = (&goods[0], &goods[1]);
    let webhook_id = by_webhook["item_id"].as_str().unwrap();
    let poll_id = by_poll["item_id"].as_str().unwrap();

    let out = s
        .processor
        .process(vec![message(EntityKind::Item, by_webhook, Action::Edited)])
        .await;
    assert!(out.iter().all(|(_, d)| *d == Disposition::Done), "{out:?}");
    let request = StockRequest::parse(&json!({"mode": "items", "item_ids": [poll_id]})).unwrap();
    let report = s.poller.poll(&request).await.unwrap();
    assert!(report[0].rows_changed > 0, "{report:?}");

    let events = s.events.events();
    let from_webhook = stock_event_shapes(&events, webhook_id);
    let from_poll = stock_event_shapes(&events, poll_id);
    let locations = |item: &Value| item["locations"].as_array().unwrap().len();
    assert_eq!(
        from_webhook.len(),
        2 * locations(by_webhook),
        "{from_webhook:?}"
    );
    assert_eq!(from_poll.len(), 2 * locations(by_poll), "{from_poll:?}");
    let kinds = |shapes: &[(String, Vec<String>)]| {
        let mut k: Vec<(String, Vec<String>)> = shapes.to_vec();
        k.dedup();
        k
    };
    assert_eq!(kinds(&from_webhook), kinds(&from_poll));
}

/// The schema check is a real validator: a value of the wrong type, a missing required field or an
/// undocumented one is a violation.
#[test]
fn event_schemas_are_enforced_types_included() {
    let good = json!({"org_id": "1", "item_id": "2", "location_id": "3", "location_name": null,
                      "stock_on_hand": "5", "available_stock": "4.5"});
    tds_tests::conforms("tds.stock.changed.schema.json", &good);
    let mut wrong_type = good.clone();
    wrong_type["stock_on_hand"] = json!(5);
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("item_id");
    let mut extra = good.clone();
    extra["surprise"] = json!(true);
    for bad in [wrong_type, missing, extra] {
        let result =
            std::panic::catch_unwind(|| tds_tests::conforms("tds.stock.changed.schema.json", &bad));
        assert!(result.is_err(), "{bad} passed the schema");
    }
}
