//! TDS's verdict about itself, against every simulator profile (`tds_zoho_sim::Profile::all`: the
//! behaviours ZOHO.md marks inferred or disputed, flipped): an equal database compares 100 % with no
//! alert and the simulator's per-warehouse stock; seeded drift of every sort is named by id and
//! nothing else; deletions are applied whatever the heal thresholds; one heal brings the database back
//! to 100 % with exactly the re-fetches the differences need; a full sync tombstones exactly what
//! Zoho deleted.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sqlx::PgPool;
use tds_sync::compare::{CompareRequest, ComparisonReport};
use tds_sync::SyncMode;
use tds_zoho_sim::{Collection, Profile};

use crate::harness::{goods, harness, id_of, set_stock, small_spec, Harness, KINDS, ORG};

fn request(v: Value) -> CompareRequest {
    CompareRequest::parse(&v).unwrap()
}

/// Every difference of a report, as `kind/sort/id`.
fn differences(report: &ComparisonReport) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in &report.kinds {
        for (sort, ids) in [
            ("missing", &d.missing_locally),
            ("deleted", &d.deleted_in_zoho),
            ("stale", &d.stale),
            ("mismatched", &d.mismatched),
        ] {
            out.extend(ids.iter().map(|id| format!("{}/{sort}/{id}", d.kind)));
        }
    }
    out
}

/// Zoho's stock per location of the simulator's goods (its records keep the `locations[]` shape).
fn sim_by_warehouse(h: &Harness) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for item in goods(h) {
        for l in item["locations"].as_array().into_iter().flatten() {
            let qty = l["location_stock_on_hand"]
                .as_f64()
                .or_else(|| l["location_stock_on_hand"].as_str()?.parse().ok())
                .unwrap_or(0.0);
            *out.entry(l["location_id"].as_str().unwrap().to_string())
                .or_insert(0.0) += qty;
        }
    }
    out
}

fn by_warehouse(stats: &Value) -> BTreeMap<String, f64> {
    stats["by_warehouse"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect()
}

/// Ids tombstoned in each entity table.
async fn tombstoned(h: &Harness) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, kind, _) in KINDS {
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT zoho_id FROM {} WHERE org_id = $1 AND deleted_at IS NOT NULL",
            kind.table()
        ))
        .bind(ORG)
        .fetch_all(h.store.pool())
        .await
        .unwrap();
        out.extend(ids.into_iter().map(|id| format!("{kind}/{id}")));
    }
    out
}

/// Deletes, without a webhook, the first record of every kind but locations (an item's stock
/// refers to its locations); returns `kind/id` of each.
fn delete_one_of_each(h: &Harness) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (c, kind, _) in KINDS {
        if c == Collection::Locations {
            continue;
        }
        let records = if c == Collection::Items {
            goods(h)
        } else {
            h.sim_records(c)
        };
        let id = id_of(c, &records[0]);
        h.sim.sim.delete(ORG, c, &id).unwrap();
        out.insert(format!("{kind}/{id}"));
    }
    out
}

