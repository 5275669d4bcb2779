//! Local twins of TDS's ports (`tds_core::ports`), for tests and the local stack. They keep the
//! semantics of the AWS services they stand in for, so code that works against them works on AWS:
//! the queue hides received messages for a visibility timeout, counts receives, moves a message to its
//! dead-letter queue on the receive after `max_receive_count`, and can redrive; the event bus records
//! what was published in batches of at most 10; blobs live in a directory. The in-memory queue is for
//! tests; the local stack's inbox is durable (`tds_store::PgQueue`).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock: the real one at run time; tests pause it and move it by hand (no sleeping, no race
// with a loaded machine's scheduler).
use tokio::time::Instant;

use chrono::{DateTime, Utc};
use tds_core::ports::{
    BlobStore, DomainEvent, EventBus, PortError, PortFuture, Queue, QueueStats, ReceivedMessage,
    Redrive, SecretStore,
};

struct Stored {
    id: String,
    body: String,
    sent_at: DateTime<Utc>,
    sent_instant: Instant,
    visible_at: Instant,
    receive_count: u32,
    receipt: Option<String>,
}

struct Inner {
    messages: VecDeque<Stored>,
    next: u64,
}

/// An in-process queue with SQS semantics.
pub struct LocalQueue {
    name: String,
    visibility: Duration,
    dead_letter: Option<(Arc<LocalQueue>, u32)>,
    inner: Mutex<Inner>,
}

const PORT: &str = "local queue";

impl LocalQueue {
    /// A queue hiding received messages for `visibility`.
    pub fn new(name: impl Into<String>, visibility: Duration) -> Arc<LocalQueue> {
        Arc::new(LocalQueue {
            name: name.into(),
            visibility,
            dead_letter: None,
            inner: Mutex::new(Inner {
                messages: VecDeque::new(),
                next: 0,
            }),
        })
    }

    /// A queue whose messages move to `dlq` when received more than `max_receive_count` times
    /// (SQS RedrivePolicy).
    pub fn with_dead_letter(
        name: impl Into<String>,
        visibility: Duration,
        dlq: Arc<LocalQueue>,
        max_receive_count: u32,
    ) -> Arc<LocalQueue> {
        Arc::new(LocalQueue {
            name: name.into(),
            visibility,
            dead_letter: Some((dlq, max_receive_count.max(1))),
            inner: Mutex::new(Inner {
                messages: VecDeque::new(),
                next: 0,
            }),
        })
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, body: String, receive_count: u32, sent_at: DateTime<Utc>) -> String {
        let mut inner = self.lock();
        inner.next += 1;
        let id = format!("{}-{:08}", self.name, inner.next);
        let now = Instant::now();
        inner.messages.push_back(Stored {
            id: id.clone(),
            body,
            sent_at,
            sent_instant: now,
            visible_at: now,
            receive_count,
            receipt: None,
        });
        id
    }

    fn receive_now(&self, max: usize) -> Vec<ReceivedMessage> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut to_dlq = Vec::new();
        {
            let mut inner = self.lock();
            let mut i = 0;
            while i < inner.messages.len() && out.len() < max {
                if inner.messages[i].visible_at > now {
                    i += 1;
                    continue;
                }
                if let Some((_, max_receives)) = &self.dead_letter {
                    if inner.messages[i].receive_count >= *max_receives {
                        if let Some(m) = inner.messages.remove(i) {
                            to_dlq.push(m);
                        }
                        continue;
                    }
                }
                inner.next += 1;
                let receipt = format!("{}-r{}", self.name, inner.next);
                let m = &mut inner.messages[i];
                m.receive_count += 1;
                m.visible_at = now + self.visibility;
                m.receipt = Some(receipt.clone());
                out.push(ReceivedMessage {
                    message_id: m.id.clone(),
                    receipt_handle: receipt,
                    body: m.body.clone(),
                    receive_count: m.receive_count,
                    sent_at: m.sent_at,
                });
                i += 1;
            }
        }
        if let Some((dlq, _)) = &self.dead_letter {
            for m in to_dlq {
                dlq.push(m.body, m.receive_count, m.sent_at);
            }
        }
        out
    }

    fn with_receipt<T>(
        &self,
        receipt: &str,
        f: impl FnOnce(&mut Inner, usize) -> T,
    ) -> Result<T, PortError> {
        let mut inner = self.lock();
        let position = inner
            .messages
            .iter()
            .position(|m| m.receipt.as_deref() == Some(receipt))
            .ok_or_else(|| PortError::Rejected {
                port: PORT,
                message: format!("receipt handle {receipt} is invalid or expired"),
            })?;
        Ok(f(&mut inner, position))
    }

    /// Every message body, visible or not, oldest first (for tests and the DLQ peek).
    pub fn peek_all(&self) -> Vec<(String, u32)> {
        self.lock()
            .messages
            .iter()
            .map(|m| (m.body.clone(), m.receive_count))
            .collect()
    }
}

