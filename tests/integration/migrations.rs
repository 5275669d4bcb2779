//! Migrations apply to an empty database, are idempotent, follow the forward-only rule, and create
//! every table the store and later stages use.

use sqlx::PgPool;
use tds_core::EntityKind;
use tds_store::{Store, MIGRATOR};

const TDS_TABLES: [&str; 9] = [
    "tds_sync_runs",
    "tds_sync_cursors",
    "tds_webhook_receipts",
    "tds_statistics_history",
    "tds_comparison_reports",
    "tds_scheduled_jobs",
    "tds_alerts",
    "tds_rate_budget",
    "tds_token_cache",
];

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn migrations_apply_to_an_empty_database_and_rerun_as_a_no_op(pool: PgPool) {
    assert!(tables(&pool).await.is_empty(), "starts empty");
    let store = Store::from_pool(pool.clone());
    store.migrate().await.unwrap();
    let after = tables(&pool).await;
    for kind in EntityKind::ALL {
        assert!(
            after.contains(&kind.table().to_string()),
            "missing {}",
            kind.table()
        );
    }
    for t in TDS_TABLES {
        assert!(after.contains(&t.to_string()), "missing {t}");
    }

    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, MIGRATOR.iter().count());

    store.migrate().await.unwrap();
    assert_eq!(tables(&pool).await, after, "second run changes nothing");
}

#[sqlx::test(migrations = false)]
async fn every_entity_table_has_the_common_versioning_columns(pool: PgPool) {
    Store::from_pool(pool.clone()).migrate().await.unwrap();
    for kind in EntityKind::ALL {
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = $1",
        )
        .bind(kind.table())
        .fetch_all(&pool)
        .await
        .unwrap();
        let has = |name: &str, ty: &str, nullable: &str| {
            columns
                .iter()
                .any(|(n, t, null)| n == name && t == ty && null == nullable)
        };
        let t = kind.table();
        assert!(has("org_id", "text", "NO"), "{t}.org_id");
        assert!(has("zoho_id", "text", "NO"), "{t}.zoho_id");
        assert!(has("record", "jsonb", "NO"), "{t}.record");
        assert!(
            has("last_modified_time", "timestamp with time zone", "NO"),
            "{t}.last_modified_time"
        );
        assert!(has("content_hash", "bytea", "NO"), "{t}.content_hash");
        assert!(
            has("deleted_at", "timestamp with time zone", "YES"),
            "{t}.deleted_at"
        );
        assert!(
            has("synced_at", "timestamp with time zone", "NO"),
            "{t}.synced_at"
        );
        let pk: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attname",
        )
        .bind(t)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(pk, ["org_id", "zoho_id"], "{t} primary key");
        let changed_index: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(org_id, last_modified_time, zoho_id)%')",
        )
        .bind(t)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(
            changed_index,
            "{t} needs the (org_id, last_modified_time, zoho_id) index for changed-since reads"
        );
    }
}

#[test]
fn migrations_follow_the_forward_only_rule() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for n in &names {
        assert!(
            !n.ends_with(".up.sql") && !n.ends_with(".down.sql"),
            "{n}: migrations are forward-only; no up/down pairs"
        );
        let (version, rest) = n.split_once('_').unwrap();
        assert!(
            version.len() == 14 && version.chars().all(|c| c.is_ascii_digit()),
            "{n}: <yyyymmddhhmmss>_<name>.sql"
        );
        assert!(!rest.is_empty());
    }
    // Every file is embedded, and none is reversible.
    assert_eq!(MIGRATOR.iter().count(), names.len());
    assert!(MIGRATOR.iter().all(|m| !m.migration_type.is_reversible()));
}

#[sqlx::test(migrations = false)]
async fn events_waiting_in_the_old_outbox_keep_their_ids_after_the_batch_migration(pool: PgPool) {
    // The schema as it was before the outbox held one row per batch.
    let before = sqlx::migrate::Migrator {
        migrations: MIGRATOR
            .iter()
            .filter(|m| m.version < 20261206000011)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    };
    before.run(&pool).await.unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO tds_outbox (detail_type, detail, occurred_at, created_at)
         VALUES ('tds.entity.synced', '{\"org_id\": \"1\", \"zoho_id\": \"42\"}',
                 '2026-12-01T10:00:00.123456Z', now() - interval '1 hour') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    Store::from_pool(pool.clone()).migrate().await.unwrap();
    let waiting = Store::from_pool(pool.clone())
        .unpublished_events(300.0, 10)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let (row, events) = &waiting[0];
    assert_eq!(*row, id);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.detail_type, "tds.entity.synced");
    assert_eq!(event.detail["zoho_id"], "42");
    assert_eq!(
        event.detail["event_id"],
        id.to_string(),
        "the same event_id as before"
    );
    assert_eq!(
        event.time,
        "2026-12-01T10:00:00.123456Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
}
