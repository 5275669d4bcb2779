//! Webhook receipts (`tds_webhook_receipts`): one row per delivery's dedupe key, written before the
//! change is applied and marked with its outcome after, so a redelivered or duplicated webhook is
//! recognised and not applied twice.

use chrono::{DateTime, Utc};
use std::collections::HashSet;

use crate::upsert::Outcome;
use crate::{Store, StoreError};

/// A delivery to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    /// Organisation.
    pub org_id: String,
    /// Entity kind name (`item`, `invoice`, ...).
    pub entity: String,
    /// Record id.
    pub zoho_id: String,
    /// `created`, `edited`, `upserted` or `deleted` (the table checks the set).
    pub action: &'static str,
    /// The delivery's dedupe key.
    pub dedupe_key: String,
    /// Zoho's `last_modified_time` as the payload claimed it.
    pub last_modified_time: Option<DateTime<Utc>>,
    /// The queue message that carried it.
    pub message_id: String,
    /// When webhook-ingest accepted it.
    pub received_at: DateTime<Utc>,
}

impl Store {
    /// Records the receipts of a batch in one statement; returns the dedupe keys not yet applied
    /// (new ones, and ones recorded before whose change was never marked applied).
    pub async fn record_receipts(
        &self,
        receipts: &[NewReceipt],
    ) -> Result<HashSet<String>, StoreError> {
        if receipts.is_empty() {
            return Ok(HashSet::new());
        }
        let rows: Vec<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "INSERT INTO tds_webhook_receipts (org_id, entity, zoho_id, action, dedupe_key, last_modified_time, message_id, received_at)
             SELECT DISTINCT ON (dedupe_key) * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                                          $6::timestamptz[], $7::text[], $8::timestamptz[])
                  AS t(org_id, entity, zoho_id, action, dedupe_key, last_modified_time, message_id, received_at)
             ON CONFLICT (dedupe_key) DO UPDATE SET message_id = EXCLUDED.message_id
             RETURNING dedupe_key, processed_at",
        )
        .bind(receipts.iter().map(|r| r.org_id.as_str()).collect::<Vec<_>>())
        .bind(receipts.iter().map(|r| r.entity.as_str()).collect::<Vec<_>>())
        .bind(receipts.iter().map(|r| r.zoho_id.as_str()).collect::<Vec<_>>())
        .bind(receipts.iter().map(|r| r.action).collect::<Vec<_>>())
        .bind(receipts.iter().map(|r| r.dedupe_key.as_str()).collect::<Vec<_>>())
        .bind(receipts.iter().map(|r| r.last_modified_time).collect::<Vec<_>>())
        .bind(receipts.iter().map(|r| r.message_id.as_str()).collect::<Vec<_>>())
        .bind(receipts.iter().map(|r| r.received_at).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("webhook receipts"))?;
        Ok(rows
            .into_iter()
            .filter(|(_, at)| at.is_none())
            .map(|(key, _)| key)
            .collect())
    }

    /// Marks applied receipts with their outcome ([`Outcome::label`]) in one statement.
    pub async fn mark_receipts_applied(
        &self,
        done: &[(String, Outcome)],
    ) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let mut conn = self.acquire().await?;
        mark_applied(&mut conn, done).await
    }
}

/// [`Store::mark_receipts_applied`] on `conn`.
pub(crate) async fn mark_applied(
    conn: &mut sqlx::PgConnection,
    done: &[(String, Outcome)],
) -> Result<(), StoreError> {
    let (keys, outcomes): (Vec<&str>, Vec<&str>) =
        done.iter().map(|(k, o)| (k.as_str(), o.label())).unzip();
    sqlx::query(
        "UPDATE tds_webhook_receipts r SET processed_at = clock_timestamp(), outcome = u.outcome
         FROM UNNEST($1::text[], $2::text[]) AS u(dedupe_key, outcome) WHERE r.dedupe_key = u.dedupe_key",
    )
    .bind(keys)
    .bind(outcomes)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(StoreError::db("mark webhook receipts"))
}
