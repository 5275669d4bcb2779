//! Reads of entity tables that later stages need: one row or several by id, rows changed since a
//! keyset position (for cursors and events), per-organisation counts, and the (id, version) list the
//! comparison engine diffs against Zoho.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};
use tds_core::EntityKind;

use crate::{Store, StoreError};

/// A stored entity row: the common columns (typed columns stay in SQL for queries and statistics).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// Organisation.
    pub org_id: String,
    /// Row id.
    pub zoho_id: String,
    /// The record as last written (`{}` for a placeholder tombstone).
    pub record: Value,
    /// The row's version.
    pub last_modified_time: DateTime<Utc>,
    /// SHA-256 of the record (empty for a placeholder tombstone).
    pub content_hash: Vec<u8>,
    /// Number of non-null top-level fields of the record.
    pub completeness: i32,
    /// Tombstone time, if deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When TDS last wrote the row.
    pub synced_at: DateTime<Utc>,
}

impl<'r> FromRow<'r, PgRow> for StoredRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(StoredRow {
            org_id: row.try_get("org_id")?,
            zoho_id: row.try_get("zoho_id")?,
            record: row.try_get("record")?,
            last_modified_time: row.try_get("last_modified_time")?,
            content_hash: row.try_get("content_hash")?,
            completeness: row.try_get("completeness")?,
            deleted_at: row.try_get("deleted_at")?,
            synced_at: row.try_get("synced_at")?,
        })
    }
}

/// A row's id and version, for record-by-record comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowVersion {
    /// Row id.
    pub zoho_id: String,
    /// The row's version.
    pub last_modified_time: DateTime<Utc>,
    /// Tombstone time, if deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// How many rows of a kind an organisation has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntityCounts {
    /// Rows not tombstoned.
    pub active: i64,
    /// Tombstoned rows.
    pub deleted: i64,
}

const COMMON: &str =
    "org_id, zoho_id, record, last_modified_time, content_hash, completeness, deleted_at, synced_at";

