//! A durable queue in PostgreSQL with SQS semantics (`tds_queue_messages`): at-least-once delivery,
//! a visibility timeout per receive, a receive count, a dead-letter queue by name after
//! `max_receive_count` receives (SQS RedrivePolicy) and redrive. Receivers take messages with
//! `FOR UPDATE SKIP LOCKED`, so concurrent workers never get the same message. The local stack
//! (`tds up`) uses it as its inbox, so a webhook answered 202 survives the process being killed;
//! deployed stacks use SQS.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tds_core::ports::{PortError, PortFuture, Queue, QueueStats, ReceivedMessage, Redrive};

use crate::Store;

/// A named queue in `tds_queue_messages`; cheap to clone.
#[derive(Debug, Clone)]
pub struct PgQueue {
    store: Store,
    name: String,
    visibility: Duration,
    dead_letter: Option<(String, u32)>,
}

fn unavailable(e: sqlx::Error) -> PortError {
    PortError::Unavailable {
        port: "queue",
        message: format!("PostgreSQL queue: {e}"),
    }
}

/// `id:receive_count`: a handle that stops working once the message is received again.
fn handle(id: i64, count: i32) -> String {
    format!("{id}:{count}")
}

fn parse_handle(receipt_handle: &str) -> Result<(i64, i32), PortError> {
    receipt_handle
        .split_once(':')
        .and_then(|(id, count)| Some((id.parse().ok()?, count.parse().ok()?)))
        .ok_or_else(|| PortError::Rejected {
            port: "queue",
            message: format!("not a receipt handle of this queue: {receipt_handle:?}"),
        })
}

type Row = (i64, String, i32, DateTime<Utc>);

fn received(rows: Vec<Row>) -> Vec<ReceivedMessage> {
    rows.into_iter()
        .map(|(id, body, count, sent_at)| ReceivedMessage {
            message_id: id.to_string(),
            receipt_handle: handle(id, count),
            body,
            receive_count: u32::try_from(count).unwrap_or(0),
            sent_at,
        })
        .collect()
}

impl PgQueue {
    /// The queue `name` in `store`'s database, hiding received messages for `visibility`.
    pub fn new(store: Store, name: impl Into<String>, visibility: Duration) -> PgQueue {
        PgQueue {
            store,
            name: name.into(),
            visibility,
            dead_letter: None,
        }
    }

    /// Moves a message to the queue `dlq` when it would be received more than `max_receive_count`
    /// times.
    pub fn with_dead_letter(mut self, dlq: &PgQueue, max_receive_count: u32) -> PgQueue {
        self.dead_letter = Some((dlq.name.clone(), max_receive_count.max(1)));
        self
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Queue for PgQueue {
    fn send(&self, body: String) -> PortFuture<'_, String> {
        Box::pin(async move {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tds_queue_messages (queue, body) VALUES ($1, $2) RETURNING id",
            )
            .bind(&self.name)
            .bind(&body)
            .fetch_one(self.store.pool())
            .await
            .map_err(unavailable)?;
            Ok(id.to_string())
        })
    }

