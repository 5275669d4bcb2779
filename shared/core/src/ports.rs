//! Ports: the traits core logic uses for the queue, the event bus, the secret store and the blob store.
//! Each has an AWS adapter (SQS, EventBridge, Secrets Manager, S3) and a local twin with the same
//! semantics (`tds-local`); core logic sees only these traits. Futures are boxed so ports can be used
//! as `Arc<dyn ...>`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A boxed, sendable future: what port methods return.
pub type PortFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PortError>> + Send + 'a>>;

/// A port call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The backing service is unreachable, throttling or failing: retry later.
    #[error("{port} unavailable: {message}")]
    Unavailable {
        /// Which port.
        port: &'static str,
        /// What happened (never a secret).
        message: String,
    },
    /// The request can never succeed (bad input, missing resource, too large).
    #[error("{port} refused the request: {message}")]
    Rejected {
        /// Which port.
        port: &'static str,
        /// Why.
        message: String,
    },
    /// The thing asked for does not exist.
    #[error("{port}: {what} not found")]
    NotFound {
        /// Which port.
        port: &'static str,
        /// What was missing.
        what: String,
    },
}

impl PortError {
    /// Whether retrying later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, PortError::Unavailable { .. })
    }
}

/// A message as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Queue-assigned id.
    pub message_id: String,
    /// Handle to delete or hide the message with (changes on every receive).
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
    /// When it was first sent.
    pub sent_at: DateTime<Utc>,
}

/// Queue depth, for health and the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueStats {
    /// Messages ready to receive.
    pub visible: u64,
    /// Messages received and not yet deleted or returned.
    pub in_flight: u64,
    /// Age of the oldest message, in seconds; `None` when the queue cannot say (SQS without
    /// CloudWatch, or CloudWatch has no recent datapoint).
    pub oldest_age_secs: Option<u64>,
}

/// An at-least-once queue with visibility timeouts (SQS semantics).
pub trait Queue: Send + Sync {
    /// Sends one message; returns its id once the queue has durably accepted it.
    fn send(&self, body: String) -> PortFuture<'_, String>;
    /// Sends up to 10 messages; one result per message, in order.
    fn send_batch(&self, bodies: Vec<String>) -> PortFuture<'_, Vec<Result<String, PortError>>>;
    /// Receives up to `max` (≤ 10) visible messages, hiding each for the visibility timeout.
    fn receive(&self, max: usize) -> PortFuture<'_, Vec<ReceivedMessage>>;
    /// Deletes a received message.
    fn delete<'a>(&'a self, receipt_handle: &'a str) -> PortFuture<'a, ()>;
    /// Looks at up to `max` (≤ 10) visible messages without taking them (the DLQ peek of the admin
    /// tools). On SQS a peek is a receive with a zero visibility timeout, so it counts as a receive.
    fn peek(&self, max: usize) -> PortFuture<'_, Vec<ReceivedMessage>>;
    /// Makes a received message visible again after `delay`.
    fn release<'a>(&'a self, receipt_handle: &'a str, delay: Duration) -> PortFuture<'a, ()>;
    /// Depth and age.
    fn stats(&self) -> PortFuture<'_, QueueStats>;
}

/// Moves dead-lettered messages back to their source queue.
pub trait Redrive: Send + Sync {
    /// Moves up to `max` messages from the dead-letter queue to the source; returns how many moved.
    fn redrive(&self, max: usize) -> PortFuture<'_, usize>;
    /// Moves the dead letters with these message ids (as [`Queue::peek`] shows them) back to the
    /// source; ids no longer in the dead-letter queue are skipped. Returns how many moved.
    fn redrive_ids<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, usize>;
}

/// A domain event (EventBridge: source `tds`, detail-type, detail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Detail type: `tds.entity.synced`, `tds.sync.completed`, ...
    pub detail_type: String,
    /// The event's JSON detail.
    pub detail: Value,
    /// When it happened.
    pub time: DateTime<Utc>,
}

/// Where domain events go.
pub trait EventBus: Send + Sync {
    /// Publishes events (adapters send them in batches of at most 10).
    fn publish(&self, events: Vec<DomainEvent>) -> PortFuture<'_, ()>;
}

/// Where secrets come from.
pub trait SecretStore: Send + Sync {
    /// The secret's string value.
    fn secret<'a>(&'a self, name: &'a str) -> PortFuture<'a, String>;
}

impl<T: SecretStore + ?Sized> SecretStore for std::sync::Arc<T> {
    fn secret<'a>(&'a self, name: &'a str) -> PortFuture<'a, String> {
        (**self).secret(name)
    }
}

/// Where blobs (item images) go.
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `key`.
    fn put<'a>(&'a self, key: &'a str, bytes: Vec<u8>, content_type: &'a str)
        -> PortFuture<'a, ()>;
    /// Reads `key`: `(content type, bytes)`.
    fn get<'a>(&'a self, key: &'a str) -> PortFuture<'a, (String, Vec<u8>)>;
}

/// A monotonic clock; [`Instant::now`] unless a test injects another.
pub type Clock = std::sync::Arc<dyn Fn() -> Instant + Send + Sync>;

/// The process's monotonic clock.
pub fn system_clock() -> Clock {
    std::sync::Arc::new(Instant::now)
}

/// A [`SecretStore`] in front of another that keeps values for `ttl`, so a warm Lambda asks the
/// backing store once per `ttl`, not once per invocation.
pub struct CachedSecrets<S> {
    inner: S,
    ttl: Duration,
    clock: Clock,
    cache: Mutex<HashMap<String, (Instant, String)>>,
}

impl<S: SecretStore> CachedSecrets<S> {
    /// Caches `inner`'s values for `ttl`.
    pub fn new(inner: S, ttl: Duration) -> CachedSecrets<S> {
        CachedSecrets::with_clock(inner, ttl, system_clock())
    }

    /// [`CachedSecrets::new`] on `clock` (tests move time forward by hand instead of sleeping).
    pub fn with_clock(inner: S, ttl: Duration, clock: Clock) -> CachedSecrets<S> {
        CachedSecrets {
            inner,
            ttl,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets `name` (after a secret is rotated, say).
    pub fn invalidate(&self, name: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

impl<S: SecretStore> SecretStore for CachedSecrets<S> {
    fn secret<'a>(&'a self, name: &'a str) -> PortFuture<'a, String> {
        Box::pin(async move {
            let hit = self
                .cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(name)
                .filter(|(at, _)| (self.clock)().saturating_duration_since(*at) < self.ttl)
                .map(|(_, v)| v.clone());
            if let Some(v) = hit {
                return Ok(v);
            }
            let value = self.inner.secret(name).await?;
            self.cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.to_string(), ((self.clock)(), value.clone()));
            Ok(value)
        })
    }
}
