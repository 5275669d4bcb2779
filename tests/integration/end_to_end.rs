//! The real-time path end to end on one machine: simulator → webhook-ingest (over HTTP) → SQS on moto
//! → entity-processor → PostgreSQL, with created, edited, deleted, duplicated and reordered deliveries;
//! the database ends equal to the simulator for every record the webhooks touched.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use tds_core::ingest::{SecretWebhookAuth, WebhookIngest};
use tds_core::ports::{CachedSecrets, Queue};
use tds_core::EntityKind;
use tds_local::LocalEventBus;
use tds_store::Store;
use tds_sync::{App, Processor, Settings};
use tds_tests::Moto;
use tds_zoho::ClientSettings;
use tds_zoho_sim::{Collection, DemoSpec, Simulator, WebhookConfig};

use crate::webhook_ingest::{credentials_doc, serve_handler};

const ORG: &str = "60001234567";

fn fields(v: Value) -> Map<String, Value> {
    serde_json::from_value(v).unwrap()
}

/// Feeds the inbox to entity-processor's handler the way the SQS event source does, until it stays
/// empty.
pub(crate) async fn drain(inbox: &dyn tds_core::ports::Queue, processor: &Processor) -> usize {
    let mut processed = 0;
    let mut idle = 0;
    while idle < 6 {
        let messages = inbox.receive(10).await.unwrap();
        if messages.is_empty() {
            idle += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        idle = 0;
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let mut r = SqsMessage::default();
                r.message_id = Some(m.message_id.clone());
                r.body = Some(m.body.clone());
                r
            })
            .collect();
        let response = entity_processor::handle(processor, event).await;
        let failed: BTreeSet<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        for m in messages {
            if !failed.contains(&m.message_id) {
                inbox.delete(&m.receipt_handle).await.unwrap();
                processed += 1;
            }
        }
    }
    processed
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn webhooks_of_every_kind_of_change_leave_the_database_equal_to_zoho(pool: PgPool) {
    let moto = Moto::start().await;
    let config = moto.sdk_config().await;
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name("tds/zoho")
        .secret_string(credentials_doc())
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let inbox_url = sqs
        .create_queue()
        .queue_name("tds-inbox")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let dlq_url = sqs
        .create_queue()
        .queue_name("tds-inbox-dlq")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let inbox = tds_aws::SqsQueue::new(&config, inbox_url);
    let dlq = tds_aws::SqsQueue::new(&config, dlq_url);
    let secrets = CachedSecrets::new(
        tds_aws::SecretsManagerStore::new(&config),
        Duration::from_secs(300),
    );
    let ingest = Arc::new(WebhookIngest::new(
        Arc::new(inbox.clone()),
        Arc::new(SecretWebhookAuth::new(Arc::new(secrets), "tds/zoho")),
    ));
    let hook_base = serve_handler(ingest).await;

    let sim = Simulator::demo(&DemoSpec {
        items: 40,
        customers: 10,
        vendors: 3,
        invoices: 5,
        ..DemoSpec::default()
    });
    let running = sim.clone().serve_local().await.unwrap();
    let zoho = tds_tests::sim_client(
        ORG,
        &running.base_url,
        pool.clone(),
        ClientSettings::default(),
    );
    let store = Store::from_pool(pool.clone());
    let processor = App::new(
        store.clone(),
        Arc::new(zoho),
        LocalEventBus::new(),
        Settings::default(),
    )
    .with_inbox(Arc::new(inbox.clone()))
    .with_dead_letters(Arc::new(dlq.clone()))
    .processor()
    .unwrap();
    let hook = |duplicate_rate: f64, reorder: bool| WebhookConfig {
        url: format!("{hook_base}/{ORG}"),
        include_action: true,
        header_secret: Some(("X-TDS-Webhook-Secret".into(), "wh-secret-123".into())),
        signing_secret: Some("SignKey123456".into()),
        duplicate_rate,
        reorder,
        ..WebhookConfig::default()
    };
    let ids: Vec<String> = sim.with_state(|s| {
        s.orgs[ORG]
            .collection(Collection::Items)
            .take(8)
            .map(|i| i["item_id"].as_str().unwrap().to_string())
            .collect()
    });
    let mut touched: BTreeSet<String> = BTreeSet::new();

    // Phase 1: every delivery duplicated. Creates, edits (one item twice), a deletion.
    sim.configure_webhooks(Some(hook(1.0, false)));
    for n in 0..2 {
        let created = sim.upsert(ORG, Collection::Items, fields(json!({"name": format!("New item {n}"), "rate": 10 + n, "status": "active", "product_type": "goods"}))).unwrap();
        touched.insert(created["item_id"].as_str().unwrap().to_string());
    }
    for (n, id) in ids[..4].iter().enumerate() {
        sim.upsert(
            ORG,
            Collection::Items,
            fields(json!({"item_id": id, "rate": 100 + n})),
        )
        .unwrap();
        touched.insert(id.clone());
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // a later second for the second edit
    sim.upsert(
        ORG,
        Collection::Items,
        fields(json!({"item_id": ids[0], "rate": 555})),
    )
    .unwrap();
    sim.delete(ORG, Collection::Items, &ids[1]).unwrap();
    let contact = sim.with_state(|s| {
        s.orgs[ORG].collection(Collection::Contacts).next().unwrap()["contact_id"]
            .as_str()
            .unwrap()
            .to_string()
    });
    sim.upsert(
        ORG,
        Collection::Contacts,
        fields(json!({"contact_id": contact, "email": "new@example.com"})),
    )
    .unwrap();
    drain(&inbox, &processor).await;

    // Phase 2: deliveries reordered (an older edit arrives after a newer one).
    sim.configure_webhooks(Some(hook(0.0, true)));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sim.upsert(
        ORG,
        Collection::Items,
        fields(json!({"item_id": ids[2], "rate": 1})),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sim.upsert(
        ORG,
        Collection::Items,
        fields(json!({"item_id": ids[2], "rate": 2})),
    )
    .unwrap();
    sim.delete(ORG, Collection::Items, &ids[3]).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await; // let the held delivery flush
    drain(&inbox, &processor).await;

    let stats = sim.stats();
    assert!(stats.webhooks_sent >= 12, "{stats:?}");
    assert_eq!(stats.webhooks_failed, 0);
    assert_eq!(
        dlq.stats().await.unwrap().visible,
        0,
        "nothing dead-lettered"
    );

    // The database equals the simulator for every touched item.
    for id in &touched {
        let in_zoho = sim.with_state(|s| s.orgs[ORG].get(Collection::Items, id).cloned());
        let row = store
            .get(EntityKind::Item, ORG, id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("item {id} missing"));
        match in_zoho {
            Some(record) => {
                assert_eq!(row.deleted_at, None, "{id}");
                assert_eq!(
                    row.record["last_modified_time"], record["last_modified_time"],
                    "{id}"
                );
                assert_eq!(row.record["rate"].as_f64(), record["rate"].as_f64(), "{id}");
            }
            None => assert!(row.deleted_at.is_some(), "{id} was deleted in Zoho"),
        }
    }
    let rate: Option<String> =
        sqlx::query_scalar("SELECT rate::text FROM items WHERE zoho_id = $1")
            .bind(&ids[2])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        rate.as_deref(),
        Some("2"),
        "the newer edit won over the reordered older one"
    );
    let email: Option<String> = sqlx::query_scalar("SELECT email FROM contacts WHERE zoho_id = $1")
        .bind(&contact)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(email.as_deref(), Some("new@example.com"));
    let duplicates: i64 = sqlx::query_scalar("SELECT count(*) FROM tds_webhook_receipts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        duplicates < i64::try_from(stats.webhooks_sent).unwrap(),
        "duplicates collapsed on their dedupe key"
    );
}

/// A scheduled sync over the real SQS and S3 protocols: the sample start message (the hourly schedule's
/// input) goes through entity-processor's handler, its page, details and image jobs travel on the SQS
/// inbox, and images land in an S3 bucket.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_scheduled_sync_fans_out_over_sqs_and_stores_images_in_s3(pool: PgPool) {
    let moto = Moto::start().await;
    let config = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let mut urls = Vec::new();
    for name in ["tds-inbox", "tds-inbox-dlq"] {
        let out = sqs.create_queue().queue_name(name).send().await.unwrap();
        urls.push(out.queue_url().unwrap().to_string());
    }
    aws_sdk_s3::Client::new(&config)
        .create_bucket()
        .bucket("tds-images")
        .send()
        .await
        .unwrap();
    let inbox = tds_aws::SqsQueue::new(&config, urls[0].clone());
    let dlq = tds_aws::SqsQueue::new(&config, urls[1].clone());
    let blobs = tds_aws::S3BlobStore::new(&config, "tds-images");

    let sim = Simulator::demo(&DemoSpec {
        items: 250,
        customers: 4,
        vendors: 2,
        invoices: 30,
        sales_orders: 3,
        bills: 3,
        customer_payments: 3,
        credit_notes: 2,
        vendor_payments: 2,
        purchase_orders: 2,
        ..DemoSpec::default()
    });
    let running = sim.clone().serve_local().await.unwrap();
    let zoho = tds_tests::sim_client(
        ORG,
        &running.base_url,
        pool.clone(),
        tds_tests::test_client_settings(1_000_000),
    );
    running.sim.configure(|c| c.per_minute_limit = 1_000_000);
    let store = Store::from_pool(pool.clone());
    let events = LocalEventBus::new();
    let processor = App::new(
        store.clone(),
        Arc::new(zoho),
        events.clone(),
        Settings::default(),
    )
    .with_inbox(Arc::new(inbox.clone()))
    .with_dead_letters(Arc::new(dlq.clone()))
    .with_blobs(Arc::new(blobs.clone()))
    .processor()
    .unwrap();

    let sample = format!(
        "{}/../events/entity-processor/sync-start.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    let response = entity_processor::handle(&processor, event).await;
    assert!(response.batch_item_failures.is_empty());
    let processed = drain(&inbox, &processor).await;
    assert!(processed > 10, "{processed} jobs");

    let runs = store.recent_runs(Some(ORG), 50).await.unwrap();
    assert_eq!(runs.len(), 12, "11 kinds and the image run: {runs:?}");
    assert!(
        runs.iter()
            .all(|r| r.status == tds_store::RunStatus::Completed),
        "{runs:?}"
    );
    let invoices = runs.iter().find(|r| r.entity == "invoice").unwrap();
    assert_eq!(invoices.counts.changed, 30);
    assert_eq!(
        invoices.counts.api_calls, 31,
        "1 list page and 30 detail GETs (in details jobs)"
    );
    assert!(dlq.peek(10).await.unwrap().is_empty());

    let images: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT zoho_id, blob_key, sha256 FROM item_images WHERE org_id = $1 AND deleted_at IS NULL",
    )
    .bind(ORG)
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected = running.sim.with_state(|s| s.orgs[ORG].images.len());
    assert_eq!(images.len(), expected);
    for (item_id, key, sha) in images.iter().take(5) {
        let (content_type, bytes) = tds_core::ports::BlobStore::get(&blobs, key).await.unwrap();
        let want = running
            .sim
            .with_state(|s| s.orgs[ORG].images[item_id].clone());
        assert_eq!((content_type, &bytes), (want.content_type, &want.bytes));
        use sha2::Digest;
        assert_eq!(&hex::encode(sha2::Sha256::digest(&bytes)), sha);
    }
    assert!(events
        .events()
        .iter()
        .any(|e| e.detail_type == "tds.sync.completed"));
}
