//! The AWS adapters against moto (real SQS, EventBridge and Secrets Manager protocols): queue
//! semantics with a real RedrivePolicy, redrive with the receive/send/delete fallback (moto has no
//! StartMessageMoveTask), events in batches of 10, secrets through the TTL cache.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tds_aws::{EventBridgeBus, S3BlobStore, SecretsManagerStore, SqsQueue, SqsRedrive};
use tds_core::ports::{
    BlobStore, CachedSecrets, DomainEvent, EventBus, PortError, Queue, Redrive, SecretStore,
};
use tds_tests::Moto;

async fn queue_pair(config: &aws_config::SdkConfig, max_receives: u32) -> (SqsQueue, SqsQueue) {
    let sqs = aws_sdk_sqs::Client::new(config);
    let dlq_url = sqs
        .create_queue()
        .queue_name("tds-inbox-dlq")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let dlq = SqsQueue::new(config, dlq_url);
    let policy =
        json!({"deadLetterTargetArn": dlq.arn().await.unwrap(), "maxReceiveCount": max_receives})
            .to_string();
    let inbox_url = sqs
        .create_queue()
        .queue_name("tds-inbox")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1",
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            policy,
        )
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    (SqsQueue::new(config, inbox_url), dlq)
}

#[tokio::test]
async fn sqs_queue_receive_counts_dead_letters_and_redrive() {
    let moto = Moto::start().await;
    let config = moto.sdk_config().await;
    let (inbox, dlq) = queue_pair(&config, 2).await;

    let id = inbox.send(json!({"n": 1}).to_string()).await.unwrap();
    assert!(!id.is_empty());
    let batch = inbox
        .send_batch((2..=4).map(|n| json!({"n": n}).to_string()).collect())
        .await
        .unwrap();
    assert!(batch.iter().all(Result::is_ok));
    assert!(matches!(
        inbox.send_batch(vec![String::new(); 11]).await,
        Err(PortError::Rejected { .. })
    ));
    assert_eq!(inbox.stats().await.unwrap().visible, 4);

    let mut got = Vec::new();
    for _ in 0..5 {
        got.extend(inbox.receive(10).await.unwrap());
        if got.len() == 4 {
            break;
        }
    }
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|m| m.receive_count == 1));
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 4));
    for m in &got[1..] {
        inbox.delete(&m.receipt_handle).await.unwrap();
    }
    // The first message is never deleted: after maxReceiveCount receives SQS moves it to the DLQ.
    inbox
        .release(&got[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let second = inbox.receive(10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].receive_count, 2);
    inbox
        .release(&second[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    assert!(
        inbox.receive(10).await.unwrap().is_empty(),
        "moved, not delivered a third time"
    );
    assert_eq!(dlq.stats().await.unwrap().visible, 1);
    let peeked = dlq.peek(10).await.unwrap();
    assert_eq!(peeked.len(), 1, "the DLQ peek shows the dead letter");
    assert_eq!(
        dlq.stats().await.unwrap().visible,
        1,
        "and leaves it visible"
    );

    let redrive = SqsRedrive {
        source: inbox.clone(),
        dead_letter: dlq.clone(),
    };
    assert_eq!(redrive.redrive(10).await.unwrap(), 1);
    assert_eq!(dlq.stats().await.unwrap().visible, 0);
    let back = inbox.receive(10).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&back[0].body).unwrap(),
        json!({"n": 1})
    );

    // A retry of fewer than the queue holds moves exactly that many (a move task would move all).
    for n in 2..5 {
        dlq.send(json!({"n": n}).to_string()).await.unwrap();
    }
    assert_eq!(redrive.redrive(2).await.unwrap(), 2);
    assert_eq!(dlq.stats().await.unwrap().visible, 1);
    assert_eq!(inbox.stats().await.unwrap().visible, 2);

    // A bad receipt is refused, not retried.
    let err = inbox.delete("not-a-receipt").await.unwrap_err();
    assert!(!err.is_retriable(), "{err}");
}