impl Queue for LocalQueue {
    fn send(&self, body: String) -> PortFuture<'_, String> {
        Box::pin(async move { Ok(self.push(body, 0, Utc::now())) })
    }

    fn send_batch(&self, bodies: Vec<String>) -> PortFuture<'_, Vec<Result<String, PortError>>> {
        Box::pin(async move {
            if bodies.len() > 10 {
                return Err(PortError::Rejected {
                    port: PORT,
                    message: format!("a batch holds at most 10 messages, got {}", bodies.len()),
                });
            }
            Ok(bodies
                .into_iter()
                .map(|b| Ok(self.push(b, 0, Utc::now())))
                .collect())
        })
    }

    fn receive(&self, max: usize) -> PortFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(async move {
            if max == 0 || max > 10 {
                return Err(PortError::Rejected {
                    port: PORT,
                    message: format!("receive takes 1 to 10 messages, got {max}"),
                });
            }
            Ok(self.receive_now(max))
        })
    }

    fn peek(&self, max: usize) -> PortFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(async move {
            let now = Instant::now();
            Ok(self
                .lock()
                .messages
                .iter()
                .filter(|m| m.visible_at <= now)
                .take(max.clamp(1, 10))
                .map(|m| ReceivedMessage {
                    message_id: m.id.clone(),
                    receipt_handle: String::new(),
                    body: m.body.clone(),
                    receive_count: m.receive_count,
                    sent_at: m.sent_at,
                })
                .collect())
        })
    }

    fn delete<'a>(&'a self, receipt_handle: &'a str) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.with_receipt(receipt_handle, |inner, i| {
                inner.messages.remove(i);
            })
        })
    }

    fn release<'a>(&'a self, receipt_handle: &'a str, delay: Duration) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.with_receipt(receipt_handle, |inner, i| {
                inner.messages[i].visible_at = Instant::now() + delay;
            })
        })
    }

    fn stats(&self) -> PortFuture<'_, QueueStats> {
        Box::pin(async move {
            let now = Instant::now();
            let inner = self.lock();
            let visible = inner
                .messages
                .iter()
                .filter(|m| m.visible_at <= now)
                .count() as u64;
            let oldest = inner
                .messages
                .iter()
                .map(|m| now.duration_since(m.sent_instant).as_secs())
                .max()
                .unwrap_or(0);
            Ok(QueueStats {
                visible,
                in_flight: inner.messages.len() as u64 - visible,
                oldest_age_secs: Some(oldest),
            })
        })
    }
}

/// Redrive from a local dead-letter queue back to its source (what `StartMessageMoveTask` does).
pub struct LocalRedrive {
    /// The source queue.
    pub source: Arc<LocalQueue>,
    /// Its dead-letter queue.
    pub dead_letter: Arc<LocalQueue>,
}

impl Redrive for LocalRedrive {
    fn redrive(&self, max: usize) -> PortFuture<'_, usize> {
        Box::pin(async move {
            let moved: Vec<Stored> = {
                let mut inner = self.dead_letter.lock();
                let n = max.min(inner.messages.len());
                inner.messages.drain(..n).collect()
            };
            Ok(self.send_back(moved))
        })
    }

    fn redrive_ids<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, usize> {
        Box::pin(async move {
            let moved: Vec<Stored> = {
                let mut inner = self.dead_letter.lock();
                let (chosen, kept): (Vec<Stored>, Vec<Stored>) =
                    std::mem::take(&mut inner.messages)
                        .into_iter()
                        .partition(|m| ids.contains(&m.id));
                inner.messages = kept.into();
                chosen
            };
            Ok(self.send_back(moved))
        })
    }
}

impl LocalRedrive {
    /// Puts dead letters back on the source; how many.
    fn send_back(&self, moved: Vec<Stored>) -> usize {
        let count = moved.len();
        for m in moved {
            // A redriven message starts over: its receive count is reset, as SQS does.
            self.source.push(m.body, 0, m.sent_at);
        }
        count
    }
}

/// An event bus that records what was published, batch by batch (and can be made to fail, as
/// EventBridge can); it can also append every event to a JSON-lines file, so what a local stack
/// published outlives the process (`tds up` writes `<data-dir>/events.jsonl`).
#[derive(Default)]
pub struct LocalEventBus {
    batches: Mutex<Vec<Vec<DomainEvent>>>,
    failing: std::sync::atomic::AtomicBool,
    log: Option<Mutex<std::fs::File>>,
}

impl LocalEventBus {
    /// A new, empty bus.
    pub fn new() -> Arc<LocalEventBus> {
        Arc::new(LocalEventBus::default())
    }