impl Store {
    /// One row by id, tombstoned or not.
    pub async fn get(
        &self,
        kind: EntityKind,
        org_id: &str,
        zoho_id: &str,
    ) -> Result<Option<StoredRow>, StoreError> {
        let sql = format!(
            "SELECT {COMMON} FROM {} WHERE org_id = $1 AND zoho_id = $2",
            kind.table()
        );
        sqlx::query_as(&sql)
            .bind(org_id)
            .bind(zoho_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read by id"))
    }

    /// Several rows by id, in id order; ids not stored are absent from the result.
    pub async fn get_many(
        &self,
        kind: EntityKind,
        org_id: &str,
        zoho_ids: &[String],
    ) -> Result<Vec<StoredRow>, StoreError> {
        let sql = format!(
            "SELECT {COMMON} FROM {} WHERE org_id = $1 AND zoho_id = ANY($2) ORDER BY zoho_id",
            kind.table()
        );
        sqlx::query_as(&sql)
            .bind(org_id)
            .bind(zoho_ids)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read by ids"))
    }

    /// Rows (tombstones included) whose version is after the keyset position `(since, after_id)`,
    /// oldest first, at most `limit`. Pass the last row's `(last_modified_time, zoho_id)` to page on;
    /// rows sharing a version are never skipped.
    pub async fn changed_since(
        &self,
        kind: EntityKind,
        org_id: &str,
        since: DateTime<Utc>,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredRow>, StoreError> {
        let sql = format!(
            "SELECT {COMMON} FROM {} WHERE org_id = $1 AND (last_modified_time, zoho_id) > ($2, $3)
             ORDER BY last_modified_time, zoho_id LIMIT $4",
            kind.table()
        );
        sqlx::query_as(&sql)
            .bind(org_id)
            .bind(since)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read changed since"))
    }

    /// Active and tombstoned row counts of a kind for an organisation.
    pub async fn counts(&self, kind: EntityKind, org_id: &str) -> Result<EntityCounts, StoreError> {
        let sql = format!(
            "SELECT count(*) FILTER (WHERE deleted_at IS NULL) AS active,
                    count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted
             FROM {} WHERE org_id = $1",
            kind.table()
        );
        let row = sqlx::query(&sql)
            .bind(org_id)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("count"))?;
        Ok(EntityCounts {
            active: row.try_get("active").map_err(StoreError::db("count"))?,
            deleted: row.try_get("deleted").map_err(StoreError::db("count"))?,
        })
    }

    /// Every row's id and version for an organisation, in id order (the database side of a comparison).
    pub async fn versions(
        &self,
        kind: EntityKind,
        org_id: &str,
    ) -> Result<Vec<RowVersion>, StoreError> {
        let sql = format!(
            "SELECT zoho_id, last_modified_time, deleted_at FROM {} WHERE org_id = $1 ORDER BY zoho_id",
            kind.table()
        );
        let rows = sqlx::query(&sql)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read versions"))?;
        rows.iter()
            .map(|r| {
                Ok(RowVersion {
                    zoho_id: r.try_get("zoho_id")?,
                    last_modified_time: r.try_get("last_modified_time")?,
                    deleted_at: r.try_get("deleted_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db("read versions"))
    }
}

/// An item whose image TDS has not stored yet (or stored under another image id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageWork {
    /// The item.
    pub item_id: String,
    /// Zoho's current image id of the item.
    pub image_id: String,
    /// `image_name`, when the item record has one.
    pub image_name: Option<String>,
}

impl Store {
    /// The stored versions of some rows of a kind, by id (ids not stored are absent).
    pub async fn versions_of(
        &self,
        kind: EntityKind,
        org_id: &str,
        zoho_ids: &[String],
    ) -> Result<std::collections::HashMap<String, RowVersion>, StoreError> {
        let sql = format!(
            "SELECT zoho_id, last_modified_time, deleted_at FROM {} WHERE org_id = $1 AND zoho_id = ANY($2)",
            kind.table()
        );
        let rows = sqlx::query(&sql)
            .bind(org_id)
            .bind(zoho_ids)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read versions"))?;
        rows.iter()
            .map(|r| {
                let v = RowVersion {
                    zoho_id: r.try_get("zoho_id")?,
                    last_modified_time: r.try_get("last_modified_time")?,
                    deleted_at: r.try_get("deleted_at")?,
                };
                Ok((v.zoho_id.clone(), v))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db("read versions"))
    }

    /// Live items whose image id differs from the stored image's (or that have no stored image), in
    /// item id order: the images an image sync downloads.
    pub async fn images_to_fetch(&self, org_id: &str) -> Result<Vec<ImageWork>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.zoho_id, i.image_id, i.record->>'image_name' AS image_name
             FROM items i LEFT JOIN item_images m ON m.org_id = i.org_id AND m.zoho_id = i.zoho_id
             WHERE i.org_id = $1 AND i.deleted_at IS NULL AND coalesce(i.image_id, '') <> ''
               AND (m.zoho_id IS NULL OR m.deleted_at IS NOT NULL OR m.image_id IS DISTINCT FROM i.image_id)
             ORDER BY i.zoho_id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read images to fetch"))?;
        rows.iter()
            .map(|r| {
                Ok(ImageWork {
                    item_id: r.try_get("zoho_id")?,
                    image_id: r.try_get("image_id")?,
                    image_name: r
                        .try_get::<Option<String>, _>("image_name")?
                        .filter(|n| !n.is_empty()),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db("read images to fetch"))
    }

    /// Stored images whose item is gone or no longer has an image (to tombstone).
    pub async fn images_to_remove(&self, org_id: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT m.zoho_id FROM item_images m LEFT JOIN items i ON i.org_id = m.org_id AND i.zoho_id = m.zoho_id
             WHERE m.org_id = $1 AND m.deleted_at IS NULL
               AND (i.zoho_id IS NULL OR i.deleted_at IS NOT NULL OR coalesce(i.image_id, '') = '')
             ORDER BY m.zoho_id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read images to remove"))
    }

    /// Stored stock on hand per `(item_id, location_id)` row id, for some items (all when `item_ids`
    /// is `None`).
    pub async fn stock_on_hand(
        &self,
        org_id: &str,
        item_ids: Option<&[String]>,
    ) -> Result<std::collections::HashMap<String, Option<rust_decimal::Decimal>>, StoreError> {
        let rows = sqlx::query(
            "SELECT zoho_id, stock_on_hand FROM item_stock
             WHERE org_id = $1 AND deleted_at IS NULL AND ($2::text[] IS NULL OR item_id = ANY($2))",
        )
        .bind(org_id)
        .bind(item_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read stock"))?;
        rows.iter()
            .map(|r| Ok((r.try_get("zoho_id")?, r.try_get("stock_on_hand")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db("read stock"))
    }

    /// Per item with a live row or live stock rows: its stored organisation-wide `stock_on_hand` and
    /// the sum of its live per-location rows (`None` without any), one statement.
    pub async fn item_stock_totals(
        &self,
        org_id: &str,
    ) -> Result<std::collections::HashMap<String, ItemTotals>, StoreError> {
        let rows: Vec<(
            String,
            Option<rust_decimal::Decimal>,
            Option<rust_decimal::Decimal>,
        )> = sqlx::query_as(
            "SELECT coalesce(i.zoho_id, s.item_id), i.stock_on_hand, s.total
             FROM (SELECT zoho_id, stock_on_hand FROM items WHERE org_id = $1 AND deleted_at IS NULL) i
             FULL JOIN (SELECT item_id, sum(stock_on_hand) AS total FROM item_stock
                        WHERE org_id = $1 AND deleted_at IS NULL GROUP BY item_id) s
                    ON s.item_id = i.zoho_id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read item stock totals"))?;
        Ok(rows
            .into_iter()
            .map(|(id, item, rows)| {
                (
                    id,
                    ItemTotals {
                        item: item.map(|d| d.normalize()),
                        rows: rows.map(|d| d.normalize()),
                    },
                )
            })
            .collect())
    }

    /// Items with stock below `threshold` at some location (live rows), in id order.
    pub async fn low_stock_items(
        &self,
        org_id: &str,
        threshold: rust_decimal::Decimal,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT item_id FROM item_stock
             WHERE org_id = $1 AND deleted_at IS NULL AND stock_on_hand < $2 ORDER BY item_id",
        )
        .bind(org_id)
        .bind(threshold)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read low stock"))
    }
}

impl Store {
    /// Live rate rows (`{pricebook_id}:{item_id}`) of the given price books.
    pub async fn rate_ids_of_books(
        &self,
        org_id: &str,
        pricebook_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.acquire().await?;
        child_ids(&mut conn, EntityKind::PriceBookRate, org_id, pricebook_ids).await
    }
}

/// The live child row ids (stock rows of `parent_ids` items, or rates of `parent_ids` price books)
/// on `conn`.
pub(crate) async fn child_ids(
    conn: &mut sqlx::PgConnection,
    child: EntityKind,
    org_id: &str,
    parent_ids: &[String],
) -> Result<Vec<String>, StoreError> {
    let (table, column) = match child {
        EntityKind::ItemStock => ("item_stock", "item_id"),
        EntityKind::PriceBookRate => ("price_book_rates", "pricebook_id"),
        other => {
            return Err(StoreError::Layout {
                table: other.table(),
                problem: format!("{other} rows have no parent"),
            })
        }
    };
    sqlx::query_scalar(&format!(
        "SELECT zoho_id FROM {table}
         WHERE org_id = $1 AND {column} = ANY($2) AND deleted_at IS NULL ORDER BY zoho_id"
    ))
    .bind(org_id)
    .bind(parent_ids)
    .fetch_all(conn)
    .await
    .map_err(StoreError::db("read child rows"))
}

impl Store {
    /// Every live rate: row id → `pricebook_rate`.
    pub async fn rates_of_books(
        &self,
        org_id: &str,
    ) -> Result<std::collections::HashMap<String, Option<rust_decimal::Decimal>>, StoreError> {
        let rows: Vec<(String, Option<rust_decimal::Decimal>)> = sqlx::query_as(
            "SELECT zoho_id, pricebook_rate FROM price_book_rates WHERE org_id = $1 AND deleted_at IS NULL",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read price-book rates"))?;
        Ok(rows.into_iter().collect())
    }

    /// Every live stored image: item id → image id.
    pub async fn image_ids(
        &self,
        org_id: &str,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT zoho_id, image_id FROM item_images WHERE org_id = $1 AND deleted_at IS NULL",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("read image ids"))?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    /// The records of every live row of a kind (for statistics).
    pub async fn live_records(
        &self,
        kind: EntityKind,
        org_id: &str,
    ) -> Result<Vec<Value>, StoreError> {
        let sql = format!(
            "SELECT record FROM {} WHERE org_id = $1 AND deleted_at IS NULL ORDER BY zoho_id",
            kind.table()
        );
        sqlx::query_scalar(&sql)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read records"))
    }
}

/// An item's stored stock totals ([`Store::item_stock_totals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemTotals {
    /// The item row's `stock_on_hand` (`None`: no item row, or it has no total).
    pub item: Option<rust_decimal::Decimal>,
    /// The sum of its per-location rows' `stock_on_hand`.
    pub rows: Option<rust_decimal::Decimal>,
}

impl ItemTotals {
    /// Whether Zoho's organisation total `listed` disagrees with what is stored: the item's total
    /// where it has one, and the sum of its rows (none counts as 0).
    pub fn differ_from(&self, listed: Option<rust_decimal::Decimal>) -> bool {
        let zero = rust_decimal::Decimal::ZERO;
        let listed = listed.unwrap_or(zero);
        self.item.is_some_and(|t| t != listed) || self.rows.unwrap_or(zero) != listed
    }
}
