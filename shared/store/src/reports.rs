//! What the comparison engine records and the admin API reads back: comparison reports
//! (`tds_comparison_reports`), statistics snapshots of both sides (`tds_statistics_history`) and
//! alerts (`tds_alerts`, one open alert per organisation and dedupe key).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{Store, StoreError};

/// A comparison report to record, with the statistics of both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct NewComparison {
    /// Organisation.
    pub org_id: String,
    /// The kinds compared, comma-separated.
    pub scope: String,
    /// Overall match percentage (stored rounded to 3 decimals).
    pub match_pct: f64,
    /// Health score (stored rounded to 3 decimals).
    pub health_score: f64,
    /// Severity band: `perfect`, `good`, `warning` or `critical`.
    pub severity: String,
    /// Records missing locally.
    pub missing_locally: i64,
    /// Records live locally but deleted in Zoho.
    pub deleted_in_zoho: i64,
    /// Records whose stored version is behind Zoho's.
    pub stale: i64,
    /// Records present on both sides with different values.
    pub mismatched: i64,
    /// Heal runs started.
    pub heal_jobs: i64,
    /// The whole report.
    pub report: Value,
    /// `(entity group, Zoho's statistics, the database's statistics)`.
    pub statistics: Vec<(String, Value, Value)>,
}

/// Severity of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    /// For the record.
    Info,
    /// Needs a look.
    Warning,
    /// Needs action now.
    Critical,
}

impl AlertSeverity {
    /// The name stored in `tds_alerts.severity`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

/// An alert as stored.
#[derive(
    Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct AlertRow {
    /// Row id.
    pub id: i64,
    /// When it was (last) raised.
    pub raised_at: DateTime<Utc>,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// What it is about (`drift`, ...).
    pub kind: String,
    /// What an operator reads.
    pub message: String,
    /// When it was resolved, if it was.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// An open alert with its organisation.
#[derive(sqlx::FromRow)]
struct OpenAlert {
    org_id: String,
    #[sqlx(flatten)]
    alert: AlertRow,
}

/// One statistics snapshot of one side.
#[derive(
    Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct HistoryRow {
    /// Row id.
    pub id: i64,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// `zoho` or `database`.
    pub source: String,
    /// Entity group.
    pub entity: String,
    /// The figures.
    pub stats: Value,
}

impl Store {
    /// Records a comparison report and both sides' statistics in one transaction; returns its id.
    pub async fn record_comparison(&self, c: &NewComparison) -> Result<i64, StoreError> {
        let err = StoreError::db("record comparison report");
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("record comparison report"))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tds_comparison_reports (org_id, scope, match_pct, health_score, severity, missing_locally,
                 deleted_in_zoho, stale, mismatched, heal_jobs, report)
             VALUES ($1, $2, round($3::numeric, 3), round($4::numeric, 3), $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&c.org_id)
        .bind(&c.scope)
        .bind(c.match_pct)
        .bind(c.health_score)
        .bind(&c.severity)
        .bind(c.missing_locally)
        .bind(c.deleted_in_zoho)
        .bind(c.stale)
        .bind(c.mismatched)
        .bind(c.heal_jobs)
        .bind(&c.report)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("record comparison report"))?;
        let (mut sources, mut entities, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for (entity, zoho, database) in &c.statistics {
            for (source, value) in [("zoho", zoho), ("database", database)] {
                sources.push(source);
                entities.push(entity.as_str());
                values.push(value);
            }
        }
        sqlx::query(
            "INSERT INTO tds_statistics_history (org_id, source, entity, stats)
             SELECT $1, s, e, v FROM UNNEST($2::text[], $3::text[], $4::jsonb[]) AS t(s, e, v)",
        )
        .bind(&c.org_id)
        .bind(sources)
        .bind(entities)
        .bind(values)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("record statistics"))?;
        tx.commit().await.map_err(err)?;
        Ok(id)
    }

    /// The newest comparison report of an organisation, as recorded.
    pub async fn latest_comparison(&self, org_id: &str) -> Result<Option<Value>, StoreError> {
        sqlx::query_scalar(
            "SELECT report || jsonb_build_object('report_id', id) FROM tds_comparison_reports
             WHERE org_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(org_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("latest comparison report"))
    }

    /// How many comparisons of `org_id` have been recorded (the stock sample's rotation counter).
    pub async fn comparison_count(&self, org_id: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM tds_comparison_reports WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("count comparison reports"))
    }

    /// Statistics snapshots of an organisation, newest first, optionally of one entity group.
    pub async fn statistics_history(
        &self,
        org_id: &str,
        entity: Option<&str>,
        limit: i64,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        sqlx::query_as(
            "SELECT id, taken_at, source, entity, stats FROM tds_statistics_history
             WHERE org_id = $1 AND ($2::text IS NULL OR entity = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(org_id)
        .bind(entity)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("statistics history"))
    }

    /// Raises (or updates, while it is open) the alert `dedupe_key` of an organisation.
    pub async fn raise_alert(
        &self,
        org_id: &str,
        severity: AlertSeverity,
        kind: &str,
        message: &str,
        details: &Value,
        dedupe_key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tds_alerts (org_id, severity, kind, message, details, dedupe_key)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, dedupe_key) WHERE resolved_at IS NULL
             DO UPDATE SET severity = EXCLUDED.severity, message = EXCLUDED.message, details = EXCLUDED.details,
                 raised_at = now()",
        )
        .bind(org_id)
        .bind(severity.as_str())
        .bind(kind)
        .bind(message)
        .bind(details)
        .bind(dedupe_key)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::db("raise alert"))
    }

    /// Resolves the open alert `dedupe_key` of an organisation; the alert it resolved (`None` when
    /// none was open), to announce.
    pub async fn resolve_alert(
        &self,
        org_id: &str,
        dedupe_key: &str,
    ) -> Result<Option<AlertRow>, StoreError> {
        sqlx::query_as::<_, AlertRow>(
            "UPDATE tds_alerts SET resolved_at = now() WHERE org_id = $1 AND dedupe_key = $2 AND resolved_at IS NULL
             RETURNING id, raised_at, severity, kind, message, resolved_at",
        )
        .bind(org_id)
        .bind(dedupe_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("resolve alert"))
    }

    /// Every open alert of every organisation, most severe first, with its organisation.
    pub async fn open_alerts(&self) -> Result<Vec<(String, AlertRow)>, StoreError> {
        let rows: Vec<OpenAlert> = sqlx::query_as(
            "SELECT org_id, id, raised_at, severity, kind, message, resolved_at FROM tds_alerts
             WHERE resolved_at IS NULL
             ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("open alerts"))?;
        Ok(rows.into_iter().map(|r| (r.org_id, r.alert)).collect())
    }

    /// The newest alerts of an organisation, open and resolved.
    pub async fn alerts(&self, org_id: &str, limit: i64) -> Result<Vec<AlertRow>, StoreError> {
        sqlx::query_as(
            "SELECT id, raised_at, severity, kind, message, resolved_at FROM tds_alerts
             WHERE org_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(org_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("alerts"))
    }
}
