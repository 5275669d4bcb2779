//! The comparator: measures Zoho against PostgreSQL record by record (see [`crate::compare`] for the
//! report and the pure diff), records the report and statistics, raises or resolves the drift alert,
//! and heals through the [`SyncRunner`] (heal runs re-fetch exactly the differing ids) and the
//! [`EntityWriter`] (tombstones).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tds_core::metrics::{Dim, Metric};

use chrono::Utc;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tds_core::fields::parse_zoho_timestamp;
use tds_core::EntityKind;
use tds_store::{AlertSeverity, NewComparison, Store};
use tds_zoho::{Priority, ZohoClient};

use crate::compare::{
    default_threshold, diff_listed_at, heal_plan, severity, CompareRequest, ComparisonReport,
    HealAction, KindDiff, Severity, ZohoKey,
};
use crate::jobs::{StartSync, SyncMode};
use crate::runner::SyncRunner;
use crate::stats::{collect_stats, Stats};
use crate::writer::EntityWriter;
use crate::{text, Failure};
use tracing::Instrument;

mod children;

/// Compares and heals; constructed with the runner its heal runs go through.
#[derive(Clone)]
pub struct Comparator {
    zoho: Arc<ZohoClient>,
    writer: EntityWriter,
    runner: SyncRunner,
    /// Days applied webhook receipts are kept (0: for ever); older ones are deleted after a comparison.
    receipt_retention_days: u32,
}

impl Comparator {
    /// A comparator listing through `zoho`, tombstoning with `writer`, healing through `runner`.
    pub fn new(zoho: Arc<ZohoClient>, writer: EntityWriter, runner: SyncRunner) -> Comparator {
        Comparator {
            zoho,
            writer,
            runner,
            receipt_retention_days: 0,
        }
    }

    /// Deletes applied webhook receipts older than `days` after each comparison (0: keeps them).
    pub fn with_receipt_retention(mut self, days: u32) -> Comparator {
        self.receipt_retention_days = days;
        self
    }

    fn store(&self) -> &Store {
        self.writer.store()
    }
}

