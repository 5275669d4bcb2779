//! Webhook receipts (`tds_webhook_receipts`): one row per delivery's dedupe key, written in the same
//! transaction as the change it carried (with the row's outcome), so a redelivered or duplicated
//! webhook is recognised and not applied (nor re-fetched from Zoho) twice. A delivery that could not
//! be applied in a committed batch keeps a receipt without `processed_at`.

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
    /// What applying it did to the row; `None` when it was not applied (it will be retried or
    /// dead-lettered).
    pub outcome: Option<Outcome>,
}

impl Store {
    /// Of `dedupe_keys`, those whose delivery has already been applied (one statement).
    pub async fn applied_receipts(
        &self,
        dedupe_keys: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        if dedupe_keys.is_empty() {
            return Ok(HashSet::new());
        }
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT dedupe_key FROM tds_webhook_receipts
             WHERE dedupe_key = ANY($1::text[]) AND processed_at IS NOT NULL",
        )
        .bind(dedupe_keys)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("webhook receipts"))?;
        Ok(keys.into_iter().collect())
    }

    /// Deletes receipts applied more than `days` days ago, `chunk` rows a statement (each its own
    /// short transaction, found through the BRIN index on `processed_at`) until none is left; returns
    /// how many went. Receipts never applied are kept: they belong to messages retried or dead-lettered.
    pub async fn prune_receipts(&self, days: u32, chunk: i64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM tds_webhook_receipts WHERE dedupe_key IN (
                     SELECT dedupe_key FROM tds_webhook_receipts
                     WHERE processed_at < now() - make_interval(days => $1) LIMIT $2)",
            )
            .bind(i32::try_from(days).unwrap_or(i32::MAX))
            .bind(chunk)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("delete old webhook receipts"))?
            .rows_affected();
            deleted += n;
            // A short chunk was the last one (`n == 0` also ends a non-positive `chunk`).
            if n == 0 || n < u64::try_from(chunk).unwrap_or(0) {
                return Ok(deleted);
            }
        }
    }
}

/// The receipts' insert as a data-modifying CTE named `receipts` over parameters `$1`..`$9` (see
/// [`bind`]): new keys are inserted, an existing key takes the latest carrying message and, if it was
/// not applied yet, this outcome. A key that was applied keeps its first outcome and time. The outbox
/// statement ([`crate::outbox::stage`]) carries it, so a batch's receipts and events cost one round trip.
pub(crate) const RECORD_CTE: &str = "receipts AS (
    INSERT INTO tds_webhook_receipts AS r
           (org_id, entity, zoho_id, action, dedupe_key, last_modified_time, message_id, received_at,
            outcome, processed_at)
    SELECT DISTINCT ON (dedupe_key) t.*, CASE WHEN t.outcome IS NULL THEN NULL ELSE clock_timestamp() END
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                $6::timestamptz[], $7::text[], $8::timestamptz[], $9::text[])
         AS t(org_id, entity, zoho_id, action, dedupe_key, last_modified_time, message_id, received_at, outcome)
    ORDER BY dedupe_key, outcome NULLS LAST
    ON CONFLICT (dedupe_key) DO UPDATE SET message_id = EXCLUDED.message_id,
           outcome = COALESCE(r.outcome, EXCLUDED.outcome),
           processed_at = COALESCE(r.processed_at, EXCLUDED.processed_at))";

/// Binds `receipts` as [`RECORD_CTE`]'s parameters `$1`..`$9`.
pub(crate) fn bind<'q>(
    query: sqlx::query::QueryScalar<'q, sqlx::Postgres, i64, sqlx::postgres::PgArguments>,
    receipts: &'q [NewReceipt],
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, i64, sqlx::postgres::PgArguments> {
    query
        .bind(
            receipts
                .iter()
                .map(|r| r.org_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            receipts
                .iter()
                .map(|r| r.entity.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            receipts
                .iter()
                .map(|r| r.zoho_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(receipts.iter().map(|r| r.action).collect::<Vec<_>>())
        .bind(
            receipts
                .iter()
                .map(|r| r.dedupe_key.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            receipts
                .iter()
                .map(|r| r.last_modified_time)
                .collect::<Vec<_>>(),
        )
        .bind(
            receipts
                .iter()
                .map(|r| r.message_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(receipts.iter().map(|r| r.received_at).collect::<Vec<_>>())
        .bind(
            receipts
                .iter()
                .map(|r| r.outcome.as_ref().map(Outcome::label))
                .collect::<Vec<_>>(),
        )
}
