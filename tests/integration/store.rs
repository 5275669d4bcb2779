//! The version-gated store on a real PostgreSQL: convergence under any delivery order, idempotence,
//! stale-version reporting, tombstones, stock versioned by observation, reads.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use tds_core::{Contact, Document, EntityKind, Item, ItemImage, Location, PriceBook, VersionedRow};
use tds_store::upsert::Tombstone;
use tds_store::{Outcome, Store};
use tds_tests::{base_time, sample_item, versioned_item, zoho_time, Rng};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../shared/core/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Everything in a table but `synced_at`, in key order: the state a test compares.
async fn snapshot(pool: &PgPool, table: &str) -> Vec<Value> {
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t) - 'synced_at' FROM {table} t ORDER BY org_id, zoho_id"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

fn versions_of(n: usize, count: u32) -> Vec<Value> {
    let mut rng = Rng::new(n as u64 + 1);
    (0..count)
        .map(|rev| {
            sample_item(
                &mut rng,
                n,
                rev,
                base_time() + Duration::minutes(i64::from(rev) * 7),
            )
        })
        .collect()
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn every_entity_kind_writes_its_typed_columns(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let now = Utc::now();
    let org = "org-1";
    let item = Item::parse(fixture("item_detail_locations.json")["item"].clone()).unwrap();
    let stock: Vec<_> = item
        .stock_rows()
        .into_iter()
        .map(|s| VersionedRow::new(org, s, now))
        .collect();
    let catalog = fixture("catalog.json");
    let book = PriceBook::parse(catalog["pricebook"].clone()).unwrap();
    let rates: Vec<_> = book
        .rates
        .clone()
        .unwrap()
        .into_iter()
        .map(|r| VersionedRow::new(org, r, now))
        .collect();
    let image = ItemImage::new(
        item.item_id.clone(),
        "4815000000044250",
        Some("bag_small.jpg".into()),
        Some("image/jpeg".into()),
        b"\xff\xd8\xff\xe0 fake jpeg",
        "org-1/items/4815000000044208/4815000000044250.jpg",
    );

    assert_eq!(
        store
            .upsert(&[VersionedRow::new(org, item, now)])
            .await
            .unwrap()
            .changed(),
        1
    );
    assert_eq!(store.upsert(&stock).await.unwrap().changed(), 3);
    assert_eq!(
        store
            .upsert(&[VersionedRow::new(org, book, now)])
            .await
            .unwrap()
            .changed(),
        1
    );
    assert_eq!(store.upsert(&rates).await.unwrap().changed(), 2);
    assert_eq!(
        store
            .upsert(&[VersionedRow::new(org, image, now)])
            .await
            .unwrap()
            .changed(),
        1
    );
    for key in ["location", "warehouse"] {
        let loc = Location::parse(catalog[key].clone()).unwrap();
        assert_eq!(
            store
                .upsert(&[VersionedRow::new(org, loc, now)])
                .await
                .unwrap()
                .changed(),
            1
        );
    }
    for key in ["contact", "vendor"] {
        let c = Contact::parse(catalog[key].clone()).unwrap();
        assert_eq!(
            store
                .upsert(&[VersionedRow::new(org, c, now)])
                .await
                .unwrap()
                .changed(),
            1
        );
    }
    let transactions = fixture("transactions.json");
    for (key, kind) in [
        ("invoice", EntityKind::Invoice),
        ("salesorder", EntityKind::SalesOrder),
        ("bill", EntityKind::Bill),
        ("customerpayment", EntityKind::CustomerPayment),
        ("creditnote", EntityKind::CreditNote),
        ("vendorpayment", EntityKind::VendorPayment),
        ("purchaseorder", EntityKind::PurchaseOrder),
    ] {
        let doc = Document::parse(kind, transactions[key].clone()).unwrap();
        let report = store
            .upsert(&[VersionedRow::new(org, doc, now)])
            .await
            .unwrap();
        assert_eq!(report.kind, kind);
        assert_eq!(report.changed(), 1, "{kind}");
    }

    // Typed columns hold the parsed values, quirks resolved.
    let check = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        check("SELECT rate::text FROM items").await.as_deref(),
        Some("6")
    );
    assert_eq!(
        check("SELECT reorder_level::text FROM items")
            .await
            .as_deref(),
        Some("3")
    );
    assert_eq!(
        check("SELECT last_modified_time::text FROM items")
            .await
            .as_deref(),
        Some("2024-02-01 08:54:54+00")
    );
    assert_eq!(
        check("SELECT string_agg(location_id || '=' || coalesce(stock_on_hand::text, 'null'), ',' ORDER BY location_id) FROM item_stock")
            .await
            .as_deref(),
        Some("4815000000070001=3,4815000000070002=2,4815000000070003=null")
    );
    assert_eq!(
        check("SELECT string_agg(country, ',' ORDER BY zoho_id) FROM locations")
            .await
            .as_deref(),
        Some("Canada,South Africa")
    );
    assert_eq!(
        check("SELECT string_agg(item_id || '=' || pricebook_rate::text, ',' ORDER BY item_id) FROM price_book_rates")
            .await
            .as_deref(),
        Some("4815000000044208=5.4,4815000000044444=10.5")
    );
    assert_eq!(
        check("SELECT string_agg(contact_type || ':' || country, ',' ORDER BY contact_type) FROM contacts")
            .await
            .as_deref(),
        Some("customer:U.S.A,vendor:Germany")
    );
    assert_eq!(
        check("SELECT size_bytes::text FROM item_images")
            .await
            .as_deref(),
        Some("14")
    );
    assert_eq!(
        check("SELECT due_date::text FROM invoices")
            .await
            .as_deref(),
        Some("2013-12-03")
    );
    assert_eq!(
        check("SELECT line_item_count::text FROM purchase_orders")
            .await
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        check("SELECT total::text FROM customer_payments")
            .await
            .as_deref(),
        Some("450")
    );
    for kind in EntityKind::ALL {
        assert!(store.counts(kind, org).await.unwrap().active >= 1, "{kind}");
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn shuffled_versions_of_the_same_records_end_in_the_newest(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let records: Vec<Vec<Value>> = (0..40).map(|n| versions_of(n, 6)).collect();
    for seed in 1..=4u64 {
        let org = format!("org-{seed}");
        let mut rng = Rng::new(seed);
        // Every version of every record, some delivered twice, in a random order and random batches.
        let mut deliveries: Vec<&Value> = records.iter().flatten().collect();
        let extra: Vec<&Value> = (0..60)
            .map(|_| deliveries[rng.below(deliveries.len())])
            .collect();
        deliveries.extend(extra);
        rng.shuffle(&mut deliveries);
        let mut stale_reported = 0;
        let mut i = 0;
        while i < deliveries.len() {
            let size = 1 + rng.below(40);
            let batch: Vec<_> = deliveries[i..(i + size).min(deliveries.len())]
                .iter()
                .map(|r| versioned_item(&org, (*r).clone()))
                .collect();
            let report = store.upsert(&batch).await.unwrap();
            assert_eq!(report.rows.len(), batch.len());
            stale_reported += report.stale();
            i += size;
        }
        assert!(
            stale_reported > 0,
            "a shuffle delivers some older versions after newer ones"
        );

        for (n, versions) in records.iter().enumerate() {
            let newest = versions.last().unwrap();
            let id = newest["item_id"].as_str().unwrap();
            let row = store
                .get(EntityKind::Item, &org, id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                &row.record, newest,
                "seed {seed}: item {n} must end at its newest version"
            );
            assert_eq!(row.deleted_at, None);
            let expected =
                VersionedRow::new(&org, Item::parse(newest.clone()).unwrap(), Utc::now());
            assert_eq!(row.last_modified_time, expected.version);
            assert_eq!(row.content_hash, expected.content_hash.to_vec());
        }
        assert_eq!(
            store.counts(EntityKind::Item, &org).await.unwrap().active,
            40
        );
    }
    // Every org converged to the same content.
    let per_org: Vec<Vec<Value>> = sqlx::query_scalar::<_, Value>(
        "SELECT jsonb_agg(to_jsonb(t) - 'synced_at' - 'org_id' ORDER BY zoho_id) FROM items t GROUP BY org_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|v| v.as_array().unwrap().clone())
    .collect();
    assert_eq!(per_org.len(), 4);
    assert!(per_org.windows(2).all(|w| w[0] == w[1]));
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn applying_a_batch_twice_changes_nothing(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let batch: Vec<_> = (0..50)
        .map(|n| versioned_item("org", versions_of(n, 2).pop().unwrap()))
        .collect();
    let first = store.upsert(&batch).await.unwrap();
    assert_eq!(first.count(|o| *o == Outcome::Inserted), 50);
    let before = snapshot(&pool, "items").await;
    let synced_before: Vec<DateTime<Utc>> =
        sqlx::query_scalar("SELECT synced_at FROM items ORDER BY zoho_id")
            .fetch_all(&pool)
            .await
            .unwrap();

    let again = store.upsert(&batch).await.unwrap();
    assert_eq!(again.unchanged(), 50, "{:?}", again.rows.first());
    assert_eq!(again.changed(), 0);
    assert_eq!(snapshot(&pool, "items").await, before);
    let synced_after: Vec<DateTime<Utc>> =
        sqlx::query_scalar("SELECT synced_at FROM items ORDER BY zoho_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        synced_after, synced_before,
        "an unchanged row is not even rewritten"
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn an_older_version_after_a_newer_one_is_ignored_and_reported(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let v = versions_of(7, 3);
    let newest = versioned_item("org", v[2].clone());
    store.upsert(std::slice::from_ref(&newest)).await.unwrap();

    let report = store
        .upsert(&[versioned_item("org", v[0].clone())])
        .await
        .unwrap();
    assert_eq!(
        report.rows[0].outcome,
        Outcome::Stale {
            current_version: newest.version,
            deleted_at: None
        }
    );
    assert_eq!(report.stale(), 1);
    let row = store
        .get(EntityKind::Item, "org", &newest.zoho_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.record, v[2]);

    // Two versions in one batch: the older is reported superseded, the newer wins.
    let other = versions_of(8, 2);
    let report = store
        .upsert(&[
            versioned_item("org", other[1].clone()),
            versioned_item("org", other[0].clone()),
        ])
        .await
        .unwrap();
    assert_eq!(report.rows[0].outcome, Outcome::Inserted);
    assert_eq!(report.rows[1].outcome, Outcome::Superseded);
    let row = store
        .get(
            EntityKind::Item,
            "org",
            other[1]["item_id"].as_str().unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.record, other[1]);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn tombstones_survive_late_older_upserts(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let v = versions_of(3, 3);
    let v0 = versioned_item("org", v[0].clone());
    let v1 = versioned_item("org", v[1].clone());
    let id = v1.zoho_id.clone();
    store.upsert(std::slice::from_ref(&v1)).await.unwrap();

    let deleted_at = v1.version + Duration::seconds(30);
    let report = store
        .tombstone(
            EntityKind::Item,
            &[Tombstone {
                org_id: "org".into(),
                zoho_id: id.clone(),
                deleted_at,
            }],
        )
        .await
        .unwrap();
    assert_eq!(report.rows[0].outcome, Outcome::Tombstoned);
    assert_eq!(
        store.counts(EntityKind::Item, "org").await.unwrap().active,
        0
    );

    for late in [v1.clone(), v0] {
        let report = store.upsert(&[late]).await.unwrap();
        assert!(
            matches!(report.rows[0].outcome, Outcome::Stale { deleted_at: Some(t), .. } if t == deleted_at),
            "{:?}",
            report.rows[0].outcome
        );
    }
    let row = store
        .get(EntityKind::Item, "org", &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.deleted_at, Some(deleted_at), "tombstone survives");
    assert_eq!(row.record, v[1]);

    // A second, later tombstone keeps the first deletion time.
    let report = store
        .tombstone(
            EntityKind::Item,
            &[Tombstone {
                org_id: "org".into(),
                zoho_id: id.clone(),
                deleted_at: deleted_at + Duration::hours(1),
            }],
        )
        .await
        .unwrap();
    assert_eq!(report.rows[0].outcome, Outcome::AlreadyTombstoned);
    assert_eq!(
        store
            .get(EntityKind::Item, "org", &id)
            .await
            .unwrap()
            .unwrap()
            .deleted_at,
        Some(deleted_at)
    );

    // Only a version newer than the deletion brings the row back.
    let mut newer = v[2].clone();
    newer["last_modified_time"] = json!(zoho_time(deleted_at + Duration::minutes(5)));
    let report = store
        .upsert(&[versioned_item("org", newer.clone())])
        .await
        .unwrap();
    assert_eq!(report.rows[0].outcome, Outcome::Restored);
    let row = store
        .get(EntityKind::Item, "org", &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.deleted_at, None);
    assert_eq!(row.record, newer);

    // A deletion older than the stored version does not apply.
    let report = store
        .tombstone(
            EntityKind::Item,
            &[Tombstone {
                org_id: "org".into(),
                zoho_id: id.clone(),
                deleted_at,
            }],
        )
        .await
        .unwrap();
    assert!(matches!(
        report.rows[0].outcome,
        Outcome::Stale {
            deleted_at: None,
            ..
        }
    ));
    assert_eq!(
        store
            .get(EntityKind::Item, "org", &id)
            .await
            .unwrap()
            .unwrap()
            .deleted_at,
        None
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_deletion_seen_before_the_record_blocks_its_older_versions(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let v = versions_of(4, 1).pop().unwrap();
    let row = versioned_item("org", v);
    let deleted_at = row.version + Duration::seconds(1);
    let report = store
        .tombstone(
            EntityKind::Item,
            &[Tombstone {
                org_id: "org".into(),
                zoho_id: row.zoho_id.clone(),
                deleted_at,
            }],
        )
        .await
        .unwrap();
    assert_eq!(report.rows[0].outcome, Outcome::Tombstoned);
    let report = store.upsert(std::slice::from_ref(&row)).await.unwrap();
    assert!(matches!(
        report.rows[0].outcome,
        Outcome::Stale {
            deleted_at: Some(_),
            ..
        }
    ));
    let counts = store.counts(EntityKind::Item, "org").await.unwrap();
    assert_eq!((counts.active, counts.deleted), (0, 1));
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn at_equal_versions_the_detail_record_wins_in_either_order(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let detail = versions_of(5, 1).pop().unwrap();
    let mut list = detail.clone();
    for key in [
        "locations",
        "item_tax_preferences",
        "custom_fields",
        "unit_id",
    ] {
        list.as_object_mut().unwrap().remove(key);
    }
    for (org, order) in [("a", [&list, &detail]), ("b", [&detail, &list])] {
        for record in order {
            store
                .upsert(&[versioned_item(org, record.clone())])
                .await
                .unwrap();
        }
        let row = store
            .get(EntityKind::Item, org, detail["item_id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.record, detail, "org {org}");
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn stock_is_versioned_by_observation_and_unchanged_stock_is_not_written(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let mut rng = Rng::new(9);
    let record = sample_item(&mut rng, 9, 0, base_time());
    let item = Item::parse(record.clone()).unwrap();
    let t1 = base_time() + Duration::hours(1);
    let rows = |item: &Item, at: DateTime<Utc>| -> Vec<_> {
        item.stock_rows()
            .into_iter()
            .map(|s| VersionedRow::new("org", s, at))
            .collect()
    };
    assert_eq!(store.upsert(&rows(&item, t1)).await.unwrap().changed(), 3);

    // Polled again later, same quantities: nothing written.
    let report = store
        .upsert(&rows(&item, t1 + Duration::minutes(15)))
        .await
        .unwrap();
    assert_eq!(report.unchanged(), 3);

    // One location's stock moved: only that row changes.
    let mut moved = record.clone();
    moved["locations"][1]["location_stock_on_hand"] = json!("999.000000");
    let moved_item = Item::parse(moved).unwrap();
    let t3 = t1 + Duration::minutes(30);
    let report = store.upsert(&rows(&moved_item, t3)).await.unwrap();
    assert_eq!((report.changed(), report.unchanged()), (1, 2));
    assert_eq!(
        report
            .rows
            .iter()
            .filter(|r| r.outcome == Outcome::Updated)
            .count(),
        1
    );

    // A late observation from before that poll is ignored.
    let report = store
        .upsert(&rows(&item, t3 - Duration::minutes(1)))
        .await
        .unwrap();
    assert_eq!(report.stale(), 1);
    let qty: String = sqlx::query_scalar(
        "SELECT stock_on_hand::text FROM item_stock WHERE org_id = 'org' AND location_id = '4815000000070002'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(qty, "999");
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn reads_by_id_changed_since_counts_and_versions(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    // 25 items sharing one last_modified_time, 5 later ones.
    let mut rng = Rng::new(1);
    let same = base_time();
    let mut batch: Vec<_> = (0..25)
        .map(|n| versioned_item("org", sample_item(&mut rng, n, 0, same)))
        .collect();
    batch.extend((25..30).map(|n| {
        versioned_item(
            "org",
            sample_item(&mut rng, n, 0, same + Duration::seconds(n as i64)),
        )
    }));
    batch.push(versioned_item(
        "other-org",
        sample_item(&mut rng, 1, 0, same),
    ));
    store.upsert(&batch).await.unwrap();

    // Keyset paging by (version, id) never skips rows that share a version.
    let mut seen = Vec::new();
    let (mut since, mut after) = (same - Duration::seconds(1), String::new());
    loop {
        let page = store
            .changed_since(EntityKind::Item, "org", since, &after, 10)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        (since, after) = (last.last_modified_time, last.zoho_id.clone());
        seen.extend(page.into_iter().map(|r| r.zoho_id));
    }
    assert_eq!(seen.len(), 30);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), 30, "no duplicates");
    let later = store
        .changed_since(EntityKind::Item, "org", same, "", 100)
        .await
        .unwrap();
    assert!(later.len() >= 5);

    let ids = vec![
        tds_tests::item_id(3),
        tds_tests::item_id(4),
        "missing".to_string(),
    ];
    let many = store.get_many(EntityKind::Item, "org", &ids).await.unwrap();
    assert_eq!(
        many.iter().map(|r| r.zoho_id.clone()).collect::<Vec<_>>(),
        ids[..2]
    );
    assert!(store
        .get(EntityKind::Item, "org", "missing")
        .await
        .unwrap()
        .is_none());

    store
        .tombstone(
            EntityKind::Item,
            &[Tombstone {
                org_id: "org".into(),
                zoho_id: tds_tests::item_id(0),
                deleted_at: same + Duration::days(1),
            }],
        )
        .await
        .unwrap();
    let counts = store.counts(EntityKind::Item, "org").await.unwrap();
    assert_eq!((counts.active, counts.deleted), (29, 1));
    let versions = store.versions(EntityKind::Item, "org").await.unwrap();
    assert_eq!(versions.len(), 30);
    assert_eq!(versions[0].zoho_id, tds_tests::item_id(0));
    assert!(versions[0].deleted_at.is_some());
    assert_eq!(
        store
            .counts(EntityKind::Item, "other-org")
            .await
            .unwrap()
            .active,
        1
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn malformed_batches_are_refused_before_any_write(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let empty: Vec<VersionedRow<Item>> = Vec::new();
    assert!(store
        .upsert(&empty)
        .await
        .unwrap_err()
        .to_string()
        .contains("empty batch"));

    let t = fixture("transactions.json");
    let now = Utc::now();
    let mixed = vec![
        VersionedRow::new(
            "org",
            Document::parse(EntityKind::Invoice, t["invoice"].clone()).unwrap(),
            now,
        ),
        VersionedRow::new(
            "org",
            Document::parse(EntityKind::Bill, t["bill"].clone()).unwrap(),
            now,
        ),
    ];
    let err = store.upsert(&mixed).await.unwrap_err();
    assert!(err.to_string().contains("one entity kind"), "{err}");
    assert!(!err.is_retriable());
    assert_eq!(
        store
            .counts(EntityKind::Invoice, "org")
            .await
            .unwrap()
            .active,
        0
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn connection_failures_are_retriable_and_do_not_leak_the_password(pool: PgPool) {
    drop(pool);
    let mut config = tds_store::StoreConfig::new("postgres://tds:hunter2secret@127.0.0.1:1/tds");
    config.acquire_timeout = std::time::Duration::from_millis(500);
    let store = Store::connect_lazy(&config).unwrap();
    let err = store.counts(EntityKind::Item, "org").await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(!err.to_string().contains("hunter2secret"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2secret"));
    assert!(!format!("{store:?}").contains("hunter2secret"));
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn sync_runs_are_recorded_and_cursors_only_move_forward(pool: PgPool) {
    use tds_store::{Cursor, RunCounts, RunStatus};
    let store = Store::from_pool(pool);
    let run = store
        .start_run(
            "org",
            "item",
            tds_core::SyncMode::Incremental.into(),
            tds_core::Trigger::Schedule,
            json!({"page_size": 200}),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        store
            .add_to_run(
                run,
                RunCounts {
                    pages: 1,
                    fetched: 200,
                    changed: 7,
                    unchanged: 193,
                    failed: 0,
                    api_calls: 3,
                },
            )
            .await
            .unwrap();
    }
    let r = store.run(run).await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Running);
    assert_eq!(
        (
            r.counts.pages,
            r.counts.fetched,
            r.counts.changed,
            r.counts.api_calls
        ),
        (2, 400, 14, 6)
    );
    store.finish_run(run, None).await.unwrap();
    let r = store.run(run).await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert!(r.finished_at.is_some() && r.duration_ms.is_some());
    // A finished run is final.
    store.finish_run(run, Some("late error")).await.unwrap();
    store
        .add_to_run(
            run,
            RunCounts {
                fetched: 1,
                ..RunCounts::default()
            },
        )
        .await
        .unwrap();
    let r = store.run(run).await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.error, r.counts.fetched),
        (RunStatus::Completed, None, 400)
    );
    let failed = store
        .start_run(
            "org",
            "invoice",
            tds_core::SyncMode::Full.into(),
            tds_core::Trigger::Manual,
            json!({}),
        )
        .await
        .unwrap();
    store
        .finish_run(failed, Some("Zoho daily quota exhausted"))
        .await
        .unwrap();
    let r = store.run(failed).await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.error.as_deref(), Some("Zoho daily quota exhausted"));

    assert_eq!(store.cursor("org", EntityKind::Item).await.unwrap(), None);
    let t = base_time();
    let c1 = Cursor {
        time: t,
        id: "100".into(),
    };
    assert_eq!(
        store
            .advance_cursor("org", EntityKind::Item, &c1, Some(run))
            .await
            .unwrap(),
        c1
    );
    // Same second, later id: forward. Earlier time or same position: ignored.
    let c2 = Cursor {
        time: t,
        id: "200".into(),
    };
    assert_eq!(
        store
            .advance_cursor("org", EntityKind::Item, &c2, None)
            .await
            .unwrap(),
        c2
    );
    let back = Cursor {
        time: t - Duration::seconds(5),
        id: "999".into(),
    };
    assert_eq!(
        store
            .advance_cursor("org", EntityKind::Item, &back, None)
            .await
            .unwrap(),
        c2
    );
    assert_eq!(
        store
            .advance_cursor("org", EntityKind::Item, &c1, None)
            .await
            .unwrap(),
        c2
    );
    assert_eq!(
        store.cursor("org", EntityKind::Item).await.unwrap(),
        Some(c2)
    );
    assert_eq!(
        store.cursor("org", EntityKind::Invoice).await.unwrap(),
        None,
        "per (org, entity)"
    );
}

/// A receipt of an invoice edit delivered as `message` with dedupe key `key`.
fn receipt(key: &str, message: &str, outcome: Option<Outcome>) -> tds_store::NewReceipt {
    tds_store::NewReceipt {
        org_id: "org".into(),
        entity: "invoice".into(),
        zoho_id: "1".into(),
        action: "edited",
        dedupe_key: key.into(),
        last_modified_time: Some(base_time()),
        message_id: message.into(),
        received_at: base_time(),
        outcome,
    }
}

/// A receipt is written with its change; a redelivery of an applied key keeps the first outcome, and
/// one that was recorded unapplied (retried) takes the outcome of the delivery that applied it.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn receipts_keep_the_outcome_of_the_delivery_that_applied_them(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let write = |receipts: Vec<tds_store::NewReceipt>| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            tx.stage(&receipts, &[], &[]).await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    // "a" applied; "b" failed and will be retried; a rolled-back write records nothing.
    write(vec![
        receipt("a", "m1", Some(Outcome::Inserted)),
        receipt("b", "m1", None),
    ])
    .await;
    let mut tx = store.begin().await.unwrap();
    tx.stage(&[receipt("c", "m1", Some(Outcome::Inserted))], &[], &[])
        .await
        .unwrap();
    drop(tx);
    let applied = store.applied_receipts(&["a", "b", "c"]).await.unwrap();
    assert_eq!(applied, ["a".to_string()].into_iter().collect());

    // Redeliveries: "a" stays inserted; "b" is now applied; in-batch duplicates collapse.
    write(vec![
        receipt("a", "m2", Some(Outcome::Unchanged)),
        receipt("b", "m2", Some(Outcome::Updated)),
        receipt("b", "m2", None),
    ])
    .await;
    let rows: Vec<(String, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT dedupe_key, message_id, outcome, processed_at IS NOT NULL FROM tds_webhook_receipts ORDER BY dedupe_key",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("a".into(), "m2".into(), Some("inserted".into()), true),
            ("b".into(), "m2".into(), Some("updated".into()), true),
        ]
    );
}

/// Receipts applied longer ago than the retention are deleted, a chunk a statement until none is left;
/// recent ones and ones never applied (their messages are retried or dead-lettered) stay.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn receipts_past_their_retention_are_deleted_and_the_others_kept(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let receipt = |key: &str, outcome: Option<Outcome>| receipt(key, "m", outcome);
    let mut tx = store.begin().await.unwrap();
    tx.stage(
        &[
            receipt("old-1", Some(Outcome::Inserted)),
            receipt("old-2", Some(Outcome::Updated)),
            receipt("old-3", Some(Outcome::Unchanged)),
            receipt("recent", Some(Outcome::Inserted)),
            receipt("never-applied", None),
        ],
        &[],
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query(
        "UPDATE tds_webhook_receipts SET processed_at = now() - interval '31 days'
         WHERE dedupe_key LIKE 'old-%'",
    )
    .execute(&pool)
    .await
    .unwrap();

    // Two rows a statement: the three old receipts take two statements.
    assert_eq!(store.prune_receipts(30, 2).await.unwrap(), 3);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT dedupe_key FROM tds_webhook_receipts ORDER BY dedupe_key")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(left, ["never-applied", "recent"]);
    assert_eq!(store.prune_receipts(30, 2).await.unwrap(), 0);
    // A longer retention keeps what a shorter one would delete.
    sqlx::query("UPDATE tds_webhook_receipts SET processed_at = now() - interval '31 days'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(store.prune_receipts(60, 2).await.unwrap(), 0);
}

/// The local stack's durable queue: what was sent survives the queue object (a process killed after
/// answering 202 and started again); a received message is hidden for the visibility timeout, comes
/// back when released, moves to the dead-letter queue after too many receives and redrives back;
/// concurrent receivers never get the same message.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn the_postgres_queue_keeps_sqs_semantics_and_survives_a_restart(pool: PgPool) {
    use std::time::Duration as Std;
    use tds_core::ports::{Queue, Redrive};
    use tds_store::{PgQueue, PgRedrive};
    let store = Store::from_pool(pool.clone());
    let make = || {
        let dlq = PgQueue::new(store.clone(), "dlq", Std::from_secs(30));
        let inbox =
            PgQueue::new(store.clone(), "inbox", Std::from_secs(30)).with_dead_letter(&dlq, 2);
        (inbox, dlq)
    };
    let (inbox, _) = make();
    inbox.send("one".into()).await.unwrap();
    let ids = inbox
        .send_batch(vec!["two".into(), "three".into()])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    drop(inbox);

    // "Restarted": a new queue object on the same database sees every message, in order.
    let (inbox, dlq) = make();
    assert_eq!(inbox.stats().await.unwrap().visible, 3);
    let got = inbox.receive(10).await.unwrap();
    let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["one", "two", "three"]);
    assert!(got.iter().all(|m| m.receive_count == 1));
    assert!(
        inbox.receive(10).await.unwrap().is_empty(),
        "hidden while in flight"
    );
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 3));

    // Delete one, release one now, let one stay hidden.
    inbox.delete(&got[0].receipt_handle).await.unwrap();
    inbox
        .release(&got[1].receipt_handle, Std::ZERO)
        .await
        .unwrap();
    let again = inbox.receive(10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].body.as_str(), again[0].receive_count), ("two", 2));
    // A stale handle (from before the message was received again) changes nothing.
    inbox.delete(&got[1].receipt_handle).await.unwrap();
    assert_eq!(inbox.stats().await.unwrap().in_flight, 2);
    assert!(inbox.delete("garbage").await.is_err());

    // Received twice already: the next receive moves it to the dead-letter queue instead.
    inbox
        .release(&again[0].receipt_handle, Std::ZERO)
        .await
        .unwrap();
    assert!(inbox.receive(10).await.unwrap().is_empty());
    let dead = dlq.peek(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "two");
    let redrive = PgRedrive {
        source: inbox.clone(),
        dead_letter: dlq.clone(),
    };
    assert_eq!(redrive.redrive(10).await.unwrap(), 1);
    let back = inbox.receive(10).await.unwrap();
    assert_eq!((back[0].body.as_str(), back[0].receive_count), ("two", 1));

    // Concurrent receivers split the visible messages between them.
    let many: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    for chunk in many.chunks(10) {
        inbox.send_batch(chunk.to_vec()).await.unwrap();
    }
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let q = inbox.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = q.receive(3).await.unwrap();
                    if batch.is_empty() {
                        break got;
                    }
                    got.extend(batch.into_iter().map(|m| m.body));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for r in receivers {
        all.extend(r.await.unwrap());
    }
    all.sort();
    let mut expected = many.clone();
    expected.sort();
    assert_eq!(all, expected, "each message to exactly one receiver");
}
