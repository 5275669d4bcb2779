//! Version-gated batch upserts and tombstones: one SQL statement (one round trip) per batch.
//!
//! The gate (the same rule as `tds_core::row`, applied by PostgreSQL under the row lock):
//! * an incoming row with the stored content hash changes nothing (`Unchanged`);
//! * otherwise it replaces the stored row only if its `(last_modified_time, completeness, content_hash)`
//!   is greater, so a replay, a duplicate or an out-of-order delivery can never roll a row back (`Stale`);
//! * a tombstoned row is brought back only by a version strictly newer than its `deleted_at` (`Restored`),
//!   so tombstones survive late, older upserts;
//! * a tombstone applies only if the deletion is not older than the stored version; a row never seen
//!   before gets a placeholder tombstone, so a late upsert of an older version cannot create it.
//!
//! Every order of the same set of changes therefore ends in the same state.
//!
//! [`Store::upsert_fresh`] is for records TDS has just read from Zoho's detail endpoints (scheduled
//! syncs, the stock poller): at the same `last_modified_time` (Zoho's times have one-second precision)
//! a fresh read at least as complete as the stored row replaces it, so an edit made within the second
//! after TDS last read the record is not lost; and a stored version dated more than
//! [`crate::FUTURE_TOLERANCE`] in the future (a claimed version, never Zoho's) gives way to the
//! read. Each row's outcome is
//! reported, computed in the same statement from the row as it was before the write.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};
use tds_core::{Entity, EntityKind, VersionedRow};

use crate::columns::ColumnBuffers;
use crate::{Store, StoreError};

/// A record's canonical JSON, bound as `jsonb` as it is (serialized once, with its content hash).
struct JsonText<'a>(&'a str);

// `jsonb` and `jsonb[]` as sqlx's own `Json` names them: built-in type ids, no lookup by name.
impl sqlx::Type<sqlx::Postgres> for JsonText<'_> {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <sqlx::types::Json<()> as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::postgres::PgHasArrayType for JsonText<'_> {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <sqlx::types::Json<()> as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for JsonText<'_> {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        // jsonb's binary format: a version byte (1), then the JSON text.
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(sqlx::encode::IsNull::No)
    }
}

/// What happened to one incoming row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new row was inserted.
    Inserted,
    /// An existing row was replaced by a newer version.
    Updated,
    /// A tombstoned row was brought back by a version newer than its deletion.
    Restored,
    /// The stored row already has this exact content; nothing was written.
    Unchanged,
    /// Ignored: the stored row is newer (or tombstoned at or after this version).
    Stale {
        /// The stored row's version.
        current_version: DateTime<Utc>,
        /// When the stored row was deleted, if it is a tombstone.
        deleted_at: Option<DateTime<Utc>>,
    },
    /// Ignored: a newer version of the same row was in the same batch.
    Superseded,
    /// The row was tombstoned (a placeholder tombstone if it had never been seen).
    Tombstoned,
    /// The row was already tombstoned; its earliest deletion time is kept.
    AlreadyTombstoned,
    /// Nothing written: Zoho does not know the record and it was never stored (a webhook for an
    /// unknown id leaves its receipt, not a row).
    Unknown,
}

impl Outcome {
    /// The outcome's stable name (`inserted`, `stale`, `already_tombstoned`, ...), as receipts store it.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Inserted => "inserted",
            Outcome::Updated => "updated",
            Outcome::Restored => "restored",
            Outcome::Unchanged => "unchanged",
            Outcome::Stale { .. } => "stale",
            Outcome::Superseded => "superseded",
            Outcome::Tombstoned => "tombstoned",
            Outcome::AlreadyTombstoned => "already_tombstoned",
            Outcome::Unknown => "unknown",
        }
    }

    /// Whether the database changed for this row.
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Outcome::Inserted | Outcome::Updated | Outcome::Restored | Outcome::Tombstoned
        )
    }
}

/// The outcome of one row of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOutcome {
    /// Organisation of the row.
    pub org_id: String,
    /// Row id.
    pub zoho_id: String,
    /// What happened.
    pub outcome: Outcome,
}

/// Per-row outcomes of a batch, in the order the rows were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// The entity kind written.
    pub kind: EntityKind,
    /// One entry per incoming row.
    pub rows: Vec<RowOutcome>,
}