#[tokio::test]
async fn eventbridge_bus_publishes_in_batches_of_ten_to_its_rules() {
    let moto = Moto::start().await;
    let config = moto.sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    events.create_event_bus().name("tds").send().await.unwrap();
    // A rule forwarding every tds event to a queue, to see what arrived.
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .create_queue()
        .queue_name("tds-events-tap")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let tap = SqsQueue::new(&config, url);
    events
        .put_rule()
        .name("tap")
        .event_bus_name("tds")
        .event_pattern(json!({"source": ["tds"]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("tap")
        .event_bus_name("tds")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(tap.arn().await.unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let bus = EventBridgeBus::new(&config, "tds");
    let batch: Vec<DomainEvent> = (0..23)
        .map(|n| DomainEvent {
            detail_type: "tds.entity.synced".into(),
            detail: json!({"n": n}),
            time: Utc::now(),
        })
        .collect();
    bus.publish(batch).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..10 {
        for m in tap.receive(10).await.unwrap() {
            let event: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            assert_eq!(event["source"], "tds");
            assert_eq!(event["detail-type"], "tds.entity.synced");
            seen.push(event["detail"]["n"].as_i64().unwrap());
            tap.delete(&m.receipt_handle).await.unwrap();
        }
        if seen.len() == 23 {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, (0..23).collect::<Vec<_>>());

    let missing = EventBridgeBus::new(&config, "no-such-bus");
    let err = missing
        .publish(vec![DomainEvent {
            detail_type: "tds.sync.failed".into(),
            detail: json!({}),
            time: Utc::now(),
        }])
        .await;
    assert!(err.is_err(), "publishing to a missing bus is an error");
}

#[tokio::test]
async fn secrets_manager_through_the_cache() {
    let moto = Moto::start().await;
    let config = moto.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    sm.create_secret()
        .name("tds/zoho-credentials")
        .secret_string(r#"{"organizations": []}"#)
        .send()
        .await
        .unwrap();
    let store = Arc::new(SecretsManagerStore::new(&config));
    let cached = CachedSecrets::new(store, Duration::from_secs(300));
    assert_eq!(
        cached.secret("tds/zoho-credentials").await.unwrap(),
        r#"{"organizations": []}"#
    );
    // Rotated in Secrets Manager: the cache still serves the old value until invalidated.
    sm.put_secret_value()
        .secret_id("tds/zoho-credentials")
        .secret_string(r#"{"organizations": [1]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        cached.secret("tds/zoho-credentials").await.unwrap(),
        r#"{"organizations": []}"#
    );
    cached.invalidate("tds/zoho-credentials");
    assert_eq!(
        cached.secret("tds/zoho-credentials").await.unwrap(),
        r#"{"organizations": [1]}"#
    );

    let err = cached.secret("tds/missing").await.unwrap_err();
    assert!(matches!(err, PortError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn s3_blob_store_round_trips_bytes_and_content_type() {
    let moto = Moto::start().await;
    let config = moto.sdk_config().await;
    aws_sdk_s3::Client::new(&config)
        .create_bucket()
        .bucket("tds-images")
        .send()
        .await
        .unwrap();
    let blobs = S3BlobStore::new(&config, "tds-images");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let key = "60001234567/item-images/4815000010100001/2077500000000001.png";
    blobs.put(key, bytes.clone(), "image/png").await.unwrap();
    let (content_type, got) = blobs.get(key).await.unwrap();
    assert_eq!(content_type, "image/png");
    assert_eq!(got, bytes);
    // A missing key is NotFound; a missing bucket is a clear, non-retriable rejection.
    let missing = blobs.get("nope").await.unwrap_err();
    assert!(matches!(missing, PortError::NotFound { .. }), "{missing:?}");
    let err = S3BlobStore::new(&config, "no-such-bucket")
        .put("k", vec![1], "image/jpeg")
        .await
        .unwrap_err();
    assert!(!err.is_retriable(), "{err:?}");
    assert!(err.to_string().contains("PutObject k"), "{err}");
}

#[test]
fn lambda_log_level_follows_the_templates_log_level_unless_rust_log_is_set() {
    use tds_aws::bootstrap::log_filter;
    // Lambda's ApplicationLogLevel arrives as AWS_LAMBDA_LOG_LEVEL.
    assert_eq!(log_filter(None, Some("INFO")), "info");
    assert_eq!(log_filter(None, Some("DEBUG")), "debug");
    assert_eq!(log_filter(None, Some("FATAL")), "error");
    // Neither set: info (not tracing's default of error, which would hide warnings and audit lines).
    assert_eq!(log_filter(None, None), "info");
    assert_eq!(log_filter(Some(" "), Some("bogus")), "info");
    // RUST_LOG wins.
    assert_eq!(
        log_filter(Some("tds_sync=debug,warn"), Some("ERROR")),
        "tds_sync=debug,warn"
    );
}

#[test]
fn database_secrets_become_urls_whatever_characters_the_password_has() {
    use serde_json::json;
    use tds_aws::bootstrap::url_from_secret;
    let none = |_: &str| None::<String>;
    // An RDS secret with every field; the password has characters a URL would misread.
    let url = url_from_secret(
        &json!({"username": "tds", "password": "p@ss:w/rd#1?%", "host": "db.example", "port": 6432, "dbname": "tds"}),
        none,
    )
    .unwrap();
    assert_eq!(
        url,
        "postgres://tds:p%40ss%3Aw%2Frd%231%3F%25@db.example:6432/tds?sslmode=require"
    );
    let parsed: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    assert_eq!(parsed.get_host(), "db.example");
    assert_eq!(parsed.get_port(), 6432);
    // The secret RDS manages for a master user: only username and password; the rest from the environment.
    let env = |name: &str| match name {
        "TDS_DATABASE_HOST" => Some("cluster.example".to_string()),
        "TDS_DATABASE_NAME" => Some("zoho".to_string()),
        _ => None,
    };
    assert_eq!(
        url_from_secret(&json!({"username": "admin", "password": "x"}), env).unwrap(),
        "postgres://admin:x@cluster.example:5432/zoho?sslmode=require"
    );
    let e = url_from_secret(
        &json!({"username": "admin", "password": "s3cret-value"}),
        none,
    )
    .unwrap_err();
    assert!(e.contains("host") && e.contains("TDS_DATABASE_HOST"), "{e}");
    assert!(!e.contains("s3cret-value"), "{e}");
    // A ready URL is used as is.
    assert_eq!(
        url_from_secret(&json!({"database_url": "postgres://u@h/d"}), none).unwrap(),
        "postgres://u@h/d"
    );
}

/// The oldest message's age is SQS's CloudWatch metric `ApproximateAgeOfOldestMessage`: without
/// CloudWatch, or when CloudWatch cannot answer, it is unknown (`None`, JSON null), never a made-up 0.
/// (moto's CloudWatch does not speak the protocol the current SDK uses, 404, so here it stands for
/// a CloudWatch that fails; reading a datapoint is left to a real account.)
#[tokio::test]
async fn an_sqs_queue_says_its_oldest_message_age_is_unknown_rather_than_zero() {
    let moto = Moto::start().await;
    let config = moto.sdk_config().await;
    let (inbox, _dlq) = queue_pair(&config, 3).await;
    inbox.send("waiting".into()).await.unwrap();
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.visible, stats.oldest_age_secs), (1, None));
    let inbox = inbox.with_age_from_cloudwatch(&config);
    assert_eq!(inbox.name(), "tds-inbox");
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.visible, stats.oldest_age_secs), (1, None));
    assert_eq!(
        serde_json::to_value(stats).unwrap()["oldest_age_secs"],
        serde_json::Value::Null
    );
}