impl Comparator {
    /// Compares (and heals, unless a dry run or told not to) every organisation the request names.
    pub async fn compare(
        &self,
        request: &CompareRequest,
    ) -> Result<Vec<ComparisonReport>, Failure> {
        let mut kinds =
            crate::jobs::resolve_entities(&request.entities).map_err(Failure::Permanent)?;
        kinds.retain(|k| k.spec().compared || *k == EntityKind::ItemImage);
        let orgs = crate::organisations(&self.zoho, request.org_id.as_deref()).await?;
        let mut out = Vec::new();
        for org in orgs {
            let span = tracing::info_span!("compare", org = %org);
            out.push(
                self.compare_org(&org, &kinds, request)
                    .instrument(span)
                    .await?,
            );
        }
        if self.receipt_retention_days > 0 && !request.dry_run {
            // Housekeeping: a failure is logged, never the comparison's.
            match self
                .store()
                .prune_receipts(self.receipt_retention_days, 10_000)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    receipts = n,
                    days = self.receipt_retention_days,
                    "old webhook receipts deleted"
                ),
                Err(e) => tracing::warn!(error = %e, "old webhook receipts not deleted"),
            }
        }
        Ok(out)
    }

    async fn compare_org(
        &self,
        org: &str,
        kinds: &[EntityKind],
        request: &CompareRequest,
    ) -> Result<ComparisonReport, Failure> {
        let mut api_calls = 0i64;
        let mut diffs = Vec::new();
        let mut listed: HashMap<EntityKind, Vec<Value>> = HashMap::new();
        let want_items = kinds
            .iter()
            .any(|k| matches!(k, EntityKind::Item | EntityKind::ItemImage));
        for kind in crate::compare::compared().filter(|k| {
            kinds.contains(k)
                || (want_items && *k == EntityKind::Item)
                || (kinds.contains(&EntityKind::Item) && *k == EntityKind::Location)
        }) {
            let listed_from = Utc::now();
            let records = self.list_all(org, kind, Vec::new(), &mut api_calls).await?;
            if kinds.contains(&kind) {
                let keys: Vec<ZohoKey> = records
                    .iter()
                    .filter_map(|r| {
                        Some(ZohoKey {
                            id: text(r, kind.zoho_id_field()?)?,
                            modified: r
                                .get("last_modified_time")
                                .and_then(Value::as_str)
                                .and_then(parse_zoho_timestamp),
                        })
                    })
                    .collect();
                let local = self.store().versions(kind, org).await?;
                let mut d = diff_listed_at(kind.as_str(), &keys, &local, listed_from);
                if !kind.has_zoho_modified_time() {
                    // No version to compare: presence is what counts.
                    d.matched += d.stale.len();
                    d.stale.clear();
                }
                diffs.push(d);
            }
            listed.insert(kind, records);
        }
        if kinds.contains(&EntityKind::Item) {
            diffs.push(
                self.compare_stock(org, &mut listed, request, &mut api_calls)
                    .await?,
            );
        }
        if kinds.contains(&EntityKind::PriceBook) {
            diffs.push(self.compare_rates(org, &mut listed, &mut api_calls).await?);
        }
        if want_items
            && (kinds.contains(&EntityKind::ItemImage) || kinds.contains(&EntityKind::Item))
        {
            diffs.push(self.compare_images(org, &listed).await?);
        }

        let statistics = self
            .statistics(org, &listed, request.low_stock_threshold.unwrap_or(5.0))
            .await?;
        let metrics = self.writer.metrics();
        for d in &diffs {
            metrics.record_by(
                Metric::ComparisonMatchPercent,
                Dim::Kind,
                &d.kind,
                d.match_pct(),
            );
            metrics.count_by(
                Metric::ComparisonDifferences,
                Dim::Kind,
                &d.kind,
                d.differences(),
            );
        }
        let matched: usize = diffs.iter().map(|d| d.matched).sum();
        let total: usize = matched + diffs.iter().map(KindDiff::differences).sum::<usize>();
        let match_pct = if total == 0 {
            100.0
        } else {
            matched as f64 * 100.0 / total as f64
        };
        let critical = diffs
            .iter()
            .filter(|d| severity(d.match_pct()) == Severity::Critical)
            .count();
        let health_score =
            crate::stats::round2((match_pct - 5.0 * critical as f64).clamp(0.0, 100.0));
        let match_pct = crate::stats::round2(match_pct);
        let mut recommendations = Vec::new();
        for d in &diffs {
            if d.differences() == 0 {
                continue;
            }
            recommendations.push(format!(
                "{}: {} missing locally, {} deleted in Zoho, {} stale, {} mismatched ({:.1} % match, {}): {}",
                d.kind,
                d.missing_locally.len(),
                d.deleted_in_zoho.len(),
                d.stale.len(),
                d.mismatched.len(),
                d.match_pct(),
                severity(d.match_pct()),
                if !request.heal || request.dry_run {
                    "not healed (measure only); `tds compare --sync` heals"
                } else if d.differences() > self.threshold(&d.kind, request) {
                    "healing: re-fetching exactly these ids; what Zoho confirms deleted is tombstoned"
                } else if !d.deleted_in_zoho.is_empty() {
                    "below the heal threshold: the deletions are confirmed with Zoho and tombstoned now; the rest is left to the nightly full sync (a lower threshold heals it now)"
                } else {
                    "below the heal threshold: left to the nightly full sync (a lower threshold heals it now)"
                }
            ));
        }
        if recommendations.is_empty() {
            recommendations.push("PostgreSQL matches Zoho: nothing to do".into());
        }

        let heal = if request.heal {
            self.heal(org, &diffs, request).await?
        } else {
            Vec::new()
        };
        let mut report = ComparisonReport {
            report_id: 0,
            org_id: org.to_string(),
            kinds: diffs,
            match_pct,
            health_score,
            severity: severity(health_score),
            recommendations,
            dry_run: request.dry_run,
            heal,
            statistics,
            api_calls,
        };
        report.report_id = self.record_report(&report, kinds).await?;
        self.publish_comparison(&report).await;
        Ok(report)
    }

    fn threshold(&self, kind: &str, request: &CompareRequest) -> usize {
        request.thresholds.get(kind).copied().unwrap_or_else(|| {
            kind.parse::<EntityKind>()
                .map(default_threshold)
                .unwrap_or(5)
        })
    }

    /// Every record of a kind from its list pages (at comparison priority).
    async fn list_all(
        &self,
        org: &str,
        kind: EntityKind,
        extra: Vec<(String, String)>,
        api_calls: &mut i64,
    ) -> Result<Vec<Value>, Failure> {
        let mut query = extra;
        query.extend(crate::jobs::stable_order(kind));
        query.extend(crate::jobs::list_filter(kind));
        let mut pages = self.zoho.pages(org, kind, query, Priority::Compare)?;
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            *api_calls += 1;
            out.extend(page?.records);
        }
        Ok(out)
    }

    /// Starts heal runs for kinds above their thresholds (or plans them, for a dry run).
    async fn heal(
        &self,
        org: &str,
        diffs: &[KindDiff],
        request: &CompareRequest,
    ) -> Result<Vec<HealAction>, Failure> {
        let mut actions = Vec::new();
        for d in diffs {
            if d.differences() == 0 {
                continue;
            }
            let Ok(kind) = d.kind.parse::<EntityKind>() else {
                continue;
            };
            // Deletions are confirmed with Zoho and applied whatever the threshold; the threshold
            // gates only the heavier re-fetches of what else differs.
            let below = d.differences() <= self.threshold(&d.kind, request);
            let deletions_only;
            let d = if below {
                if d.deleted_in_zoho.is_empty() || kind == EntityKind::ItemImage {
                    continue;
                }
                deletions_only = KindDiff {
                    missing_locally: Vec::new(),
                    stale: Vec::new(),
                    mismatched: Vec::new(),
                    ..d.clone()
                };
                &deletions_only
            } else {
                d
            };
            let (fetch_kind, refetch, tombstone) = heal_plan(kind, d);
            let mut action = HealAction {
                kind: d.kind.clone(),
                refetch: refetch.clone(),
                tombstone: tombstone.clone(),
                run_id: None,
            };
            if request.dry_run {
                if kind == EntityKind::ItemImage {
                    action.refetch = d
                        .missing_locally
                        .iter()
                        .chain(&d.mismatched)
                        .cloned()
                        .collect();
                    action.tombstone = d.deleted_in_zoho.clone();
                }
                actions.push(action);
                continue;
            }
            if !tombstone.is_empty() {
                self.writer
                    .tombstone_ids(org, kind, tombstone, Utc::now())
                    .await?;
            }
            if kind == EntityKind::ItemImage {
                // An image run re-fetches exactly the changed images and tombstones the removed ones.
                let ids = self
                    .runner
                    .start_sync(&StartSync {
                        org_id: Some(org.to_string()),
                        entities: vec!["item_image".into()],
                        mode: SyncMode::Incremental,
                        trigger: tds_core::Trigger::Heal,
                    })
                    .await?;
                action.refetch = d
                    .missing_locally
                    .iter()
                    .chain(&d.mismatched)
                    .cloned()
                    .collect();
                action.tombstone = d.deleted_in_zoho.clone();
                action.run_id = ids.first().copied();
            } else if !refetch.is_empty() {
                action.run_id = Some(
                    self.runner
                        .start_heal_run(org, fetch_kind, &refetch)
                        .await?,
                );
            }
            actions.push(action);
        }
        Ok(actions)
    }

    async fn record_report(
        &self,
        report: &ComparisonReport,
        kinds: &[EntityKind],
    ) -> Result<i64, Failure> {
        let sum = |f: fn(&KindDiff) -> usize| report.kinds.iter().map(f).sum::<usize>() as i64;
        let comparison = NewComparison {
            org_id: report.org_id.clone(),
            scope: kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
            match_pct: report.match_pct,
            health_score: report.health_score,
            severity: report.severity.as_str().to_string(),
            missing_locally: sum(|d| d.missing_locally.len()),
            deleted_in_zoho: sum(|d| d.deleted_in_zoho.len()),
            stale: sum(|d| d.stale.len()),
            mismatched: sum(|d| d.mismatched.len()),
            heal_jobs: report.heal.iter().filter(|h| h.run_id.is_some()).count() as i64,
            report: serde_json::to_value(report).unwrap_or(Value::Null),
            statistics: report
                .statistics
                .iter()
                .map(|(entity, s)| (entity.clone(), s.zoho.clone(), s.database.clone()))
                .collect(),
        };
        self.store()
            .record_comparison(&comparison)
            .await
            .map_err(|e| Failure::Retry(format!("record comparison report: {e}")))
    }

    async fn publish_comparison(&self, report: &ComparisonReport) {
        let differences: usize = report.kinds.iter().map(KindDiff::differences).sum();
        let mut events = vec![crate::event(
            "tds.stats.compared",
            json!({"org_id": report.org_id, "report_id": report.report_id, "match_pct": report.match_pct,
                   "health_score": report.health_score, "severity": report.severity,
                   "differences": differences, "dry_run": report.dry_run,
                   "heal_runs": report.heal.iter().filter_map(|h| h.run_id).collect::<Vec<_>>()}),
        )];
        let critical: Vec<&str> = report
            .kinds
            .iter()
            .filter(|d| severity(d.match_pct()) == Severity::Critical)
            .map(|d| d.kind.as_str())
            .collect();
        if report.match_pct < 95.0 || !critical.is_empty() {
            let message = format!(
                "PostgreSQL matches Zoho at {:.1} % (health {:.1}, {}){}",
                report.match_pct,
                report.health_score,
                report.severity,
                if critical.is_empty() {
                    String::new()
                } else {
                    format!("; critical: {}", critical.join(", "))
                }
            );
            let alert_severity = if report.severity == Severity::Critical || !critical.is_empty() {
                AlertSeverity::Critical
            } else {
                AlertSeverity::Warning
            };
            let details = json!({"report_id": report.report_id, "critical": critical});
            if let Err(e) = self
                .store()
                .raise_alert(
                    &report.org_id,
                    alert_severity,
                    "drift",
                    &message,
                    &details,
                    "drift",
                )
                .await
            {
                tracing::warn!(error = %e, "drift alert not stored");
            }
            events.push(crate::event(
                "tds.alert.raised",
                json!({"org_id": report.org_id, "severity": alert_severity, "kind": "drift",
                       "message": message, "report_id": report.report_id}),
            ));
        } else {
            match self.store().resolve_alert(&report.org_id, "drift").await {
                Ok(Some(alert)) => events.push(crate::event(
                    "tds.alert.resolved",
                    json!({"org_id": report.org_id, "alert_id": alert.id, "severity": alert.severity,
                           "kind": alert.kind, "message": format!("resolved: {}", alert.message),
                           "raised_at": alert.raised_at, "report_id": report.report_id}),
                )),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "drift alert not resolved"),
            }
        }
        self.writer.publish(events).await;
    }

    /// Statistics of both sides, from Zoho's list records and the stored records.
    async fn statistics(
        &self,
        org: &str,
        listed: &HashMap<EntityKind, Vec<Value>>,
        low_stock: f64,
    ) -> Result<BTreeMap<String, Stats>, Failure> {
        let mut local: HashMap<EntityKind, Vec<Value>> = HashMap::new();
        for kind in listed
            .keys()
            .filter(|k| !matches!(k, EntityKind::ItemStock | EntityKind::PriceBookRate))
        {
            local.insert(*kind, self.store().live_records(*kind, org).await?);
        }
        // Stock from typed columns, whatever shape Zoho gave it in.
        let local_stock: Vec<Value> = self
            .store()
            .stock_on_hand(org, None)
            .await?
            .into_iter()
            .map(|(row, qty)| stock_row(&row, qty))
            .collect();
        if let Some(items) = local.get_mut(&EntityKind::Item) {
            let totals = self.store().item_stock_totals(org).await?;
            for item in items.iter_mut() {
                let total = text(item, "item_id").and_then(|id| totals.get(&id)?.item);
                if let (Some(total), Value::Object(map)) = (total, item) {
                    map.insert("stock_on_hand".into(), json!(total));
                }
            }
        }
        let local_rates = self
            .store()
            .live_records(EntityKind::PriceBookRate, org)
            .await?;
        let local_images = self
            .store()
            .live_records(EntityKind::ItemImage, org)
            .await?;
        Ok(collect_stats(
            listed,
            &local,
            &local_stock,
            &local_rates,
            &local_images,
            low_stock,
        ))
    }
}

/// A per-location stock row for the statistics: `{"item_id", "location_id", "stock_on_hand"}` from
/// its row id (`item:location`).
fn stock_row(row_id: &str, qty: Option<Decimal>) -> Value {
    let (item, location) = row_id.split_once(':').unwrap_or((row_id, ""));
    json!({"item_id": item, "location_id": location, "stock_on_hand": qty})
}