impl BatchReport {
    /// Number of rows with outcome matching `pred`.
    pub fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.rows.iter().filter(|r| pred(&r.outcome)).count()
    }
    /// Rows that changed the database (inserted, updated, restored, tombstoned).
    pub fn changed(&self) -> usize {
        self.count(Outcome::is_change)
    }
    /// Rows whose content was already stored.
    pub fn unchanged(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Unchanged | Outcome::AlreadyTombstoned))
    }
    /// Rows ignored because a newer version was stored or in the batch.
    pub fn stale(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Stale { .. } | Outcome::Superseded))
    }
}

/// A deletion to record for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// Organisation.
    pub org_id: String,
    /// Row id.
    pub zoho_id: String,
    /// When Zoho deleted it (or when TDS learned of it: a webhook's arrival, a comparison's run).
    pub deleted_at: DateTime<Utc>,
}

impl Store {
    /// Writes a batch of versioned rows of one kind in one statement, version-gated (see the module docs).
    ///
    /// Several versions of the same row in one batch are reduced to the greatest first (the others are
    /// reported `Superseded`). An empty batch, or rows of different kinds, are refused as a layout error.
    pub async fn upsert<E: Entity>(
        &self,
        rows: &[VersionedRow<E>],
    ) -> Result<BatchReport, StoreError> {
        let mut conn = self.acquire().await?;
        upsert_gated(&mut conn, rows, false).await
    }

    /// [`Store::upsert`] for rows just read from Zoho: at an equal version, a fresh row at least as
    /// complete as the stored one wins (see the module docs), and a tombstone older than
    /// [`crate::RESTORE_AFTER`] gives way (Zoho has just shown the record).
    pub async fn upsert_fresh<E: Entity>(
        &self,
        rows: &[VersionedRow<E>],
    ) -> Result<BatchReport, StoreError> {
        let mut conn = self.acquire().await?;
        upsert_gated(&mut conn, rows, true).await
    }

    /// Tombstones rows of `kind` in one statement (see the module docs for when a tombstone applies).
    pub async fn tombstone(
        &self,
        kind: EntityKind,
        deletions: &[Tombstone],
    ) -> Result<BatchReport, StoreError> {
        let mut conn = self.acquire().await?;
        tombstone(&mut conn, kind, deletions, true).await
    }
}

