//! The stock poller: keeps per-location stock (item × warehouse) current.
//!
//! Modes (the scheduled input's `mode`): `incremental` lists items changed since the stock cursor and
//! re-reads their stock with `/itemdetails` (100 per call); `full` does so for every item; `warehouse`
//! lists every item (Zoho may or may not narrow a list to a location: ZOHO.md calls it inferred) and
//! re-reads those whose organisation total differs from the stored total or per-location sum, keeping
//! that one location's rows; `items` re-reads the given ids; `low_stock` re-reads the items stored below the
//! threshold. Only rows whose content changed are written (unchanged rows cost a hash comparison, no
//! write and no event); each changed row publishes `tds.stock.changed`, and a changed row below the
//! threshold (every such row, in `low_stock` mode) publishes `tds.stock.low`. Each poll is a sync run
//! (entity `item_stock`, mode `stock_<mode>`). Services carry no stock and are skipped.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tds_core::fields::format_zoho_timestamp;
use tds_core::ports::DomainEvent;
use tds_core::{EntityKind, VersionedRow};
use tds_store::{Cursor, RunCounts, Store};
use tds_zoho::{Priority, ZohoClient};

use crate::writer::EntityWriter;
use crate::{decimal, event, text, Failure};
use tds_core::metrics::{Dim, Metric};
use tracing::Instrument;

pub use tds_core::StockMode;

/// A poll request (the EventBridge schedule's input, or a manual invocation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockRequest {
    /// The mode.
    pub mode: StockMode,
    /// One organisation; every configured one when absent.
    #[serde(default)]
    pub org_id: Option<String>,
    /// The location of `warehouse` mode.
    #[serde(default, alias = "location_id")]
    pub warehouse_id: Option<String>,
    /// The item ids of `items` mode.
    #[serde(default)]
    pub item_ids: Vec<String>,
    /// Low-stock threshold (overrides the configured default).
    #[serde(default)]
    pub threshold: Option<f64>,
}

impl StockRequest {
    /// Parses an invocation payload; an empty or unknown input is an error that says what is expected.
    pub fn parse(input: &Value) -> Result<StockRequest, String> {
        const EXPECTED: &str = "expected {\"mode\": \"incremental\" | \"full\" | \"warehouse\" (with \"warehouse_id\") | \"items\" (with \"item_ids\") | \"low_stock\"}, optionally \"org_id\" and \"threshold\"";
        let empty = match input {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            _ => false,
        };
        if empty {
            return Err(format!("empty stock-poller input: {EXPECTED}"));
        }
        let request: StockRequest = serde_json::from_value(input.clone())
            .map_err(|e| format!("invalid stock-poller input ({e}): {EXPECTED}"))?;
        match request.mode {
            StockMode::Warehouse if request.warehouse_id.as_deref().is_none_or(str::is_empty) => {
                Err("warehouse mode needs \"warehouse_id\"".into())
            }
            StockMode::Items if request.item_ids.is_empty() => {
                Err("items mode needs a non-empty \"item_ids\" list".into())
            }
            _ if request.threshold.is_some_and(|t| !t.is_finite() || t < 0.0) => {
                Err("threshold must be a number that is not negative".into())
            }
            _ => Ok(request),
        }
    }
}

/// What one organisation's poll did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockReport {
    /// Organisation.
    pub org_id: String,
    /// The sync run recording it.
    pub run_id: i64,
    /// Items whose stock was read.
    pub items_checked: usize,
    /// Stock rows written (changed).
    pub rows_changed: usize,
    /// Stock rows already current.
    pub rows_unchanged: usize,
    /// `tds.stock.low` events raised.
    pub low_stock: usize,
    /// Zoho calls made.
    pub api_calls: i64,
}

/// Polls stock; constructed with what it reads through and writes with.
#[derive(Clone)]
pub struct StockPoller {
    zoho: Arc<ZohoClient>,
    writer: EntityWriter,
    threshold: Decimal,
    overlap: chrono::Duration,
}

impl StockPoller {
    /// A poller reading through `zoho`, writing with `writer`, with a default low-stock `threshold`.
    pub fn new(zoho: Arc<ZohoClient>, writer: EntityWriter, threshold: Decimal) -> StockPoller {
        StockPoller {
            zoho,
            writer,
            threshold,
            overlap: chrono::Duration::seconds(60),
        }
    }

    /// The default low-stock threshold.
    pub fn threshold(&self) -> Decimal {
        self.threshold
    }

    fn store(&self) -> &Store {
        self.writer.store()
    }