async fn check(pool: PgPool, profile: Profile) {
    let name = profile.name.clone();
    let dir = std::env::temp_dir().join(format!("tds-profile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let h = harness(pool.clone(), &small_spec(60), Some(&dir)).await;
    h.sim.sim.set_profile(ORG, profile);
    let p = h.processor();
    h.start(&["all"], SyncMode::Full).await;
    h.drain(&p).await;

    // An equal database: 100 %, perfect, no alert; the simulator's stock per warehouse both sides.
    let every_item = json!({"heal": false, "stock_sample_cycles": 1});
    let clean = h.comparator().compare(&request(every_item.clone())).await;
    let clean = clean.unwrap().remove(0);
    assert_eq!(differences(&clean), BTreeSet::new(), "{name}");
    assert_eq!(
        (clean.match_pct, clean.severity.as_str()),
        (100.0, "perfect"),
        "{name}"
    );
    assert!(h.events_of("tds.alert.raised").is_empty(), "{name}");
    let stock = &clean.statistics["stock"];
    let expected = sim_by_warehouse(&h);
    assert!(!expected.is_empty());
    assert_eq!(by_warehouse(&stock.database), expected, "{name}: database");
    assert_eq!(by_warehouse(&stock.zoho), expected, "{name}: zoho");

    // Seed drift: items edited, stock moved between warehouses (totals kept), a total changed, one
    // record of every kind deleted (fewer than any heal threshold), a future-dated row.
    h.sim.sim.configure(|c| c.stock_bumps_modified_time = false);
    let g = goods(&h);
    let (e1, e2) = (
        id_of(Collection::Items, &g[1]),
        id_of(Collection::Items, &g[2]),
    );
    for id in [&e1, &e2] {
        h.edit(Collection::Items, id, json!({"rate": 777}));
    }
    let location = |item: &Value, n: usize| -> (String, i64) {
        let l = &item["locations"][n];
        let qty = l["location_stock_on_hand"]
            .as_f64()
            .or_else(|| l["location_stock_on_hand"].as_str()?.parse().ok())
            .unwrap() as i64;
        (l["location_id"].as_str().unwrap().to_string(), qty)
    };
    let moved = id_of(Collection::Items, &g[3]);
    let ((from, from_qty), (to, to_qty)) = (location(&g[3], 0), location(&g[3], 1));
    set_stock(&h, &moved, &from, from_qty - 4).await;
    set_stock(&h, &moved, &to, to_qty + 4).await;
    let changed = id_of(Collection::Items, &g[4]);
    let (at, qty) = location(&g[4], 0);
    set_stock(&h, &changed, &at, qty + 9).await;
    let deleted_item = id_of(Collection::Items, &g[0]);
    let deleted = delete_one_of_each(&h);
    let invoices = h.sim_records(Collection::Invoices);
    let future = id_of(Collection::Invoices, &invoices[1]);
    sqlx::query(
        "UPDATE invoices SET last_modified_time = now() + interval '1 day' WHERE zoho_id = $1",
    )
    .bind(&future)
    .execute(&pool)
    .await
    .unwrap();

    // Named by id, and nothing else.
    let stored_rows = |item: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT zoho_id FROM item_stock WHERE item_id = $1 AND deleted_at IS NULL",
            )
            .bind(item)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let book = deleted
        .iter()
        .find_map(|k| k.strip_prefix("price_book/"))
        .unwrap()
        .to_string();
    let book_rates: Vec<String> = sqlx::query_scalar(
        "SELECT zoho_id FROM price_book_rates WHERE pricebook_id = $1 AND deleted_at IS NULL",
    )
    .bind(&book)
    .fetch_all(&pool)
    .await
    .unwrap();
    let image_of_deleted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM item_images WHERE zoho_id = $1")
            .bind(&deleted_item)
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut expected: BTreeSet<String> = deleted
        .iter()
        .map(|k| {
            let (kind, id) = k.split_once('/').unwrap();
            format!("{kind}/deleted/{id}")
        })
        .collect();
    expected.extend([
        format!("item/stale/{e1}"),
        format!("item/stale/{e2}"),
        format!("invoice/stale/{future}"),
        format!("item_stock/mismatched/{moved}:{from}"),
        format!("item_stock/mismatched/{moved}:{to}"),
        format!("item_stock/mismatched/{changed}:{at}"),
    ]);
    for row in stored_rows(deleted_item.clone()).await {
        expected.insert(format!("item_stock/deleted/{row}"));
    }
    for rate in &book_rates {
        expected.insert(format!("price_book_rate/deleted/{rate}"));
    }
    if image_of_deleted > 0 {
        expected.insert(format!("item_image/deleted/{deleted_item}"));
    }
    let drifted = h.comparator().compare(&request(every_item.clone())).await;
    let drifted = drifted.unwrap().remove(0);
    assert_eq!(differences(&drifted), expected, "{name}");

    // At the default thresholds every difference is below them: the deletions are still confirmed
    // with Zoho and tombstoned; nothing else is re-fetched.
    let before = tombstoned(&h).await;
    let below = h
        .comparator()
        .compare(&request(json!({"stock_sample_cycles": 1})))
        .await;
    below.unwrap();
    h.drain(&p).await;
    let now_tombstoned: BTreeSet<String> =
        tombstoned(&h).await.difference(&before).cloned().collect();
    assert_eq!(
        now_tombstoned, deleted,
        "{name}: deletions applied below every threshold"
    );

    // One heal at thresholds 0: exactly the re-fetches the differences need.
    h.sim.sim.reset_stats();
    let zero: BTreeMap<&str, usize> = [
        "item",
        "invoice",
        "contact",
        "item_stock",
        "item_image",
        "price_book_rate",
        "price_book",
    ]
    .into_iter()
    .map(|k| (k, 0))
    .collect();
    let heal = json!({"stock_sample_cycles": 1, "thresholds": zero});
    h.comparator().compare(&request(heal)).await.unwrap();
    h.drain(&p).await;
    let calls = h.calls();
    let get = |endpoint: &str| calls.get(endpoint).copied().unwrap_or(0);
    // The comparison reads every item's locations (cycles 1: one /itemdetails call for these
    // goods); the heal re-reads the two edited items and the two items whose stock differs (one
    // call each) and the future-dated invoice; nothing else is asked by id.
    assert_eq!(get("GET /inventory/v1/itemdetails"), 3, "{name}: {calls:?}");
    assert_eq!(get("GET /books/v3/invoices/{id}"), 1, "{name}: {calls:?}");
    for other in [
        "contacts",
        "salesorders",
        "bills",
        "creditnotes",
        "purchaseorders",
        "customerpayments",
        "vendorpayments",
    ] {
        assert_eq!(
            get(&format!("GET /books/v3/{other}/{{id}}")),
            0,
            "{name}: {other}: {calls:?}"
        );
    }
    let after = h.comparator().compare(&request(every_item)).await;
    let after = after.unwrap().remove(0);
    assert_eq!(differences(&after), BTreeSet::new(), "{name}");
    assert_eq!(
        (after.match_pct, after.severity.as_str()),
        (100.0, "perfect"),
        "{name}"
    );
    assert!(
        h.store.open_alerts().await.unwrap().is_empty(),
        "{name}: drift alert resolved"
    );

    // A full sync after deletions in Zoho tombstones exactly the deleted records.
    let before = tombstoned(&h).await;
    let deleted = delete_one_of_each(&h);
    h.start(&["all"], SyncMode::Full).await;
    h.drain(&p).await;
    let now_tombstoned: BTreeSet<String> =
        tombstoned(&h).await.difference(&before).cloned().collect();
    assert_eq!(now_tombstoned, deleted, "{name}: full sync");
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn documented_zoho(pool: PgPool) {
    check(pool, Profile::all().remove(0)).await;
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn warehouses_with_the_location_filter_ignored(pool: PgPool) {
    check(pool, Profile::all().remove(1)).await;
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn locations_with_the_location_filter_ignored(pool: PgPool) {
    check(pool, Profile::all().remove(2)).await;
}