/// [`Store::upsert`] (`fresh`: [`Store::upsert_fresh`]) on `conn`.
pub(crate) async fn upsert_gated<E: Entity>(
    conn: &mut PgConnection,
    rows: &[VersionedRow<E>],
    fresh: bool,
) -> Result<BatchReport, StoreError> {
    let Some(first) = rows.first() else {
        return Err(StoreError::Layout {
            table: "(none)",
            problem: "an empty batch has no entity kind; skip the call instead".into(),
        });
    };
    let kind = first.entity.kind();
    let table = kind.table();
    if let Some(other) = rows.iter().find(|r| r.entity.kind() != kind) {
        return Err(StoreError::Layout {
            table,
            problem: format!(
                "a batch holds one entity kind; got {kind} and {}",
                other.entity.kind()
            ),
        });
    }

    // Keep the greatest version of each row: ON CONFLICT cannot touch a row twice in one statement.
    let mut best: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        best.entry((row.org_id.as_str(), row.zoho_id.as_str()))
            .and_modify(|j| {
                if row.version_cmp(&rows[*j]).is_gt() {
                    *j = i;
                }
            })
            .or_insert(i);
    }
    let mut chosen: Vec<usize> = best.values().copied().collect();
    chosen.sort_unstable();

    let mut org_ids = Vec::with_capacity(chosen.len());
    let mut zoho_ids = Vec::with_capacity(chosen.len());
    let mut versions = Vec::with_capacity(chosen.len());
    let mut hashes = Vec::with_capacity(chosen.len());
    let mut completeness = Vec::with_capacity(chosen.len());
    let mut records = Vec::with_capacity(chosen.len());
    let mut typed = ColumnBuffers::default();
    for &i in &chosen {
        let row = &rows[i];
        org_ids.push(row.org_id.as_str());
        zoho_ids.push(row.zoho_id.as_str());
        versions.push(row.version);
        hashes.push(row.content_hash.to_vec());
        completeness.push(row.completeness);
        records.push(JsonText(&row.record_json));
        typed.begin_row();
        row.entity.write_columns(&mut typed);
        typed.end_row();
    }
    if let Some(problem) = typed.error() {
        return Err(StoreError::Layout {
            table,
            problem: problem.to_string(),
        });
    }

    let sql = upsert_sql(
        table,
        fresh,
        typed
            .columns
            .iter()
            .map(|(name, data)| (*name, data.array_type())),
    );
    let mut query = sqlx::query(&sql)
        .bind(org_ids)
        .bind(zoho_ids)
        .bind(versions)
        .bind(hashes)
        .bind(completeness)
        .bind(records);
    for (_, data) in typed.columns {
        query = data.bind(query);
    }
    let result = query
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("batch upsert"))?;

    let mut by_key: HashMap<(String, String), Outcome> = HashMap::with_capacity(result.len());
    for r in result {
        let org_id: String = r
            .try_get("org_id")
            .map_err(StoreError::db("batch upsert"))?;
        let zoho_id: String = r
            .try_get("zoho_id")
            .map_err(StoreError::db("batch upsert"))?;
        let inserted: Option<bool> = r
            .try_get("inserted")
            .map_err(StoreError::db("batch upsert"))?;
        let prior_version: Option<DateTime<Utc>> = r
            .try_get("prior_version")
            .map_err(StoreError::db("batch upsert"))?;
        let prior_deleted: Option<DateTime<Utc>> = r
            .try_get("prior_deleted_at")
            .map_err(StoreError::db("batch upsert"))?;
        let same_content: Option<bool> = r
            .try_get("same_content")
            .map_err(StoreError::db("batch upsert"))?;
        let outcome = match (inserted, prior_version) {
            (Some(true), _) => Outcome::Inserted,
            (Some(false), _) if prior_deleted.is_some() => Outcome::Restored,
            (Some(false), _) => Outcome::Updated,
            (None, Some(current_version)) => {
                if prior_deleted.is_none() && same_content == Some(true) {
                    Outcome::Unchanged
                } else {
                    Outcome::Stale {
                        current_version,
                        deleted_at: prior_deleted,
                    }
                }
            }
            // Not written and no prior row: a concurrent writer inserted it first and won the gate.
            (None, None) => Outcome::Stale {
                current_version: DateTime::<Utc>::MIN_UTC,
                deleted_at: None,
            },
        };
        by_key.insert((org_id, zoho_id), outcome);
    }

    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let key = (row.org_id.as_str(), row.zoho_id.as_str());
            let outcome = if best.get(&key) == Some(&i) {
                by_key
                    .get(&(row.org_id.clone(), row.zoho_id.clone()))
                    .cloned()
                    .unwrap_or(Outcome::Superseded)
            } else {
                Outcome::Superseded
            };
            RowOutcome {
                org_id: row.org_id.clone(),
                zoho_id: row.zoho_id.clone(),
                outcome,
            }
        })
        .collect();
    Ok(BatchReport { kind, rows })
}