    fn send_batch(&self, bodies: Vec<String>) -> PortFuture<'_, Vec<Result<String, PortError>>> {
        Box::pin(async move {
            let ids: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO tds_queue_messages (queue, body)
                 SELECT $1, b FROM unnest($2::text[]) WITH ORDINALITY AS t(b, n) ORDER BY n
                 RETURNING id",
            )
            .bind(&self.name)
            .bind(&bodies)
            .fetch_all(self.store.pool())
            .await
            .map_err(unavailable)?;
            Ok(ids.into_iter().map(|id| Ok(id.to_string())).collect())
        })
    }

    fn receive(&self, max: usize) -> PortFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(async move {
            let mut tx = self.store.pool().begin().await.map_err(unavailable)?;
            if let Some((dlq, max_receives)) = &self.dead_letter {
                // Received too often: to the dead-letter queue, starting over there (as SQS).
                sqlx::query(
                    "UPDATE tds_queue_messages SET queue = $2, receive_count = 0, visible_at = clock_timestamp()
                     WHERE id IN (SELECT id FROM tds_queue_messages
                                  WHERE queue = $1 AND visible_at <= clock_timestamp() AND receive_count >= $3
                                  FOR UPDATE SKIP LOCKED)",
                )
                .bind(&self.name)
                .bind(dlq)
                .bind(i32::try_from(*max_receives).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            let rows: Vec<Row> = sqlx::query_as(
                "UPDATE tds_queue_messages m
                 SET receive_count = m.receive_count + 1,
                     visible_at = clock_timestamp() + make_interval(secs => $3)
                 FROM (SELECT id FROM tds_queue_messages
                       WHERE queue = $1 AND visible_at <= clock_timestamp()
                       ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) picked
                 WHERE m.id = picked.id
                 RETURNING m.id, m.body, m.receive_count, m.sent_at",
            )
            .bind(&self.name)
            .bind(i64::try_from(max.min(10)).unwrap_or(10))
            .bind(self.visibility.as_secs_f64())
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            let mut rows = rows;
            rows.sort_by_key(|r| r.0);
            Ok(received(rows))
        })
    }

    fn delete<'a>(&'a self, receipt_handle: &'a str) -> PortFuture<'a, ()> {
        Box::pin(async move {
            let (id, count) = parse_handle(receipt_handle)?;
            sqlx::query(
                "DELETE FROM tds_queue_messages WHERE id = $1 AND receive_count = $2 AND queue = $3",
            )
            .bind(id)
            .bind(count)
            .bind(&self.name)
            .execute(self.store.pool())
            .await
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn peek(&self, max: usize) -> PortFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(async move {
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, body, receive_count, sent_at FROM tds_queue_messages
                 WHERE queue = $1 AND visible_at <= clock_timestamp() ORDER BY id LIMIT $2",
            )
            .bind(&self.name)
            .bind(i64::try_from(max.min(10)).unwrap_or(10))
            .fetch_all(self.store.pool())
            .await
            .map_err(unavailable)?;
            Ok(received(rows))
        })
    }

    fn release<'a>(&'a self, receipt_handle: &'a str, delay: Duration) -> PortFuture<'a, ()> {
        Box::pin(async move {
            let (id, count) = parse_handle(receipt_handle)?;
            sqlx::query(
                "UPDATE tds_queue_messages SET visible_at = clock_timestamp() + make_interval(secs => $3)
                 WHERE id = $1 AND receive_count = $2 AND queue = $4",
            )
            .bind(id)
            .bind(count)
            .bind(delay.as_secs_f64())
            .bind(&self.name)
            .execute(self.store.pool())
            .await
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn stats(&self) -> PortFuture<'_, QueueStats> {
        Box::pin(async move {
            let (visible, in_flight, oldest): (i64, i64, f64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE visible_at <= clock_timestamp()),
                        count(*) FILTER (WHERE visible_at > clock_timestamp()),
                        coalesce(extract(epoch FROM clock_timestamp() - min(sent_at)), 0)::float8
                 FROM tds_queue_messages WHERE queue = $1",
            )
            .bind(&self.name)
            .fetch_one(self.store.pool())
            .await
            .map_err(unavailable)?;
            Ok(QueueStats {
                visible: u64::try_from(visible).unwrap_or(0),
                in_flight: u64::try_from(in_flight).unwrap_or(0),
                oldest_age_secs: Some(oldest.max(0.0) as u64),
            })
        })
    }
}

/// Redrive of a [`PgQueue`]'s dead-letter queue back to its source.
#[derive(Debug, Clone)]
pub struct PgRedrive {
    /// The queue messages go back to.
    pub source: PgQueue,
    /// The dead-letter queue they come from.
    pub dead_letter: PgQueue,
}

impl Redrive for PgRedrive {
    fn redrive(&self, max: usize) -> PortFuture<'_, usize> {
        Box::pin(async move {
            let moved = sqlx::query(
                "UPDATE tds_queue_messages SET queue = $2, receive_count = 0, visible_at = clock_timestamp()
                 WHERE id IN (SELECT id FROM tds_queue_messages WHERE queue = $1
                              ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)",
            )
            .bind(&self.dead_letter.name)
            .bind(&self.source.name)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .execute(self.dead_letter.store.pool())
            .await
            .map_err(unavailable)?
            .rows_affected();
            Ok(usize::try_from(moved).unwrap_or(usize::MAX))
        })
    }

    fn redrive_ids<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, usize> {
        Box::pin(async move {
            // Message ids are row ids; anything else cannot be one of this queue's.
            let ids: Vec<i64> = ids.iter().filter_map(|id| id.parse().ok()).collect();
            let moved = sqlx::query(
                "UPDATE tds_queue_messages SET queue = $2, receive_count = 0, visible_at = clock_timestamp()
                 WHERE queue = $1 AND id = ANY($3)",
            )
            .bind(&self.dead_letter.name)
            .bind(&self.source.name)
            .bind(&ids)
            .execute(self.dead_letter.store.pool())
            .await
            .map_err(unavailable)?
            .rows_affected();
            Ok(usize::try_from(moved).unwrap_or(usize::MAX))
        })
    }
}