    /// Runs a poll for the requested organisation(s).
    pub async fn poll(&self, request: &StockRequest) -> Result<Vec<StockReport>, Failure> {
        let orgs = crate::organisations(&self.zoho, request.org_id.as_deref()).await?;
        let mut reports = Vec::new();
        for org in orgs {
            let span = tracing::info_span!("stock_poll", org = %org, mode = request.mode.as_str());
            reports.push(self.poll_org(&org, request).instrument(span).await?);
        }
        Ok(reports)
    }

    async fn poll_org(&self, org: &str, request: &StockRequest) -> Result<StockReport, Failure> {
        let mode = tds_core::RunMode::Stock(request.mode);
        let params = serde_json::to_value(request).unwrap_or(Value::Null);
        let run_id = self
            .store()
            .start_run(
                org,
                EntityKind::ItemStock.as_str(),
                mode,
                tds_core::Trigger::Schedule,
                params,
            )
            .await?;
        self.publish(vec![event(
            "tds.sync.started",
            json!({"run_id": run_id, "org_id": org, "entity": "item_stock", "mode": mode}),
        )])
        .await;
        let started = Utc::now();
        let mut report = StockReport {
            org_id: org.to_string(),
            run_id,
            ..StockReport::default()
        };
        match self.poll_inner(org, request, started, &mut report).await {
            Ok(()) => {
                let counts = RunCounts {
                    pages: 0,
                    fetched: report.items_checked as i64,
                    changed: report.rows_changed as i64,
                    unchanged: report.rows_unchanged as i64,
                    failed: 0,
                    api_calls: report.api_calls,
                };
                self.store().add_to_run(run_id, counts).await?;
                self.store().finish_run(run_id, None).await?;
                let metrics = self.writer.metrics();
                let ms = (Utc::now() - started).num_milliseconds() as f64;
                metrics.record_by(Metric::SyncRunDurationMs, Dim::Kind, "item_stock", ms);
                metrics.count_by(
                    Metric::SyncRunRecords,
                    Dim::Kind,
                    "item_stock",
                    report.items_checked,
                );
                metrics.count(Metric::StockChanges, report.rows_changed);
                metrics.record(Metric::LowStockItems, report.low_stock as f64);
                self.publish(vec![event(
                    "tds.sync.completed",
                    json!({"run_id": run_id, "org_id": org, "entity": "item_stock", "mode": mode,
                           "fetched": counts.fetched, "changed": counts.changed,
                           "unchanged": counts.unchanged, "api_calls": counts.api_calls}),
                )])
                .await;
                Ok(report)
            }
            Err(f) => {
                let reason = f.to_string();
                self.store()
                    .add_to_run(
                        run_id,
                        RunCounts {
                            api_calls: report.api_calls,
                            ..RunCounts::default()
                        },
                    )
                    .await?;
                self.store().finish_run(run_id, Some(&reason)).await?;
                self.writer
                    .metrics()
                    .count_by(Metric::SyncRunsFailed, Dim::Kind, "item_stock", 1);
                self.publish(vec![event(
                    "tds.sync.failed",
                    json!({"run_id": run_id, "org_id": org, "entity": "item_stock", "mode": mode,
                           "error": reason}),
                )])
                .await;
                Err(f)
            }
        }
    }

