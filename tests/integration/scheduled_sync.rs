//! Scheduled syncs and the stock poller against the simulator (over real HTTP) and PostgreSQL: fan-out
//! jobs through a local inbox twin, runs, cursors, events, images in a blob directory.

use std::collections::BTreeSet;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;
use tds_core::ports::Queue;
use tds_core::EntityKind;
use tds_store::RunStatus;
use tds_sync::stock::StockRequest;
use tds_sync::{Disposition, Incoming, SyncJob, SyncMode};
use tds_zoho_sim::Collection;

use crate::harness::*;

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn full_sync_of_10000_items_equals_zoho_with_minimum_calls_then_incremental_fetches_exactly_the_edits(
    pool: PgPool,
) {
    let h = harness(pool, &small_spec(10_000), None).await;
    let p = h.processor();
    h.start(&["all"], SyncMode::Full).await;
    h.drain(&p).await;

    assert_equal_to_simulator(&h).await;
    let calls = h.calls();
    assert_eq!(calls["total"], minimum_full_sync_calls(&h), "{calls:?}");
    assert_eq!(calls["GET /inventory/v1/items"], 50);
    assert_eq!(calls["GET /inventory/v1/itemdetails"], 100);

    // One completed run per kind, with counts and events; cursors where Zoho has times.
    let runs = h.store.recent_runs(Some(ORG), 50).await.unwrap();
    assert_eq!(runs.len(), 11);
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Completed),
        "{runs:?}"
    );
    let items_run = runs.iter().find(|r| r.entity == "item").unwrap();
    assert_eq!(items_run.counts.fetched, 10_000);
    assert_eq!(items_run.counts.changed, 10_000);
    assert_eq!(items_run.counts.api_calls, 150);
    assert_eq!(items_run.counts.pages, 50);
    assert_eq!(h.events_of("tds.sync.started").len(), 11);
    assert_eq!(h.events_of("tds.sync.completed").len(), 11);
    assert!(h
        .store
        .cursor(ORG, EntityKind::Item)
        .await
        .unwrap()
        .is_some());
    assert!(h
        .store
        .cursor(ORG, EntityKind::Location)
        .await
        .unwrap()
        .is_none());

    // 100 random edits (old records among them: the demo's history is years long); nothing else.
    let items = h.sim_records(Collection::Items);
    let mut rng = tds_zoho_sim::Rng::new(7);
    let mut edited = BTreeSet::new();
    while edited.len() < 100 {
        edited.insert(id_of(Collection::Items, &items[rng.below(items.len())]));
    }
    for (n, id) in edited.iter().enumerate() {
        h.edit(
            Collection::Items,
            id,
            json!({"rate": 1000 + n, "description": format!("edit {n}")}),
        );
    }
    h.sim.sim.reset_stats();
    let before = h.events.events().len();
    h.start(&["item"], SyncMode::Incremental).await;
    h.drain(&p).await;

    let calls = h.calls();
    assert_eq!(calls["GET /inventory/v1/itemdetails"], 1, "{calls:?}");
    assert_eq!(calls["GET /inventory/v1/items"], 1, "{calls:?}");
    let synced: BTreeSet<String> = h.events.events()[before..]
        .iter()
        .filter(|e| e.detail_type == "tds.entity.synced" && e.detail["kind"] == "item")
        .map(|e| e.detail["zoho_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(synced, edited);
    let run = &h.store.recent_runs(Some(ORG), 1).await.unwrap()[0];
    assert_eq!(
        (run.entity.as_str(), run.mode.as_str()),
        ("item", "incremental")
    );
    assert_eq!(run.counts.changed, 100);
    assert_eq!(run.status, RunStatus::Completed);
    assert_equal_to_simulator(&h).await;
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn same_second_and_old_record_edits_are_not_missed(pool: PgPool) {
    let h = harness(pool, &small_spec(300), None).await;
    let p = h.processor();
    h.start(&["item", "invoice", "contact"], SyncMode::Full)
        .await;
    h.drain(&p).await;
    let cursor = h
        .store
        .cursor(ORG, EntityKind::Item)
        .await
        .unwrap()
        .unwrap();
    let at_cursor = tds_core::fields::format_zoho_timestamp(cursor.time);

    // The record holding the cursor edited again within the same second, and another record whose new
    // version carries exactly the cursor's second (an id on either side of the cursor's id).
    let items = h.sim_records(Collection::Items);
    let other = items
        .iter()
        .map(|r| id_of(Collection::Items, r))
        .find(|id| *id != cursor.id)
        .unwrap();
    h.set_raw(
        Collection::Items,
        &cursor.id,
        json!({"name": "Same-second rename", "last_modified_time": at_cursor}),
    );
    h.set_raw(
        Collection::Items,
        &other,
        json!({"rate": 4321.5, "last_modified_time": at_cursor}),
    );
    // The oldest invoice and contact edited now.
    let oldest = |c: Collection| {
        let mut records = h.sim_records(c);
        records.sort_by_key(|r| r["created_time"].as_str().unwrap_or_default().to_string());
        id_of(c, &records[0])
    };
    let (invoice, contact) = (oldest(Collection::Invoices), oldest(Collection::Contacts));
    h.edit(
        Collection::Invoices,
        &invoice,
        json!({"reference_number": "EDITED-OLD"}),
    );
    h.edit(
        Collection::Contacts,
        &contact,
        json!({"company_name": "Edited Old Contact"}),
    );

    h.sim.sim.reset_stats();
    h.start(&["item", "invoice", "contact"], SyncMode::Incremental)
        .await;
    h.drain(&p).await;

    let stored = h.stored(EntityKind::Item).await;
    assert_eq!(stored[&cursor.id].record["name"], "Same-second rename");
    assert_eq!(stored[&other].record["rate"].as_f64(), Some(4321.5));
    let invoices = h.stored(EntityKind::Invoice).await;
    assert_eq!(invoices[&invoice].record["reference_number"], "EDITED-OLD");
    let contacts = h.stored(EntityKind::Contact).await;
    assert_eq!(
        contacts[&contact].record["company_name"],
        "Edited Old Contact"
    );
    // Exactly those were re-fetched: one /itemdetails call, one invoice GET, one contact GET.
    let calls = h.calls();
    assert_eq!(calls["GET /inventory/v1/itemdetails"], 1, "{calls:?}");
    assert_eq!(
        calls.get("GET /books/v3/invoices/{id}"),
        Some(&1),
        "{calls:?}"
    );
    assert_eq!(
        calls.get("GET /books/v3/contacts/{id}"),
        Some(&1),
        "{calls:?}"
    );
    assert_equal_to_simulator_kinds(
        &h,
        &[EntityKind::Item, EntityKind::Invoice, EntityKind::Contact],
    )
    .await;
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_run_killed_halfway_resumes_with_no_duplicate_work_beyond_the_interrupted_page(
    pool: PgPool,
) {
    let h = harness(pool, &small_spec(2_000), None).await;
    h.start(&["item"], SyncMode::Full).await;
    // First life: the start message and four pages, then a crash in the middle of page five.
    let first = h.processor();
    for _ in 0..5 {
        let m = h.inbox.receive(1).await.unwrap().remove(0);
        let d = first
            .process(vec![Incoming {
                message_id: m.message_id.clone(),
                body: m.body.clone(),
            }])
            .await;
        assert_eq!(d[0].1, Disposition::Done);
        h.inbox.delete(&m.receipt_handle).await.unwrap();
    }
    h.sim
        .sim
        .configure(|c| c.latency = Duration::from_millis(400));
    let m = h.inbox.receive(1).await.unwrap().remove(0);
    let crashed = tokio::time::timeout(
        Duration::from_millis(600),
        first.process(vec![Incoming {
            message_id: m.message_id.clone(),
            body: m.body.clone(),
        }]),
    )
    .await;
    assert!(
        crashed.is_err(),
        "the page should have been cut off mid-way"
    );
    drop(first);
    h.sim.sim.configure(|c| c.latency = Duration::ZERO);
    // An already-done page delivered again (a duplicate) is skipped without a call.
    let done_page = SyncJob::Page {
        run_id: h.store.recent_runs(Some(ORG), 1).await.unwrap()[0].id,
        key: "page:1".into(),
        org_id: ORG.into(),
        kind: EntityKind::Item,
        mode: SyncMode::Full,
        page: 1,
    };
    h.inbox.send(done_page.to_body()).await.unwrap();

    // Second life: a new processor; the interrupted message comes back after its visibility timeout.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let second = h.processor();
    h.drain(&second).await;

    let run = &h.store.recent_runs(Some(ORG), 1).await.unwrap()[0];
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counts.pages, 10);
    assert_eq!(run.counts.fetched, 2_000);
    assert_equal_to_simulator_kinds(&h, &[EntityKind::Item]).await;
    let calls = h.calls();
    let lists = calls["GET /inventory/v1/items"];
    let details = calls["GET /inventory/v1/itemdetails"];
    // Minimum 10 + 20; at most the interrupted page's calls (1 list + 2 details) more.
    assert!((10..=11).contains(&lists), "{calls:?}");
    assert!((20..=22).contains(&details), "{calls:?}");
    assert_eq!(h.events_of("tds.sync.completed").len(), 1);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_failed_run_is_recorded_and_does_not_move_the_cursor(pool: PgPool) {
    let h = harness(pool, &small_spec(50), None).await;
    let p = h.processor();
    h.start(&["item"], SyncMode::Full).await;
    h.drain(&p).await;
    let cursor = h.store.cursor(ORG, EntityKind::Item).await.unwrap();
    h.edit(
        Collection::Items,
        &id_of(Collection::Items, &h.sim_records(Collection::Items)[0]),
        json!({"rate": 1}),
    );
    // Zoho answers every call with HTTP 200 and a non-zero code: a permanent error.
    h.sim.sim.configure(|c| c.http200_error_rate = 1.0);
    h.start(&["item"], SyncMode::Incremental).await;
    h.drain(&p).await;
    let run = &h.store.recent_runs(Some(ORG), 1).await.unwrap()[0];
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error.as_deref().unwrap_or_default().contains("page:1"),
        "{run:?}"
    );
    assert_eq!(h.events_of("tds.sync.failed").len(), 1);
    assert_eq!(h.store.cursor(ORG, EntityKind::Item).await.unwrap(), cursor);
    assert_eq!(h.dlq.peek_all().len(), 1);

    // Bad start messages are dead-lettered with a reason that names the problem.
    let before = h.dlq.peek_all().len();
    for body in [
        json!({"sync": {"type": "start", "entities": ["widgets"], "mode": "full"}}).to_string(),
        json!({"sync": {"type": "start", "entities": ["item"], "mode": "sometimes"}}).to_string(),
        json!({"sync": {"type": "start", "org_id": "999", "entities": ["item"], "mode": "full"}})
            .to_string(),
    ] {
        let d = p
            .process(vec![Incoming {
                message_id: "m".into(),
                body,
            }])
            .await;
        assert!(matches!(&d[0].1, Disposition::DeadLettered(_)), "{d:?}");
    }
    let reasons: Vec<String> = h
        .dlq
        .peek_all()
        .into_iter()
        .skip(before)
        .map(|(b, _)| b)
        .collect();
    assert!(
        reasons[0].contains("widgets") && reasons[0].contains("item"),
        "{}",
        reasons[0]
    );
    assert!(reasons[1].contains("sometimes"), "{}", reasons[1]);
    assert!(reasons[2].contains("999"), "{}", reasons[2]);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn images_are_downloaded_only_when_the_image_id_changes(pool: PgPool) {
    let dir = std::env::temp_dir().join(format!("tds-images-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let h = harness(pool, &small_spec(40), Some(&dir)).await;
    let p = h.processor();
    h.start(&["item"], SyncMode::Full).await;
    h.drain(&p).await;

    let with_images: Vec<Value> = h
        .sim_records(Collection::Items)
        .into_iter()
        .filter(|r| r["image_id"].as_str().is_some_and(|s| !s.is_empty()))
        .collect();
    assert!(!with_images.is_empty());
    assert_eq!(
        h.calls()["GET /inventory/v1/items/{id}/image"],
        with_images.len() as u64
    );
    let images = h.stored(EntityKind::ItemImage).await;
    assert_eq!(images.len(), with_images.len());
    for item in &with_images {
        let id = id_of(Collection::Items, item);
        let (content_type, bytes) = h.sim.sim.with_state(|s| {
            let img = &s.orgs[ORG].images[&id];
            (img.content_type.clone(), img.bytes.clone())
        });
        let row = &images[&id].record;
        assert_eq!(row["image_id"], item["image_id"]);
        assert_eq!(row["content_type"], content_type.as_str());
        assert_eq!(row["size_bytes"], bytes.len());
        use sha2::Digest;
        assert_eq!(row["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
        let stored = std::fs::read(dir.join(row["blob_key"].as_str().unwrap())).unwrap();
        assert_eq!(stored, bytes);
    }

    // Nothing changed: an incremental item sync downloads no image.
    h.sim.sim.reset_stats();
    h.start(&["item"], SyncMode::Incremental).await;
    h.drain(&p).await;
    assert_eq!(h.calls().get("GET /inventory/v1/items/{id}/image"), None);

    // One item's image replaced, another's removed: one download, one tombstone.
    let changed = id_of(Collection::Items, &with_images[0]);
    let removed = id_of(Collection::Items, &with_images[1]);
    h.edit(
        Collection::Items,
        &changed,
        json!({"image_id": "9990001", "image_document_id": "9990001"}),
    );
    h.edit(
        Collection::Items,
        &removed,
        json!({"image_id": "", "image_document_id": "", "image_name": ""}),
    );
    h.sim.sim.reset_stats();
    h.start(&["item"], SyncMode::Incremental).await;
    h.drain(&p).await;
    assert_eq!(h.calls()["GET /inventory/v1/items/{id}/image"], 1);
    let images = h.stored(EntityKind::ItemImage).await;
    assert_eq!(images[&changed].record["image_id"], "9990001");
    assert!(!images.contains_key(&removed));
}

// ---- stock poller ----

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn stock_poller_modes_write_only_what_changed(pool: PgPool) {
    let h = harness(pool, &small_spec(250), None).await;
    let poll = poller(&h);
    let goods = goods(&h);
    let locations: Vec<String> = goods[0]["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["location_id"].as_str().unwrap().to_string())
        .collect();

    // Full: every good's stock per location, /itemdetails per 100.
    let report = poll
        .poll(&stock_request(json!({"mode": "full"})))
        .await
        .unwrap();
    let expected_rows: usize = goods
        .iter()
        .map(|g| g["locations"].as_array().unwrap().len())
        .sum();
    assert_eq!(report[0].rows_changed, expected_rows);
    assert_eq!(report[0].items_checked, goods.len());
    assert_eq!(
        h.calls()["GET /inventory/v1/itemdetails"],
        goods.len().div_ceil(100) as u64
    );
    assert_eq!(h.events_of("tds.stock.changed").len(), expected_rows);

    // Unchanged stock: nothing written, no stock events, in every mode.
    let before = stock_rows(&h).await;
    let events_before = h.events.events().len();
    for request in [
        json!({"mode": "full"}),
        json!({"mode": "incremental"}),
        json!({"mode": "warehouse", "warehouse_id": locations[0]}),
        json!({"mode": "items", "item_ids": [id_of(Collection::Items, &goods[0])]}),
    ] {
        let report = poll.poll(&stock_request(request.clone())).await.unwrap();
        assert_eq!(report[0].rows_changed, 0, "{request}");
    }
    assert_eq!(
        stock_rows(&h).await,
        before,
        "unchanged stock must not be rewritten"
    );
    let stock_events = h.events.events()[events_before..]
        .iter()
        .filter(|e| e.detail_type.starts_with("tds.stock."))
        .count();
    assert_eq!(stock_events, 0);

    // Incremental: only items changed since the cursor (stock moves bump the item's time here).
    let a = id_of(Collection::Items, &goods[3]);
    set_stock(&h, &a, &locations[1], 77).await;
    h.sim.sim.reset_stats();
    let report = poll
        .poll(&stock_request(json!({"mode": "incremental"})))
        .await
        .unwrap();
    // The changed item, plus at most the item(s) inside the overlap window before the cursor.
    assert!((1..=2).contains(&report[0].items_checked), "{report:?}");
    assert_eq!(report[0].rows_changed, 1);
    assert_eq!(h.calls()["GET /inventory/v1/itemdetails"], 1);
    let changed = h.events_of("tds.stock.changed");
    let last = changed.last().unwrap();
    assert_eq!(
        (
            last.detail["item_id"].as_str(),
            last.detail["location_id"].as_str()
        ),
        (Some(a.as_str()), Some(locations[1].as_str()))
    );

    // Warehouse: a change at another location is not this warehouse's business; one here is.
    let b = id_of(Collection::Items, &goods[4]);
    let low_seen = h.events_of("tds.stock.low").len();
    set_stock(&h, &b, &locations[0], 3).await; // below the threshold of 5
    set_stock(&h, &b, &locations[2], 987).await;
    let report = poll
        .poll(&stock_request(
            json!({"mode": "warehouse", "warehouse_id": locations[0]}),
        ))
        .await
        .unwrap();
    assert_eq!(
        (
            report[0].items_checked,
            report[0].rows_changed,
            report[0].low_stock
        ),
        (1, 1, 1)
    );
    let rows = stock_rows(&h).await;
    assert_eq!(
        rows[&format!("{b}:{}", locations[0])].0,
        Some(Decimal::from(3))
    );
    assert_ne!(
        rows[&format!("{b}:{}", locations[2])].0,
        Some(Decimal::from(987))
    );
    let low = h.events_of("tds.stock.low");
    assert_eq!(low.len(), low_seen + 1);
    assert_eq!(low[low_seen].detail["item_id"].as_str(), Some(b.as_str()));

    // Specific items pick up the other location.
    let report = poll
        .poll(&stock_request(json!({"mode": "items", "item_ids": [b]})))
        .await
        .unwrap();
    assert_eq!(report[0].rows_changed, 1);
    assert_eq!(
        stock_rows(&h).await[&format!("{b}:{}", locations[2])].0,
        Some(Decimal::from(987))
    );

    // Low stock only: re-reads the items stored below the threshold and reports each low row.
    let lows_stored = h
        .store
        .low_stock_items(ORG, Decimal::from(5))
        .await
        .unwrap();
    assert!(lows_stored.contains(&b));
    h.sim.sim.reset_stats();
    let low_before = h.events_of("tds.stock.low").len();
    let report = poll
        .poll(&stock_request(json!({"mode": "low_stock"})))
        .await
        .unwrap();
    assert_eq!(report[0].items_checked, lows_stored.len());
    assert_eq!(report[0].rows_changed, 0);
    assert!(report[0].low_stock >= 1);
    assert_eq!(
        h.events_of("tds.stock.low").len() - low_before,
        report[0].low_stock
    );
    assert_eq!(
        h.calls()["GET /inventory/v1/itemdetails"],
        lows_stored.len().div_ceil(100) as u64
    );

    // Each poll is a recorded run.
    let runs = h.store.recent_runs(Some(ORG), 100).await.unwrap();
    assert!(runs
        .iter()
        .all(|r| r.entity == "item_stock" && r.status == RunStatus::Completed));
    assert!(runs
        .iter()
        .any(|r| r.mode == tds_core::RunMode::Stock(tds_core::StockMode::Warehouse)));
}

#[test]
fn stock_poller_input_errors_say_what_is_expected() {
    for (input, needle) in [
        (json!({}), "empty"),
        (Value::Null, "empty"),
        (json!({"mode": "sometimes"}), "sometimes"),
        (json!({"mode": "warehouse"}), "warehouse_id"),
        (json!({"mode": "items", "item_ids": []}), "item_ids"),
        (json!({"mode": "full", "colour": "red"}), "colour"),
        (json!({"mode": "low_stock", "threshold": -1}), "negative"),
    ] {
        let err = StockRequest::parse(&input).unwrap_err();
        assert!(err.contains(needle), "{input}: {err}");
    }
    for file in ["full", "incremental", "warehouse", "items", "low-stock"] {
        let path = format!(
            "{}/../events/stock-poller/{file}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        StockRequest::parse(&serde_json::from_str(&text).unwrap()).unwrap();
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn stock_poller_handler_refuses_bad_input_before_calling_zoho(pool: PgPool) {
    let h = harness(pool, &small_spec(30), None).await;
    let poll = poller(&h);
    let err = stock_poller::handle(&poll, json!({})).await.unwrap_err();
    assert!(err.contains("empty") && err.contains("low_stock"), "{err}");
    let err = stock_poller::handle(&poll, json!({"mode": "weekly"}))
        .await
        .unwrap_err();
    assert!(err.contains("weekly"), "{err}");
    let err = stock_poller::handle(&poll, json!({"mode": "full", "org_id": "42"}))
        .await
        .unwrap_err();
    assert!(err.contains("42"), "{err}");
    assert_eq!(h.calls().get("total").copied().unwrap_or(0), 0);
    assert!(h.store.recent_runs(None, 10).await.unwrap().is_empty());

    let out = stock_poller::handle(&poll, json!({"mode": "full"}))
        .await
        .unwrap();
    assert_eq!(out["mode"], "full");
    assert_eq!(out["reports"][0]["org_id"], ORG);
    assert!(out["reports"][0]["rows_changed"].as_u64().unwrap() > 0);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn sync_and_stock_events_match_their_schemas(pool: PgPool) {
    let h = harness(pool, &small_spec(30), None).await;
    let p = h.processor();
    h.start(&["item", "location"], SyncMode::Full).await;
    h.drain(&p).await;
    let goods = goods(&h);
    let item = id_of(Collection::Items, &goods[0]);
    let location = goods[0]["locations"][0]["location_id"]
        .as_str()
        .unwrap()
        .to_string();
    set_stock(&h, &item, &location, 1).await;
    poller(&h)
        .poll(&stock_request(json!({"mode": "items", "item_ids": [item]})))
        .await
        .unwrap();
    h.sim.sim.configure(|c| c.http200_error_rate = 1.0);
    h.start(&["invoice"], SyncMode::Full).await;
    h.drain(&p).await;

    let mut seen = BTreeSet::new();
    for e in h.events.events() {
        let schema = format!("{}.schema.json", e.detail_type);
        tds_tests::conforms(&schema, &e.detail);
        seen.insert(e.detail_type);
    }
    for t in [
        "tds.sync.started",
        "tds.sync.completed",
        "tds.sync.failed",
        "tds.stock.changed",
        "tds.stock.low",
        "tds.entity.synced",
        "tds.deadletter.added",
    ] {
        assert!(seen.contains(t), "{t} never published: {seen:?}");
    }
}

/// The schedules in template.yaml and the payloads in events/ are valid inputs.
#[test]
fn schedule_inputs_and_sample_payloads_are_valid() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let template = std::fs::read_to_string(format!("{root}/template.yaml")).unwrap();
    let inputs: Vec<&str> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Input: '"))
        .map(|l| l.trim_end_matches('\''))
        .collect();
    assert_eq!(inputs.len(), 6, "{inputs:?}");
    let mut modes = BTreeSet::new();
    for input in inputs {
        let v: Value = serde_json::from_str(input).unwrap();
        if let Some(job) = v.get("sync") {
            let SyncJob::Start(start) = serde_json::from_value(job.clone()).unwrap() else {
                panic!("a schedule must start syncs: {input}");
            };
            tds_sync::jobs::resolve_entities(&start.entities).unwrap();
            modes.insert(format!("sync {}", start.mode.as_str()));
        } else if v.get("mode").is_some() {
            modes.insert(format!(
                "stock {}",
                StockRequest::parse(&v).unwrap().mode.as_str()
            ));
        } else {
            let r = tds_sync::compare::CompareRequest::parse(&v).unwrap();
            modes.insert(format!("compare heal={}", r.heal));
        }
    }
    let want: BTreeSet<String> = [
        "sync full",
        "sync incremental",
        "stock full",
        "stock incremental",
        "compare heal=true",
        "compare heal=false",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(modes, want);
    for file in ["compare-and-heal", "dry-run", "snapshot", "items-only"] {
        let text =
            std::fs::read_to_string(format!("{root}/events/statistics/{file}.json")).unwrap();
        tds_sync::compare::CompareRequest::parse(&serde_json::from_str(&text).unwrap()).unwrap();
    }
    for file in [
        "incremental-all",
        "full-all",
        "full-items-one-org",
        "images-one-org",
    ] {
        let text = std::fs::read_to_string(format!("{root}/events/sync/{file}.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let job: SyncJob = serde_json::from_value(v["sync"].clone()).unwrap();
        assert!(matches!(job, SyncJob::Start(_)), "{file}");
    }
    let sqs: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/events/entity-processor/sync-start.json"))
            .unwrap(),
    )
    .unwrap();
    let body: Value = serde_json::from_str(sqs["Records"][0]["body"].as_str().unwrap()).unwrap();
    assert!(body.get("sync").is_some());
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_rate_removed_from_a_price_book_is_tombstoned(pool: PgPool) {
    let h = harness(pool, &small_spec(60), None).await;
    let p = h.processor();
    h.start(&["all"], SyncMode::Full).await;
    h.drain(&p).await;
    let book = h
        .sim_records(Collection::PriceBooks)
        .into_iter()
        .find(|b| b["pricebook_items"].as_array().is_some_and(|r| r.len() > 1))
        .unwrap();
    let book_id = id_of(Collection::PriceBooks, &book);
    let mut rates = book["pricebook_items"].as_array().unwrap().clone();
    let removed = rates.pop().unwrap();
    h.set_raw(
        Collection::PriceBooks,
        &book_id,
        json!({"pricebook_items": rates}),
    );

    h.start(&["price_book"], SyncMode::Incremental).await;
    h.drain(&p).await;
    let removed_id = format!("{book_id}:{}", removed["item_id"].as_str().unwrap());
    let row = h
        .store
        .get(EntityKind::PriceBookRate, ORG, &removed_id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.deleted_at.is_some(), "{row:?}");
    assert_equal_to_simulator(&h).await;
}
