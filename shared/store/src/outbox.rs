//! The outbox (`tds_outbox`): domain events staged in the same transaction as the rows they
//! announce and deleted once the event bus has them (by the next write of the same process, in the
//! same statement that stages its events, or by a drain), so an event is published at least once
//! even when the bus fails or the process dies between the commit and the publish. A write batch's
//! events are one outbox row (a JSON array), so staging and forgetting them costs one row each
//! whatever the batch's size. Each event carries an `event_id` for consumers to dedupe: the row id
//! for the batch's first event, `<row id>.<n>` for its n-th after that. The statement that stages a
//! batch's events also records its webhook receipts (the insert is [`crate::receipts`]'s), so a
//! write batch costs four round trips: BEGIN, its rows, this statement, COMMIT.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tds_core::ports::DomainEvent;

use crate::{Store, StoreError};

/// One event as the outbox row's array holds it.
#[derive(Serialize, Deserialize)]
struct Staged<'a> {
    detail_type: std::borrow::Cow<'a, str>,
    detail: std::borrow::Cow<'a, Value>,
    time: DateTime<Utc>,
}

/// Records a batch's webhook `receipts` (see [`crate::NewReceipt`]), stages its `events` as one
/// outbox row and forgets `published` rows (an earlier batch's, published since), in one statement
/// on `conn`; the new row's id, `None` when there are no events.
pub(crate) async fn stage(
    conn: &mut sqlx::PgConnection,
    receipts: &[crate::NewReceipt],
    events: &[DomainEvent],
    published: &[i64],
) -> Result<Option<i64>, StoreError> {
    if receipts.is_empty() && events.is_empty() && published.is_empty() {
        return Ok(None);
    }
    // Every data-modifying CTE runs whether or not it is referenced.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH {},
                  forgotten AS (DELETE FROM tds_outbox WHERE id = ANY($11::bigint[]))
             INSERT INTO tds_outbox (events) SELECT $10::jsonb WHERE $10::jsonb IS NOT NULL
             RETURNING id",
            crate::receipts::RECORD_CTE
        )
    });
    let staged: Option<Vec<Staged<'_>>> = (!events.is_empty()).then(|| {
        events
            .iter()
            .map(|e| Staged {
                detail_type: e.detail_type.as_str().into(),
                detail: std::borrow::Cow::Borrowed(&e.detail),
                time: e.time,
            })
            .collect()
    });
    crate::receipts::bind(sqlx::query_scalar(SQL.as_str()), receipts)
        .bind(staged.map(sqlx::types::Json))
        .bind(published)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::db("record receipts and stage events"))
}

/// `event`, the `index`-th of outbox row `batch`, with its `event_id` set (see the module docs).
pub fn with_event_id(mut event: DomainEvent, batch: i64, index: usize) -> DomainEvent {
    if let Value::Object(map) = &mut event.detail {
        let id = match index {
            0 => batch.to_string(),
            n => format!("{batch}.{n}"),
        };
        map.insert("event_id".into(), Value::String(id));
    }
    event
}

impl Store {
    /// Forgets published outbox rows (one statement).
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

    /// Up to `limit` outbox rows staged more than `older_than` seconds ago (their publisher failed
    /// or died), oldest first: each row's id and its events, each with its `event_id`.
    pub async fn unpublished_events(
        &self,
        older_than_secs: f64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<DomainEvent>)>, StoreError> {
        let rows: Vec<(i64, sqlx::types::Json<Vec<Staged<'static>>>)> = sqlx::query_as(
            "SELECT id, events FROM tds_outbox
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
            .map(|(id, events)| {
                let events = events
                    .0
                    .into_iter()
                    .enumerate()
                    .map(|(n, e)| {
                        let event = DomainEvent {
                            detail_type: e.detail_type.into_owned(),
                            detail: e.detail.into_owned(),
                            time: e.time,
                        };
                        with_event_id(event, id, n)
                    })
                    .collect();
                (id, events)
            })
            .collect())
    }
}