    /// A bus that also appends each event, as one JSON line
    /// (`{"detail_type", "time", "detail"}`), to the file at `path` (created when missing).
    pub fn with_log(path: &Path) -> std::io::Result<Arc<LocalEventBus>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Arc::new(LocalEventBus {
            log: Some(Mutex::new(file)),
            ..LocalEventBus::default()
        }))
    }

    /// Every event published so far, in order.
    pub fn events(&self) -> Vec<DomainEvent> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Makes every publish fail (`true`) or succeed again.
    pub fn set_failing(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sizes of the batches sent (each at most 10, as PutEvents allows).
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(Vec::len)
            .collect()
    }
}

impl EventBus for LocalEventBus {
    fn publish(&self, events: Vec<DomainEvent>) -> PortFuture<'_, ()> {
        Box::pin(async move {
            if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(tds_core::ports::PortError::Unavailable {
                    port: "event bus",
                    message: "the local event bus was told to fail".into(),
                });
            }
            if let Some(log) = &self.log {
                let mut text = String::new();
                for e in &events {
                    let line = serde_json::json!({
                        "detail_type": e.detail_type, "time": e.time, "detail": e.detail,
                    });
                    text.push_str(&line.to_string());
                    text.push('\n');
                }
                let mut file = log.lock().unwrap_or_else(|p| p.into_inner());
                std::io::Write::write_all(&mut *file, text.as_bytes()).map_err(|e| {
                    tds_core::ports::PortError::Unavailable {
                        port: "event bus",
                        message: format!("cannot append to the event log: {e}"),
                    }
                })?;
            }
            let mut batches = self.batches.lock().unwrap_or_else(|p| p.into_inner());
            for chunk in events.chunks(10) {
                batches.push(chunk.to_vec());
            }
            Ok(())
        })
    }
}

/// Secrets held in memory, counting reads (to check caches).
#[derive(Default)]
pub struct MemorySecrets {
    values: Mutex<HashMap<String, String>>,
    reads: Mutex<u64>,
}

impl MemorySecrets {
    /// A store holding `values`.
    pub fn new(values: impl IntoIterator<Item = (String, String)>) -> MemorySecrets {
        MemorySecrets {
            values: Mutex::new(values.into_iter().collect()),
            reads: Mutex::new(0),
        }
    }

    /// Sets a secret.
    pub fn set(&self, name: &str, value: &str) {
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), value.to_string());
    }

    /// How many reads reached this store.
    pub fn reads(&self) -> u64 {
        *self.reads.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretStore for MemorySecrets {
    fn secret<'a>(&'a self, name: &'a str) -> PortFuture<'a, String> {
        Box::pin(async move {
            *self.reads.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            self.values
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(name)
                .cloned()
                .ok_or_else(|| PortError::NotFound {
                    port: "secret store",
                    what: format!("secret {name}"),
                })
        })
    }
}

/// Blobs as files under a directory (`<root>/<key>`, content type in `<key>.content-type`).
pub struct DirBlobStore {
    root: PathBuf,
}

impl DirBlobStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl AsRef<Path>) -> DirBlobStore {
        DirBlobStore {
            root: root.as_ref().to_path_buf(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, PortError> {
        let valid = !key.is_empty()
            && !key.starts_with('/')
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !valid {
            return Err(PortError::Rejected {
                port: "blob store",
                message: format!(
                    "invalid blob key {key:?}: use relative paths without . or .. parts"
                ),
            });
        }
        Ok(self.root.join(key))
    }
}

fn io_error(e: std::io::Error) -> PortError {
    PortError::Unavailable {
        port: "blob store",
        message: e.to_string(),
    }
}

impl BlobStore for DirBlobStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        content_type: &'a str,
    ) -> PortFuture<'a, ()> {
        Box::pin(async move {
            let path = self.path(key)?;
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io_error)?;
            }
            // Write then rename, so a reader never sees half a file.
            let tmp = path.with_extension("partial");
            tokio::fs::write(&tmp, &bytes).await.map_err(io_error)?;
            tokio::fs::rename(&tmp, &path).await.map_err(io_error)?;
            let mut meta = path.clone().into_os_string();
            meta.push(".content-type");
            tokio::fs::write(meta, content_type).await.map_err(io_error)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> PortFuture<'a, (String, Vec<u8>)> {
        Box::pin(async move {
            let path = self.path(key)?;
            let bytes = match tokio::fs::read(&path).await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(PortError::NotFound {
                        port: "blob store",
                        what: format!("blob {key}"),
                    })
                }
                Err(e) => return Err(io_error(e)),
            };
            let mut meta = path.into_os_string();
            meta.push(".content-type");
            let content_type = tokio::fs::read_to_string(meta)
                .await
                .unwrap_or_else(|_| "application/octet-stream".into());
            Ok((content_type, bytes))
        })
    }
}