/// [`Store::tombstone`] on `conn`; without `placeholders`, only rows already stored are tombstoned
/// (the others are reported [`Outcome::Unknown`]).
pub(crate) async fn tombstone(
    conn: &mut PgConnection,
    kind: EntityKind,
    deletions: &[Tombstone],
    placeholders: bool,
) -> Result<BatchReport, StoreError> {
    let table = kind.table();
    let mut earliest: HashMap<(&str, &str), DateTime<Utc>> = HashMap::new();
    for d in deletions {
        earliest
            .entry((d.org_id.as_str(), d.zoho_id.as_str()))
            .and_modify(|t| *t = (*t).min(d.deleted_at))
            .or_insert(d.deleted_at);
    }
    let (keys, times): (Vec<_>, Vec<_>) = earliest.iter().map(|(k, t)| (*k, *t)).unzip();
    let (org_ids, zoho_ids): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
    let sql = format!(
            "WITH incoming AS (
                SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[]) AS t(org_id, zoho_id, deleted_at)
            ), written AS (
                INSERT INTO {table} AS cur (org_id, zoho_id, record, last_modified_time, content_hash, completeness, deleted_at, synced_at)
                SELECT org_id, zoho_id, '{{}}'::jsonb, deleted_at, '\\x'::bytea, 0, deleted_at, now() FROM incoming i
                WHERE {placeholders} OR EXISTS (SELECT 1 FROM {table} s WHERE s.org_id = i.org_id AND s.zoho_id = i.zoho_id)
                ON CONFLICT (org_id, zoho_id) DO UPDATE SET deleted_at = EXCLUDED.deleted_at, synced_at = EXCLUDED.synced_at
                WHERE (cur.deleted_at IS NULL AND EXCLUDED.deleted_at >= cur.last_modified_time)
                   OR (cur.deleted_at IS NOT NULL AND EXCLUDED.deleted_at < cur.deleted_at)
                RETURNING cur.org_id, cur.zoho_id
            )
            SELECT i.org_id, i.zoho_id, (w.zoho_id IS NOT NULL) AS written,
                   p.last_modified_time AS prior_version, p.deleted_at AS prior_deleted_at
            FROM incoming i
            LEFT JOIN written w ON w.org_id = i.org_id AND w.zoho_id = i.zoho_id
            LEFT JOIN {table} p ON p.org_id = i.org_id AND p.zoho_id = i.zoho_id"
        );
    let result = sqlx::query(&sql)
        .bind(org_ids)
        .bind(zoho_ids)
        .bind(times)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("tombstone"))?;
    let mut by_key = HashMap::with_capacity(result.len());
    for r in result {
        let org_id: String = r.try_get("org_id").map_err(StoreError::db("tombstone"))?;
        let zoho_id: String = r.try_get("zoho_id").map_err(StoreError::db("tombstone"))?;
        let written: bool = r.try_get("written").map_err(StoreError::db("tombstone"))?;
        let prior_version: Option<DateTime<Utc>> = r
            .try_get("prior_version")
            .map_err(StoreError::db("tombstone"))?;
        let prior_deleted: Option<DateTime<Utc>> = r
            .try_get("prior_deleted_at")
            .map_err(StoreError::db("tombstone"))?;
        let outcome = match (written, prior_deleted, prior_version) {
            (true, None, _) => Outcome::Tombstoned,
            (true, Some(_), _) | (false, Some(_), _) => Outcome::AlreadyTombstoned,
            (false, None, Some(current_version)) => Outcome::Stale {
                current_version,
                deleted_at: None,
            },
            (false, None, None) if placeholders => Outcome::AlreadyTombstoned,
            (false, None, None) => Outcome::Unknown,
        };
        by_key.insert((org_id, zoho_id), outcome);
    }
    let rows = deletions
        .iter()
        .map(|d| RowOutcome {
            org_id: d.org_id.clone(),
            zoho_id: d.zoho_id.clone(),
            outcome: by_key
                .get(&(d.org_id.clone(), d.zoho_id.clone()))
                .cloned()
                .unwrap_or(Outcome::AlreadyTombstoned),
        })
        .collect();
    Ok(BatchReport { kind, rows })
}

