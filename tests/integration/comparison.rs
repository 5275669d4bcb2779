//! The comparison engine against the simulator and PostgreSQL: seeded drift of every sort is named id by
//! id and nothing else; a dry run changes nothing; healing re-fetches exactly the differences and the
//! next comparison is 100 %; statistics equal values computed here from the simulator's own data.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sqlx::PgPool;
use tds_core::EntityKind;
use tds_sync::compare::{diff, CompareRequest, ComparisonReport, KindDiff, ZohoKey};
use tds_sync::SyncMode;
use tds_zoho_sim::Collection;

use crate::harness::{harness, id_of, set_stock, small_spec, Harness, ORG};

fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0)
}

fn request(v: Value) -> CompareRequest {
    CompareRequest::parse(&v).unwrap()
}

fn kind<'a>(report: &'a ComparisonReport, kind: &str) -> &'a KindDiff {
    report
        .kinds
        .iter()
        .find(|d| d.kind == kind)
        .unwrap_or_else(|| panic!("{kind} not compared"))
}

fn set(ids: &[String]) -> BTreeSet<String> {
    ids.iter().cloned().collect()
}

fn ids<const N: usize>(v: [&String; N]) -> BTreeSet<String> {
    v.into_iter().cloned().collect()
}

async fn synced(pool: PgPool, items: usize) -> (Harness, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("tds-compare-{}-{items}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let h = harness(pool, &small_spec(items), Some(&dir)).await;
    let p = h.processor();
    h.start(&["all"], SyncMode::Full).await;
    h.drain(&p).await;
    (h, dir)
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn seeded_drift_is_named_exactly_and_healing_brings_every_kind_to_100_percent(pool: PgPool) {
    let (h, _dir) = synced(pool.clone(), 120).await;
    let p = h.processor();
    let clean = h
        .comparator()
        .compare(&request(json!({"heal": false})))
        .await
        .unwrap()
        .remove(0);
    for d in &clean.kinds {
        assert_eq!(d.differences(), 0, "{d:?}");
    }
    assert_eq!(
        (clean.match_pct, clean.severity.as_str()),
        (100.0, "perfect")
    );

    // Seed drift. Stock moves here do not touch the item's time, so they show only as stock drift.
    h.sim.sim.configure(|c| c.stock_bumps_modified_time = false);
    let items: Vec<Value> = h.sim_records(Collection::Items);
    let with_image = |r: &&Value| r["image_id"].as_str().is_some_and(|s| !s.is_empty());
    let goods: Vec<&Value> = items
        .iter()
        .filter(|r| r["product_type"] != "service")
        .filter(with_image)
        .collect();
    let (m1, m2, m3) = (
        id_of(Collection::Items, goods[0]),
        id_of(Collection::Items, goods[1]),
        id_of(Collection::Items, goods[2]),
    );
    let (g1, g2) = (
        id_of(Collection::Items, goods[3]),
        id_of(Collection::Items, goods[4]),
    );
    let (s1, s2) = (
        id_of(Collection::Items, goods[5]),
        id_of(Collection::Items, goods[6]),
    );
    // Missing locally: rows lost from the database.
    sqlx::query("DELETE FROM items WHERE zoho_id = ANY($1)")
        .bind(vec![m1.clone(), m2.clone(), m3.clone()])
        .execute(&pool)
        .await
        .unwrap();
    let invoices = h.sim_records(Collection::Invoices);
    let (i1, i2) = (
        id_of(Collection::Invoices, &invoices[0]),
        id_of(Collection::Invoices, &invoices[1]),
    );
    sqlx::query("DELETE FROM invoices WHERE zoho_id = ANY($1)")
        .bind(vec![i1.clone(), i2.clone()])
        .execute(&pool)
        .await
        .unwrap();
    // Deleted in Zoho without a webhook (with their stock rows and images).
    h.sim.sim.with_state(|s| {
        let org = s.orgs.get_mut(ORG).unwrap();
        for id in [&g1, &g2] {
            org.records.get_mut(&Collection::Items).unwrap().remove(id);
            org.images.remove(id);
        }
    });
    // Stale: contacts edited in Zoho, the webhooks lost.
    let contacts = h.sim_records(Collection::Contacts);
    let (c1, c2) = (
        id_of(Collection::Contacts, &contacts[0]),
        id_of(Collection::Contacts, &contacts[1]),
    );
    h.edit(
        Collection::Contacts,
        &c1,
        json!({"company_name": "Drifted One"}),
    );
    h.edit(
        Collection::Contacts,
        &c2,
        json!({"company_name": "Drifted Two"}),
    );
    // Stock mismatches at one location.
    let location = goods[5]["locations"][0]["location_id"]
        .as_str()
        .unwrap()
        .to_string();
    set_stock(&h, &s1, &location, 901).await;
    set_stock(&h, &s2, &location, 902).await;
    // A price-book rate changed.
    let books = h.sim_records(Collection::PriceBooks);
    let book = books
        .iter()
        .find(|b| {
            b["pricebook_items"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        })
        .unwrap();
    let book_id = id_of(Collection::PriceBooks, book);
    let mut rates = book["pricebook_items"].as_array().unwrap().clone();
    rates[0]["pricebook_rate"] = json!(12345.67);
    let rate_item = rates[0]["item_id"].as_str().unwrap().to_string();
    h.set_raw(
        Collection::PriceBooks,
        &book_id,
        json!({"pricebook_items": rates}),
    );

    let counts_before: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap();
    let runs_before = h.store.recent_runs(Some(ORG), 100).await.unwrap().len();

    // Dry run: exactly those ids, and nothing changes.
    let dry = h.comparator()
        .compare(&request(json!({"dry_run": true, "thresholds": {"item": 0, "invoice": 0, "contact": 0, "item_stock": 0, "item_image": 0, "price_book_rate": 0}})))
        .await
        .unwrap()
        .remove(0);
    let item = kind(&dry, "item");
    assert_eq!(set(&item.missing_locally), ids([&m1, &m2, &m3]));
    assert_eq!(set(&item.deleted_in_zoho), ids([&g1, &g2]));
    assert!(
        item.stale.is_empty() && item.mismatched.is_empty(),
        "{item:?}"
    );
    let invoice = kind(&dry, "invoice");
    assert_eq!(set(&invoice.missing_locally), ids([&i1, &i2]));
    assert_eq!(invoice.differences(), 2);
    let contact = kind(&dry, "contact");
    assert_eq!(set(&contact.stale), ids([&c1, &c2]));
    assert_eq!(contact.differences(), 2);
    let stock = kind(&dry, "item_stock");
    let row = |item: &str| format!("{item}:{location}");
    assert_eq!(
        set(&stock.mismatched),
        [row(&s1), row(&s2)].into_iter().collect()
    );
    let gone_rows: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("SELECT zoho_id FROM item_stock WHERE item_id = ANY($1)")
            .bind(vec![g1.clone(), g2.clone()])
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert!(!gone_rows.is_empty());
    assert_eq!(set(&stock.deleted_in_zoho), gone_rows);
    assert!(stock.missing_locally.is_empty());
    let rate = kind(&dry, "price_book_rate");
    assert_eq!(rate.mismatched, vec![format!("{book_id}:{rate_item}")]);
    assert_eq!(rate.differences(), 1);
    let images = kind(&dry, "item_image");
    assert_eq!(set(&images.deleted_in_zoho), ids([&g1, &g2]));
    assert_eq!(images.differences(), 2);
    for other in [
        "location",
        "price_book",
        "sales_order",
        "bill",
        "customer_payment",
        "credit_note",
        "vendor_payment",
        "purchase_order",
    ] {
        assert_eq!(kind(&dry, other).differences(), 0, "{other}");
    }
    assert!(dry.match_pct < 100.0);
    assert!(dry.dry_run);
    assert!(dry.heal.iter().all(|a| a.run_id.is_none()));
    let planned: BTreeMap<&str, (usize, usize)> = dry
        .heal
        .iter()
        .map(|a| (a.kind.as_str(), (a.refetch.len(), a.tombstone.len())))
        .collect();
    // What the listing lacks is re-fetched, not tombstoned on its word: the re-fetch confirms it.
    assert_eq!(planned["item"], (5, 0));
    assert_eq!(planned["item_stock"], (2, gone_rows.len()));
    assert_eq!(planned["price_book_rate"], (1, 0));
    let counts_after: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(counts_after, counts_before, "a dry run changes nothing");
    assert_eq!(
        h.store.recent_runs(Some(ORG), 100).await.unwrap().len(),
        runs_before
    );
    assert!(h.inbox.peek_all().is_empty());

    // Heal: re-fetch exactly the differences (through the inbox), tombstone what Zoho deleted.
    h.sim.sim.reset_stats();
    let healed = h.comparator()
        .compare(&request(json!({"thresholds": {"item": 0, "invoice": 0, "contact": 0, "item_stock": 0, "item_image": 0, "price_book_rate": 0}})))
        .await
        .unwrap()
        .remove(0);
    assert!(healed.heal.iter().any(|a| a.run_id.is_some()));
    h.drain(&p).await;
    let calls = h.calls();
    // The comparison reads in one /itemdetails call the items whose totals differ or that its list
    // lacks, with the rotating sample; the heal re-fetches items in one /itemdetails call each for the
    // item heal and the stock heal, 2 invoice GETs, 2 contact GETs, 1 price-book GET.
    assert_eq!(calls["GET /inventory/v1/itemdetails"], 3, "{calls:?}");
    assert_eq!(calls["GET /books/v3/invoices/{id}"], 2, "{calls:?}");
    assert_eq!(calls["GET /books/v3/contacts/{id}"], 2, "{calls:?}");

    let after = h
        .comparator()
        .compare(&request(json!({"heal": false})))
        .await
        .unwrap()
        .remove(0);
    for d in &after.kinds {
        assert_eq!(d.differences(), 0, "{d:?}");
        assert_eq!(d.match_pct(), 100.0);
    }
    assert_eq!(after.severity, "perfect");

    // Every report and its statistics are recorded; events say what happened.
    let reports: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tds_comparison_reports WHERE org_id = $1")
            .bind(ORG)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(reports, 4);
    let history: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tds_statistics_history WHERE org_id = $1")
            .bind(ORG)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(history >= 4 * 2 * 6, "{history}");
    assert_eq!(h.events_of("tds.stats.compared").len(), 4);
    let alerts = h.events_of("tds.alert.raised");
    assert!(
        !alerts.is_empty(),
        "drift below 95 % in some kind raises an alert"
    );
    // The perfect comparison resolved the drift alert and said so, once.
    let resolved = h.events_of("tds.alert.resolved");
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0].detail["kind"], "drift");
    assert!(h.store.open_alerts().await.unwrap().is_empty());
    for e in h
        .events_of("tds.stats.compared")
        .iter()
        .chain(&alerts)
        .chain(&resolved)
    {
        tds_tests::conforms(&format!("{}.schema.json", e.detail_type), &e.detail);
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn statistics_equal_values_computed_from_the_simulator(pool: PgPool) {
    let (h, _dir) = synced(pool, 150).await;
    h.sim.sim.reset_stats();
    let report = h
        .comparator()
        .compare(&request(json!({"heal": false})))
        .await
        .unwrap()
        .remove(0);

    // The comparison's cost: one list call per 200 records of each kind, one detail GET per price
    // book, and for stock one `/itemdetails` call per 100 items of the rotating sample (no item's
    // totals differ on an equal database).
    let n = |c: Collection| h.sim_records(c).len() as u64;
    let lists: u64 = [
        Collection::Items,
        Collection::Locations,
        Collection::PriceBooks,
        Collection::Contacts,
        Collection::Invoices,
        Collection::SalesOrders,
        Collection::Bills,
        Collection::CustomerPayments,
        Collection::CreditNotes,
        Collection::VendorPayments,
        Collection::PurchaseOrders,
    ]
    .into_iter()
    .map(|c| n(c).div_ceil(200).max(1))
    .sum();
    let goods = h
        .sim_records(Collection::Items)
        .iter()
        .filter(|r| r["product_type"] != "service")
        .count();
    let sample = goods.div_ceil(tds_sync::compare::STOCK_SAMPLE_CYCLES);
    let expected_calls = lists + sample.div_ceil(100) as u64 + n(Collection::PriceBooks);
    assert_eq!(report.api_calls as u64, expected_calls);
    assert_eq!(h.calls()["total"], expected_calls);

    // Independently from the simulator's records.
    let items = h.sim_records(Collection::Items);
    let active = items.iter().filter(|r| r["status"] == "active").count();
    let with_images = items
        .iter()
        .filter(|r| r["image_id"].as_str().is_some_and(|s| !s.is_empty()))
        .count();
    let rates: Vec<f64> = items.iter().filter_map(|r| r["rate"].as_f64()).collect();
    let average = (rates.iter().sum::<f64>() / rates.len() as f64 * 100.0).round() / 100.0;
    let goods: Vec<&Value> = items
        .iter()
        .filter(|r| r["product_type"] != "service")
        .collect();
    let on_hand = |r: &Value| -> f64 {
        r["locations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| num(&l["location_stock_on_hand"]))
            .sum()
    };
    let in_stock = goods.iter().filter(|r| on_hand(r) > 0.0).count();
    let contacts = h.sim_records(Collection::Contacts);
    let customers: Vec<&Value> = contacts
        .iter()
        .filter(|c| c["contact_type"] == "customer")
        .collect();
    let individuals = customers
        .iter()
        .filter(|c| c["customer_sub_type"] == "individual")
        .count();
    let vendors = contacts
        .iter()
        .filter(|c| c["contact_type"] == "vendor")
        .count();
    let mapped: BTreeSet<String> = h
        .sim_records(Collection::PriceBooks)
        .iter()
        .flat_map(|b| b["pricebook_items"].as_array().cloned().unwrap_or_default())
        .map(|r| r["item_id"].as_str().unwrap().to_string())
        .collect();
    let mut by_warehouse: BTreeMap<String, f64> = BTreeMap::new();
    for g in &goods {
        for l in g["locations"].as_array().unwrap() {
            *by_warehouse
                .entry(l["location_id"].as_str().unwrap().into())
                .or_default() += num(&l["location_stock_on_hand"]);
        }
    }

    let s = &report.statistics;
    for side in [&s["items"].zoho, &s["items"].database] {
        assert_eq!(side["total"], items.len());
        assert_eq!(side["active"], active);
        assert_eq!(side["inactive"], items.len() - active);
        assert_eq!(side["with_images"], with_images);
        assert_eq!(side["average_price"].as_f64(), Some(average));
    }
    assert_eq!(s["items"].zoho, s["items"].database);
    for side in [&s["stock"].zoho, &s["stock"].database] {
        assert_eq!(side["items_in_stock"], in_stock);
        assert_eq!(side["out_of_stock"], goods.len() - in_stock);
        for (loc, q) in &by_warehouse {
            assert_eq!(
                side["by_warehouse"][loc].as_f64(),
                Some((q * 100.0).round() / 100.0),
                "{loc}"
            );
        }
    }
    for side in [&s["customers"].zoho, &s["customers"].database] {
        assert_eq!(side["total"], customers.len());
        assert_eq!(side["by_type"]["individual"], individuals);
    }
    // Countries and credit limits are only on Zoho's detail GET: null on the Zoho side, not a guess.
    assert!(s["customers"].zoho["by_country"].is_null());
    assert!(s["customers"].database["by_country"].is_object());
    assert_eq!(s["vendors"].zoho["total"], vendors);
    assert_eq!(s["vendors"].database["total"], vendors);
    assert_eq!(s["price_lists"].zoho["items_mapped"], mapped.len());
    assert_eq!(s["price_lists"].database["items_mapped"], mapped.len());
    assert_eq!(s["images"].zoho["total"], with_images);
    assert_eq!(s["images"].database["total"], with_images);
    assert_eq!(s["transactions"].zoho["invoice"], n(Collection::Invoices));
    assert_eq!(s["transactions"].database, s["transactions"].zoho);
}

#[test]
fn the_in_memory_diff_sorts_out_every_case() {
    let t = |s: i64| chrono::DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap();
    let zoho = vec![
        ZohoKey {
            id: "a".into(),
            modified: Some(t(10)),
        }, // matched
        ZohoKey {
            id: "b".into(),
            modified: Some(t(20)),
        }, // stale
        ZohoKey {
            id: "c".into(),
            modified: Some(t(10)),
        }, // missing
        ZohoKey {
            id: "e".into(),
            modified: Some(t(50)),
        }, // tombstoned locally, newer in Zoho
        ZohoKey {
            id: "a".into(),
            modified: Some(t(10)),
        }, // duplicate listing
    ];
    let v = |id: &str, at: i64, deleted: Option<i64>| tds_store::RowVersion {
        zoho_id: id.into(),
        last_modified_time: t(at),
        deleted_at: deleted.map(t),
    };
    let local = vec![
        v("a", 10, None),
        v("b", 10, None),
        v("d", 10, None),
        v("e", 10, Some(30)),
        v("f", 10, Some(30)),
    ];
    let d = diff("item", &zoho, &local);
    assert_eq!(d.matched, 1);
    assert_eq!(d.stale, ["b"]);
    assert_eq!(d.missing_locally, ["c", "e"]);
    assert_eq!(d.deleted_in_zoho, ["d"]);
    assert_eq!((d.zoho_total, d.local_total), (4, 3));
    assert_eq!(tds_sync::compare::severity(99.0), "perfect");
    assert_eq!(tds_sync::compare::severity(97.0), "good");
    assert_eq!(tds_sync::compare::severity(90.0), "warning");
    assert_eq!(tds_sync::compare::severity(89.9), "critical");
    assert!(CompareRequest::parse(&json!({"entities": ["widgets"]}))
        .unwrap_err()
        .contains("widgets"));
    assert!(CompareRequest::parse(&json!({"thresholds": {"gizmo": 1}}))
        .unwrap_err()
        .contains("gizmo"));
    assert!(CompareRequest::parse(&json!({"colour": 1}))
        .unwrap_err()
        .contains("colour"));
    let _ = EntityKind::Item;
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn statistics_handler_refuses_bad_input_and_summarises_reports(pool: PgPool) {
    let (h, _dir) = synced(pool, 40).await;
    let p = h.comparator();
    h.sim.sim.reset_stats();
    for (input, needle) in [
        (json!({"entities": ["widgets"]}), "widgets"),
        (json!({"heal": "sometimes"}), "heal"),
        (json!({"org_id": "42"}), "42"),
    ] {
        let err = statistics::handle(&p, input.clone()).await.unwrap_err();
        assert!(err.contains(needle), "{input}: {err}");
    }
    assert_eq!(h.calls().get("total").copied().unwrap_or(0), 0);
    let out = statistics::handle(&p, json!({})).await.unwrap();
    let r = &out["reports"][0];
    assert_eq!(r["org_id"], ORG);
    assert_eq!(r["severity"], "perfect");
    assert!(r["kinds"].as_array().unwrap().len() >= 11);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_wrong_tombstone_is_healed_and_a_confirmed_deletion_is_kept(pool: PgPool) {
    let (h, _dir) = synced(pool.clone(), 30).await;
    let p = h.processor();
    let two: Vec<String> =
        sqlx::query_scalar("SELECT zoho_id FROM invoices ORDER BY zoho_id LIMIT 2")
            .fetch_all(&pool)
            .await
            .unwrap();
    let (wrongly, recently) = (two[0].clone(), two[1].clone());
    // Two invoices Zoho still has, tombstoned here: one an hour ago (say a listing shifted under a
    // deletion), one just now (which a read from before it could not overrule).
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    for (id, at) in [(&wrongly, hour_ago), (&recently, chrono::Utc::now())] {
        h.store
            .tombstone(
                tds_core::EntityKind::Invoice,
                &[tds_store::Tombstone {
                    org_id: ORG.into(),
                    zoho_id: id.clone(),
                    deleted_at: at,
                }],
            )
            .await
            .unwrap();
    }
    let compare_invoices = || async {
        h.comparator()
            .compare(&request(
                json!({"entities": ["invoice"], "thresholds": {"invoice": 0}}),
            ))
            .await
            .unwrap()
            .remove(0)
    };
    let report = compare_invoices().await;
    assert_eq!(
        set(&kind(&report, "invoice").missing_locally),
        ids([&wrongly, &recently])
    );
    h.drain(&p).await;
    let deleted = |id: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
                "SELECT deleted_at FROM invoices WHERE zoho_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    // The heal's fresh read from Zoho restores the old tombstone; the young one stands (the read
    // may predate it) until it is older than RESTORE_AFTER.
    assert_eq!(deleted(wrongly.clone()).await, None, "restored");
    assert!(deleted(recently.clone()).await.is_some());

    // An invoice Zoho really deleted: the comparison lists it as deleted in Zoho, and the heal's
    // re-fetch (404) is what tombstones it.
    let gone = two[0].clone();
    h.sim.sim.with_state(|s| {
        let org = s.orgs.get_mut(ORG).unwrap();
        org.records
            .get_mut(&Collection::Invoices)
            .unwrap()
            .remove(&gone);
    });
    let report = compare_invoices().await;
    assert!(kind(&report, "invoice").deleted_in_zoho.contains(&gone));
    let plan = report.heal.iter().find(|a| a.kind == "invoice").unwrap();
    assert!(
        plan.refetch.contains(&gone) && plan.tombstone.is_empty(),
        "{plan:?}"
    );
    assert_eq!(
        deleted(gone.clone()).await,
        None,
        "not tombstoned before Zoho confirms"
    );
    h.drain(&p).await;
    assert!(deleted(gone).await.is_some(), "tombstoned after the 404");
}

/// A record Zoho refuses for good (here an id that is not a Zoho id) is recorded on its run as failed
/// and skipped: the other records of the job are written and the run completes.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_record_zoho_refuses_is_skipped_and_counted_not_fatal(pool: PgPool) {
    let h = harness(pool.clone(), &small_spec(10), None).await;
    let p = h.processor();
    let contacts = h.sim_records(Collection::Contacts);
    let good = id_of(Collection::Contacts, &contacts[0]);
    let run_id = h
        .app()
        .runner()
        .unwrap()
        .start_heal_run(
            ORG,
            EntityKind::Contact,
            &[good.clone(), "not-an-id".into()],
        )
        .await
        .unwrap();
    h.drain(&p).await;
    let run = h.store.run(run_id).await.unwrap().unwrap();
    assert_eq!(run.status, tds_store::RunStatus::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 1, "{run:?}");
    assert!(h.stored(EntityKind::Contact).await.contains_key(&good));
}

/// After a comparison, webhook receipts applied longer ago than the retention (30 days by default)
/// are deleted and recent ones kept; a dry run deletes nothing.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_comparison_deletes_receipts_past_their_retention(pool: PgPool) {
    let (h, _dir) = synced(pool.clone(), 10).await;
    sqlx::query(
        "INSERT INTO tds_webhook_receipts (org_id, entity, zoho_id, action, dedupe_key, received_at,
                                           outcome, processed_at)
         VALUES ($1, 'item', '1', 'edited', 'old', now() - interval '40 days', 'updated',
                 now() - interval '40 days'),
                ($1, 'item', '1', 'edited', 'recent', now() - interval '2 days', 'updated',
                 now() - interval '2 days')",
    )
    .bind(ORG)
    .execute(&pool)
    .await
    .unwrap();
    let keys = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT dedupe_key FROM tds_webhook_receipts ORDER BY dedupe_key",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    h.comparator()
        .compare(&request(json!({"dry_run": true})))
        .await
        .unwrap();
    assert_eq!(keys().await, ["old", "recent"], "a dry run deletes nothing");
    h.comparator()
        .compare(&request(json!({"heal": false})))
        .await
        .unwrap();
    assert_eq!(keys().await, ["recent"]);
}