    async fn poll_inner(
        &self,
        org: &str,
        request: &StockRequest,
        started: DateTime<Utc>,
        report: &mut StockReport,
    ) -> Result<(), Failure> {
        let threshold = request
            .threshold
            .and_then(|t| Decimal::try_from(t).ok())
            .unwrap_or(self.threshold);
        let mut only_location: Option<String> = None;
        let mut high: Option<Cursor> = None;
        let ids: Vec<String> = match &request.mode {
            StockMode::Items => request.item_ids.clone(),
            StockMode::LowStock => self.store().low_stock_items(org, threshold).await?,
            StockMode::Full => self.list_goods(org, None, report, &mut high).await?,
            StockMode::Incremental => {
                let since = self.store().cursor(org, EntityKind::ItemStock).await?;
                self.list_goods(org, since.map(|c| c.time - self.overlap), report, &mut high)
                    .await?
            }
            StockMode::Warehouse => {
                let location = request.warehouse_id.clone().unwrap_or_default();
                let ids = self.warehouse_differences(org, report).await?;
                only_location = Some(location);
                ids
            }
        };
        report.items_checked = ids.len();
        let mut rows = Vec::new();
        if !ids.is_empty() {
            let items = self.zoho.item_details(org, &ids, Priority::Poll).await?;
            report.api_calls += ids.len().div_ceil(100) as i64;
            let observed = Utc::now();
            for item in items {
                for s in item.stock_rows() {
                    if only_location
                        .as_deref()
                        .is_none_or(|l| l == s.stock.location_id)
                    {
                        rows.push(VersionedRow::new(org, s, observed));
                    }
                }
            }
        }
        let mut events = Vec::new();
        // The writer publishes tds.stock.changed (and tds.entity.synced) for every changed row, as it
        // does for stock written by a webhook or a sync; low stock is the poller's to judge.
        for (s, outcome) in self.writer.write_stock(&rows).await? {
            let changed = outcome.is_change();
            if changed {
                report.rows_changed += 1;
            } else {
                report.rows_unchanged += 1;
            }
            let low = s.stock.stock_on_hand.is_some_and(|q| q < threshold);
            if low && (changed || request.mode == StockMode::LowStock) {
                report.low_stock += 1;
                events.push(event(
                    "tds.stock.low",
                    json!({"org_id": org, "item_id": s.item_id, "location_id": s.stock.location_id,
                           "location_name": s.stock.location_name,
                           "stock_on_hand": s.stock.stock_on_hand, "threshold": threshold}),
                ));
            }
        }
        self.publish(events).await;
        if let Some(high) = high {
            // After the rows are committed; never later than the poll's start.
            let to = if high.time > started {
                Cursor {
                    time: started,
                    id: String::new(),
                }
            } else {
                high
            };
            self.store()
                .advance_cursor(org, EntityKind::ItemStock, &to, None)
                .await?;
        }
        Ok(())
    }

    /// Lists items with `extra` query parameters (sorted by creation, so pages stay stable), calling
    /// `visit(id, record)` for every good (services carry no stock).
    async fn visit_goods(
        &self,
        org: &str,
        extra: Vec<(String, String)>,
        report: &mut StockReport,
        mut visit: impl FnMut(String, &Value),
    ) -> Result<(), Failure> {
        let mut query = crate::jobs::stable_order(EntityKind::Item);
        query.extend(crate::jobs::list_filter(EntityKind::Item));
        query.extend(extra);
        let mut pages = self
            .zoho
            .pages(org, EntityKind::Item, query, Priority::Poll)?;
        while let Some(page) = pages.next().await {
            let page = page?;
            report.api_calls += 1;
            for record in &page.records {
                match text(record, "item_id") {
                    Some(id) if !is_service(record) => visit(id, record),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Goods listed since `since` (all when `None`); tracks the newest (time, id).
    async fn list_goods(
        &self,
        org: &str,
        since: Option<DateTime<Utc>>,
        report: &mut StockReport,
        high: &mut Option<Cursor>,
    ) -> Result<Vec<String>, Failure> {
        let extra = since
            .map(|s| vec![("last_modified_time".into(), format_zoho_timestamp(s))])
            .unwrap_or_default();
        let mut ids = BTreeSet::new();
        self.visit_goods(org, extra, report, |id, record| {
            if let Some(t) = text(record, "last_modified_time")
                .and_then(|t| tds_core::fields::parse_zoho_timestamp(&t))
            {
                if since.is_some_and(|s| t < s) {
                    return; // the filter was ignored: outside the window
                }
                let c = Cursor {
                    time: t,
                    id: id.clone(),
                };
                if high.as_ref().is_none_or(|h| c > *h) {
                    *high = Some(c);
                }
            }
            ids.insert(id);
        })
        .await?;
        Ok(ids.into_iter().collect())
    }

    /// Items whose stock may have changed at a location: those whose organisation total (from the
    /// unfiltered list) differs from the stored total or from the sum of the stored per-location
    /// rows. Zoho may or may not narrow a list's stock fields to `location_id` (ZOHO.md: inferred),
    /// so no narrowed listing is trusted; the caller re-reads these items and keeps the one
    /// location's rows.
    async fn warehouse_differences(
        &self,
        org: &str,
        report: &mut StockReport,
    ) -> Result<Vec<String>, Failure> {
        let stored = self.store().item_stock_totals(org).await?;
        let mut ids = Vec::new();
        self.visit_goods(org, Vec::new(), report, |id, record| {
            let listed = decimal(EntityKind::Item, record, "stock_on_hand");
            let differs = stored.get(&id).is_none_or(|t| t.differ_from(listed));
            if differs {
                ids.push(id);
            }
        })
        .await?;
        Ok(ids)
    }

    async fn publish(&self, events: Vec<DomainEvent>) {
        self.writer.publish(events).await
    }
}

fn is_service(record: &Value) -> bool {
    text(record, "product_type").as_deref() == Some("service")
        || text(record, "item_type").as_deref() == Some("service")
}