/// Tombstones the live child rows of `parents` (an item's stock rows, a price book's rates) as of
/// each parent's time, except the row ids in `keep`, in one statement; `None` for kinds without
/// children. A tombstoned parent takes all its children; a complete record just written keeps the
/// ones it lists.
pub(crate) async fn tombstone_children(
    conn: &mut PgConnection,
    kind: EntityKind,
    parents: &[Tombstone],
    keep: &[String],
) -> Result<Option<BatchReport>, StoreError> {
    let (child, column) = match kind {
        EntityKind::Item => (EntityKind::ItemStock, "item_id"),
        EntityKind::PriceBook => (EntityKind::PriceBookRate, "pricebook_id"),
        _ => return Ok(None),
    };
    if parents.is_empty() {
        return Ok(Some(BatchReport {
            kind: child,
            rows: Vec::new(),
        }));
    }
    let rows: Vec<(String, String)> = sqlx::query_as(&format!(
        "UPDATE {} c SET deleted_at = u.deleted_at, synced_at = now()
         FROM UNNEST($1::text[], $2::text[], $3::timestamptz[]) AS u(org_id, parent_id, deleted_at)
         WHERE c.org_id = u.org_id AND c.{column} = u.parent_id AND c.deleted_at IS NULL
           AND NOT (c.zoho_id = ANY($4::text[]))
         RETURNING c.org_id, c.zoho_id",
        child.table()
    ))
    .bind(
        parents
            .iter()
            .map(|p| p.org_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        parents
            .iter()
            .map(|p| p.zoho_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(parents.iter().map(|p| p.deleted_at).collect::<Vec<_>>())
    .bind(keep)
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("tombstone child rows"))?;
    Ok(Some(BatchReport {
        kind: child,
        rows: rows
            .into_iter()
            .map(|(org_id, zoho_id)| RowOutcome {
                org_id,
                zoho_id,
                outcome: Outcome::Tombstoned,
            })
            .collect(),
    }))
}

/// The upsert statement for `table` with the given typed columns (name, array type), after the six
/// common ones. The text depends only on the table and its columns, so PostgreSQL's prepared-statement
/// cache (per connection, keyed by text) serves every batch of a kind.
fn upsert_sql<'a>(
    table: &str,
    fresh: bool,
    typed: impl Iterator<Item = (&'a str, &'a str)>,
) -> String {
    let newer = if fresh {
        "(EXCLUDED.last_modified_time > cur.last_modified_time
                            OR (EXCLUDED.last_modified_time = cur.last_modified_time
                                AND EXCLUDED.completeness >= cur.completeness))"
    } else {
        "(EXCLUDED.last_modified_time, EXCLUDED.completeness, EXCLUDED.content_hash)
                          > (cur.last_modified_time, cur.completeness, cur.content_hash)"
    };
    // A tombstone gives way to a newer version; to a fresh read also when it is older than
    // RESTORE_AFTER (Zoho has just shown the record, so it was not deleted then).
    let restore = if fresh {
        format!(
            "(EXCLUDED.last_modified_time > cur.deleted_at
                             OR cur.deleted_at < now() - make_interval(secs => {}))",
            crate::RESTORE_AFTER.as_secs()
        )
    } else {
        "EXCLUDED.last_modified_time > cur.deleted_at".to_string()
    };
    // A fresh read also replaces a stored version dated in the future (beyond FUTURE_TOLERANCE),
    // same content or not: no record Zoho has is newer than now, so that version was claimed.
    let future = if fresh {
        format!(
            "\n                        OR cur.last_modified_time > now() + make_interval(secs => {})",
            crate::FUTURE_TOLERANCE.as_secs()
        )
    } else {
        String::new()
    };
    let typed: Vec<(&str, &str)> = typed.collect();
    let common = [
        ("org_id", "text[]"),
        ("zoho_id", "text[]"),
        ("last_modified_time", "timestamptz[]"),
        ("content_hash", "bytea[]"),
        ("completeness", "int4[]"),
        ("record", "jsonb[]"),
    ];
    let all: Vec<(&str, &str)> = common
        .iter()
        .copied()
        .chain(typed.iter().copied())
        .collect();
    let params = all
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{ty}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let names = all.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let updates = all
        .iter()
        .skip(2)
        .map(|(n, _)| format!("{n} = EXCLUDED.{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    // The prior row (`p`, read in the statement's snapshot, so as it was before the write) is
    // looked up only for rows not inserted: `OFFSET 0` keeps the lateral subquery a plan of its own,
    // whose `w.inserted` test PostgreSQL runs once per row before the index scan (a one-time filter).
    format!(
        "WITH incoming AS (
            SELECT * FROM UNNEST({params}) AS t({names})
        ), written AS (
            INSERT INTO {table} AS cur ({names}, synced_at)
            SELECT {names}, now() FROM incoming
            ON CONFLICT (org_id, zoho_id) DO UPDATE SET {updates}, deleted_at = NULL, synced_at = EXCLUDED.synced_at
            WHERE CASE WHEN cur.deleted_at IS NOT NULL
                       THEN {restore}
                       ELSE (cur.content_hash <> EXCLUDED.content_hash AND {newer}){future}
                  END
            RETURNING cur.org_id, cur.zoho_id, (xmax = 0) AS inserted
        )
        SELECT i.org_id, i.zoho_id, w.inserted,
               p.last_modified_time AS prior_version, p.deleted_at AS prior_deleted_at,
               (p.content_hash = i.content_hash) AS same_content
        FROM incoming i
        LEFT JOIN written w ON w.org_id = i.org_id AND w.zoho_id = i.zoho_id
        LEFT JOIN LATERAL (
            SELECT s.last_modified_time, s.deleted_at, s.content_hash FROM {table} s
            WHERE w.inserted IS NOT TRUE AND s.org_id = i.org_id AND s.zoho_id = i.zoho_id
            OFFSET 0
        ) p ON true"
    )
}
