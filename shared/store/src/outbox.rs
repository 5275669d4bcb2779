//! The outbox (`tds_outbox`): domain events staged in the same transaction as the rows they
//! announce and deleted once the event bus has them (by the next write of the same process, in the
//! same statement that stages its events, or by a drain), so an event is published at least once
//! even when the bus fails or the process dies between the commit and the publish. Each event
//! carries its row id as `event_id`, for consumers to dedupe. The statement that stages a batch's
//! events also records its webhook receipts (the insert is [`crate::receipts`]'s), so a write batch
//! costs three round trips: its rows, this statement, COMMIT.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tds_core::ports::DomainEvent;

use crate::{Store, StoreError};

/// Records a batch's webhook `receipts` (see [`crate::NewReceipt`]), stages its `events` and forgets
/// `published` (events an earlier batch published), in one statement on `conn`; the new events' ids
/// in order.
pub(crate) async fn stage(
    conn: &mut sqlx::PgConnection,
    receipts: &[crate::NewReceipt],
    events: &[DomainEvent],
    published: &[i64],
) -> Result<Vec<i64>, StoreError> {
    if receipts.is_empty() && events.is_empty() && published.is_empty() {
        return Ok(Vec::new());
    }
    // Identity values follow the order rows are inserted in (`ORDER BY n`), so the sorted ids
    // match the events in order. Every data-modifying CTE runs whether or not it is referenced.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH {},
                  forgotten AS (DELETE FROM tds_outbox WHERE id = ANY($13::bigint[]))
             INSERT INTO tds_outbox (detail_type, detail, occurred_at)
             SELECT t, d, o FROM unnest($10::text[], $11::jsonb[], $12::timestamptz[]) WITH ORDINALITY AS u(t, d, o, n)
             ORDER BY n
             RETURNING id",
            crate::receipts::RECORD_CTE
        )
    });
    let query = crate::receipts::bind(sqlx::query_scalar(SQL.as_str()), receipts);
    let mut ids: Vec<i64> = query
        .bind(
            events
                .iter()
                .map(|e| e.detail_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| sqlx::types::Json(&e.detail))
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.time).collect::<Vec<_>>())
        .bind(published)
        .fetch_all(conn)
        .await
        .map_err(StoreError::db("record receipts and stage events"))?;
    ids.sort_unstable();
    Ok(ids)
}

/// `event` with `event_id` set to its outbox id.
pub fn with_event_id(mut event: DomainEvent, id: i64) -> DomainEvent {
    if let Value::Object(map) = &mut event.detail {
        map.insert("event_id".into(), Value::String(id.to_string()));
    }
    event
}

impl Store {
    /// Forgets published events (one statement).
    pub async fn events_published(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM tds_outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::db("forget published events"))
    }

    /// Up to `limit` staged events older than `older_than` seconds (their publisher failed or died),
    /// oldest first, each with its `event_id`.
    pub async fn unpublished_events(
        &self,
        older_than_secs: f64,
        limit: i64,
    ) -> Result<Vec<(i64, DomainEvent)>, StoreError> {
        let rows: Vec<(i64, String, Value, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, detail_type, detail, occurred_at FROM tds_outbox
             WHERE created_at < clock_timestamp() - make_interval(secs => $1)
             ORDER BY id LIMIT $2",
        )
        .bind(older_than_secs)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read unpublished events"))?;
        Ok(rows
            .into_iter()
            .map(|(id, detail_type, detail, time)| {
                (
                    id,
                    with_event_id(
                        DomainEvent {
                            detail_type,
                            detail,
                            time,
                        },
                        id,
                    ),
                )
            })
            .collect())
    }
}
