//! The local twins keep the semantics of the AWS services they replace.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use tds_core::ports::{
    BlobStore, CachedSecrets, DomainEvent, EventBus, Queue, Redrive, SecretStore,
};
use tds_local::{DirBlobStore, LocalEventBus, LocalQueue, LocalRedrive, MemorySecrets};

#[tokio::test(start_paused = true)]
async fn visibility_timeout_receive_count_and_delete() {
    let q = LocalQueue::new("inbox", Duration::from_millis(80));
    let id = q.send("a".into()).await.unwrap();
    let got = q.receive(10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].message_id.as_str(), got[0].receive_count),
        (id.as_str(), 1)
    );
    assert!(
        q.receive(10).await.unwrap().is_empty(),
        "hidden while in flight"
    );
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 1));

    tokio::time::advance(Duration::from_millis(79)).await;
    assert!(
        q.receive(10).await.unwrap().is_empty(),
        "still hidden just before the timeout"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    let again = q.receive(10).await.unwrap();
    assert_eq!(
        again[0].receive_count, 2,
        "visible again after the timeout, counted"
    );
    assert_ne!(again[0].receipt_handle, got[0].receipt_handle);
    assert!(
        q.delete(&got[0].receipt_handle).await.is_err(),
        "an old receipt is invalid"
    );
    q.delete(&again[0].receipt_handle).await.unwrap();
    let empty = q.stats().await.unwrap();
    assert_eq!(
        (empty.visible, empty.in_flight, empty.oldest_age_secs),
        (0, 0, Some(0))
    );

    // release: back to visible after the given delay
    q.send("b".into()).await.unwrap();
    let m = q.receive(1).await.unwrap().pop().unwrap();
    q.release(&m.receipt_handle, Duration::ZERO).await.unwrap();
    assert_eq!(q.receive(1).await.unwrap()[0].receive_count, 2);

    assert!(q.receive(0).await.is_err());
    assert!(q.receive(11).await.is_err());
    let ids = q
        .send_batch((0..10).map(|i| i.to_string()).collect())
        .await
        .unwrap();
    assert_eq!(ids.len(), 10);
    assert!(q
        .send_batch((0..11).map(|i| i.to_string()).collect())
        .await
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn messages_move_to_the_dead_letter_queue_after_max_receives_and_redrive_back() {
    let dlq = LocalQueue::new("dlq", Duration::from_secs(30));
    let q = LocalQueue::with_dead_letter("inbox", Duration::from_millis(20), dlq.clone(), 3);
    q.send(json!({"job": 1}).to_string()).await.unwrap();
    for n in 1..=3 {
        let got = q.receive(10).await.unwrap();
        assert_eq!(got[0].receive_count, n);
        tokio::time::advance(Duration::from_millis(20)).await;
    }
    // The 4th receive moves it instead of delivering it.
    assert!(q.receive(10).await.unwrap().is_empty());
    assert_eq!(dlq.peek_all(), vec![(json!({"job": 1}).to_string(), 3)]);
    let peeked = dlq.peek(10).await.unwrap();
    assert_eq!(peeked.len(), 1);
    assert_eq!(dlq.peek(10).await.unwrap().len(), 1, "a peek takes nothing");

    let redrive = LocalRedrive {
        source: q.clone(),
        dead_letter: dlq.clone(),
    };
    assert_eq!(redrive.redrive(10).await.unwrap(), 1);
    assert!(dlq.peek_all().is_empty());
    let back = q.receive(10).await.unwrap();
    assert_eq!(back[0].receive_count, 1, "a redriven message starts over");
}

#[tokio::test]
async fn events_go_out_in_batches_of_ten() {
    let bus = LocalEventBus::new();
    let events: Vec<DomainEvent> = (0..23)
        .map(|i| DomainEvent {
            detail_type: "tds.entity.synced".into(),
            detail: json!({"n": i}),
            time: chrono::Utc::now(),
        })
        .collect();
    bus.publish(events).await.unwrap();
    assert_eq!(bus.batch_sizes(), vec![10, 10, 3]);
    assert_eq!(bus.events()[22].detail["n"], 22);
}

#[tokio::test]
async fn cached_secrets_ask_the_store_once_per_ttl() {
    let store = std::sync::Arc::new(MemorySecrets::new([("zoho".to_string(), "v1".to_string())]));
    let now = std::sync::Arc::new(std::sync::Mutex::new(std::time::Instant::now()));
    let clock = {
        let now = now.clone();
        std::sync::Arc::new(move || *now.lock().unwrap())
    };
    let cached = CachedSecrets::with_clock(store.clone(), Duration::from_millis(100), clock);
    assert_eq!(cached.secret("zoho").await.unwrap(), "v1");
    assert_eq!(cached.secret("zoho").await.unwrap(), "v1");
    assert_eq!(store.reads(), 1, "served from the cache");
    store.set("zoho", "v2");
    *now.lock().unwrap() += Duration::from_millis(99);
    assert_eq!(cached.secret("zoho").await.unwrap(), "v1", "within the TTL");
    *now.lock().unwrap() += Duration::from_millis(1);
    assert_eq!(
        cached.secret("zoho").await.unwrap(),
        "v2",
        "re-read after the TTL"
    );
    assert_eq!(store.reads(), 2);
    let err = cached.secret("missing").await.unwrap_err();
    assert!(!err.is_retriable());
    assert!(err.to_string().contains("missing"));
}

#[tokio::test]
async fn blobs_round_trip_and_bad_keys_are_refused() {
    let dir = std::env::temp_dir().join(format!("tds-blobs-{}", std::process::id()));
    let store = DirBlobStore::new(&dir);
    store
        .put("org/items/1/img.jpg", vec![1, 2, 3], "image/jpeg")
        .await
        .unwrap();
    assert_eq!(
        store.get("org/items/1/img.jpg").await.unwrap(),
        ("image/jpeg".into(), vec![1, 2, 3])
    );
    assert!(matches!(
        store.get("org/none").await,
        Err(tds_core::ports::PortError::NotFound { .. })
    ));
    for bad in ["../escape", "/abs", "a//b", ""] {
        assert!(store.put(bad, vec![], "x").await.is_err(), "{bad:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
