//! TDS's own metrics: what the services count and time ([`Metrics`], a cheap handle every service of
//! one application shares), and their rendering as CloudWatch Embedded Metric Format (EMF) log lines
//! ([`Metrics::flush_emf`]). A Lambda prints those lines to stdout after each invocation and CloudWatch
//! Logs extracts the metrics from them: no API call, no extra latency. The names, units and
//! dimensions ([`Metric`], [`Dim`]) are the contract the template's alarms and dashboard read.
//!
//! Every value is published without dimensions (what the alarms watch) and, when it was recorded with
//! a dimension (`Kind`, `Reason`, `Priority`, `Org`), also under that dimension (what the dashboard
//! breaks down): one line carries `"Dimensions": [[], ["Kind"]]`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

/// A unit of CloudWatch's `StandardUnit` set, as the metrics use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count of things.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
    /// A percentage, 0 to 100.
    Percent,
}

impl Unit {
    /// The unit's name in EMF (`Count`, `Milliseconds`, `Percent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
        }
    }
}

macro_rules! metrics {
    ($($(#[$doc:meta])* $name:ident: $unit:ident;)*) => {
        /// A metric TDS publishes (its name is the variant's).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Metric {
            $($(#[$doc])* $name,)*
        }

        impl Metric {
            /// Every metric, in declaration order.
            pub const ALL: &'static [Metric] = &[$(Metric::$name,)*];

            /// The metric's name in CloudWatch.
            pub fn name(self) -> &'static str {
                match self {
                    $(Metric::$name => stringify!($name),)*
                }
            }

            /// The metric's unit.
            pub fn unit(self) -> Unit {
                match self {
                    $(Metric::$name => Unit::$unit,)*
                }
            }
        }
    };
}

metrics! {
    /// Webhooks authenticated and queued (webhook-ingest).
    WebhooksAccepted: Count;
    /// Webhooks refused, by `Reason` (webhook-ingest).
    WebhooksRejected: Count;
    /// Rows a write changed (inserted, updated, restored, tombstoned), by `Kind`.
    EntitiesApplied: Count;
    /// Rows a write found already stored, by `Kind`.
    EntitiesUnchanged: Count;
    /// Rows a write ignored because a newer version was stored, by `Kind`.
    EntitiesStale: Count;
    /// Inbox messages moved to the dead-letter queue.
    DeadLetters: Count;
    /// Zoho API calls made, by `Priority`.
    ZohoCalls: Count;
    /// Zoho answers of 429 (too many requests).
    ZohoThrottled: Count;
    /// Time spent waiting for the shared per-organisation API budget.
    ZohoBudgetWaitMs: Milliseconds;
    /// OAuth access-token refreshes made.
    TokenRefreshes: Count;
    /// The share of an organisation's daily Zoho API quota used, as Zoho reported it.
    ZohoDailyQuotaUsedPercent: Percent;
    /// Duration of a finished sync run, by `Kind`.
    SyncRunDurationMs: Milliseconds;
    /// Records a finished sync run wrote, by `Kind`.
    SyncRunRecords: Count;
    /// Sync runs that finished failed, by `Kind`.
    SyncRunsFailed: Count;
    /// A comparison's match % of Zoho and PostgreSQL, by `Kind`.
    ComparisonMatchPercent: Percent;
    /// Records a comparison found different or missing, by `Kind`.
    ComparisonDifferences: Count;
    /// Stock rows a stock poll changed.
    StockChanges: Count;
    /// Items at or below their low-stock threshold after a stock poll.
    LowStockItems: Count;
    /// Changes a poll (scheduled sync) wrote that no webhook had brought, by `Org`: a steady stream
    /// of them means Zoho's workflow rules are not calling TDS.
    UnannouncedChanges: Count;
}

/// A dimension a metric may carry besides none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    /// The entity kind (`item`, `invoice`, ...).
    Kind,
    /// Why a webhook was refused.
    Reason,
    /// The priority of a Zoho call (`realtime`, `sync`, `bulk`).
    Priority,
    /// The organisation.
    Org,
}

impl Dim {
    /// The dimension's name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Dim::Kind => "Kind",
            Dim::Reason => "Reason",
            Dim::Priority => "Priority",
            Dim::Org => "Org",
        }
    }
}

/// EMF allows at most 100 values per metric in one line.
const MAX_VALUES: usize = 100;
/// A dimension value is at most 1,024 characters.
const MAX_DIM_VALUE: usize = 1024;

/// A dimension and its value, or none.
type DimValue = Option<(Dim, String)>;
type Key = (DimValue, Metric);

/// What was recorded since the last flush: counts are summed, other units keep each value.
#[derive(Default)]
struct Buffer {
    values: BTreeMap<Key, Vec<f64>>,
}

/// The metrics of one application: a cheap, cloneable handle shared by its services. A disabled
/// handle ([`Metrics::disabled`], the default) records nothing; an enabled one keeps what was
/// recorded until [`Metrics::flush_emf`] renders and forgets it.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Mutex<Buffer>>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

impl Metrics {
    /// A handle that records.
    pub fn enabled() -> Metrics {
        Metrics {
            inner: Some(Arc::default()),
        }
    }

    /// A handle that records nothing.
    pub fn disabled() -> Metrics {
        Metrics { inner: None }
    }

    /// Whether this handle records.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Records `value` of `metric`, without a dimension.
    pub fn record(&self, metric: Metric, value: f64) {
        self.put((None, metric), value);
    }

    /// Records `value` of `metric` under `dim` = `dim_value` (it counts without the dimension too).
    pub fn record_by(&self, metric: Metric, dim: Dim, dim_value: &str, value: f64) {
        let mut v: String = dim_value.chars().take(MAX_DIM_VALUE).collect();
        if v.trim().is_empty() {
            v = "unknown".into();
        }
        self.put((Some((dim, v)), metric), value);
    }

    /// Adds `n` to the count `metric` (nothing when `n` is 0).
    pub fn count(&self, metric: Metric, n: usize) {
        if n > 0 {
            self.record(metric, n as f64);
        }
    }

    /// Adds `n` to the count `metric` under `dim` = `dim_value` (nothing when `n` is 0).
    pub fn count_by(&self, metric: Metric, dim: Dim, dim_value: &str, n: usize) {
        if n > 0 {
            self.record_by(metric, dim, dim_value, n as f64);
        }
    }

    fn put(&self, key: Key, value: f64) {
        let Some(inner) = &self.inner else { return };
        if !value.is_finite() {
            return;
        }
        let mut buffer = inner.lock().unwrap_or_else(|p| p.into_inner());
        let values = buffer.values.entry(key.clone()).or_default();
        match (key.1.unit(), values.first_mut()) {
            (Unit::Count, Some(sum)) => *sum += value,
            _ => values.push(value),
        }
    }

    /// Renders what was recorded as EMF lines (one JSON object per line, for `namespace`, stamped
    /// `timestamp_ms`) and forgets it. One line per dimension value, holding every metric recorded
    /// under it; a metric with more than 100 values spreads over several lines.
    pub fn flush_emf(&self, namespace: &str, timestamp_ms: i64) -> Vec<String> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        let values = std::mem::take(&mut inner.lock().unwrap_or_else(|p| p.into_inner()).values);
        let mut groups: BTreeMap<DimValue, Vec<(Metric, Vec<f64>)>> = BTreeMap::new();
        for ((dim, metric), vals) in values {
            groups.entry(dim).or_default().push((metric, vals));
        }
        let mut lines = Vec::new();
        for (dim, metrics) in groups {
            let chunks = metrics
                .iter()
                .map(|(_, v)| v.len().div_ceil(MAX_VALUES))
                .max()
                .unwrap_or(0);
            for chunk in 0..chunks {
                let mut root = Map::new();
                let mut definitions = Vec::new();
                for (metric, vals) in &metrics {
                    let part: Vec<f64> = vals
                        .iter()
                        .skip(chunk * MAX_VALUES)
                        .take(MAX_VALUES)
                        .copied()
                        .collect();
                    let value = match part.as_slice() {
                        [] => continue,
                        [one] => json!(one),
                        many => json!(many),
                    };
                    definitions
                        .push(json!({"Name": metric.name(), "Unit": metric.unit().as_str()}));
                    root.insert(metric.name().into(), value);
                }
                let dimensions = match &dim {
                    Some((d, v)) => {
                        root.insert(d.name().into(), Value::String(v.clone()));
                        json!([[], [d.name()]])
                    }
                    None => json!([[]]),
                };
                root.insert(
                    "_aws".into(),
                    json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
                        "Namespace": namespace, "Dimensions": dimensions, "Metrics": definitions}]}),
                );
                lines.push(Value::Object(root).to_string());
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[String]) -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_disabled_handle_records_nothing() {
        let m = Metrics::disabled();
        m.count(Metric::DeadLetters, 3);
        assert!(m.flush_emf("TDS/x", 1).is_empty());
        assert_eq!(format!("{m:?}"), "Metrics { enabled: false }");
    }

    #[test]
    fn counts_sum_and_other_units_keep_each_value() {
        let m = Metrics::enabled();
        m.count(Metric::DeadLetters, 2);
        m.count(Metric::DeadLetters, 3);
        m.count(Metric::DeadLetters, 0);
        m.record(Metric::ZohoBudgetWaitMs, 10.0);
        m.record(Metric::ZohoBudgetWaitMs, 20.0);
        let lines = parse(&m.flush_emf("TDS/x", 1_700_000_000_000));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["DeadLetters"], json!(5.0));
        assert_eq!(lines[0]["ZohoBudgetWaitMs"], json!([10.0, 20.0]));
        assert_eq!(lines[0]["_aws"]["Timestamp"], json!(1_700_000_000_000i64));
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        // Flushed means forgotten.
        assert!(m.flush_emf("TDS/x", 2).is_empty());
    }

    #[test]
    fn a_dimension_publishes_with_and_without_it_one_line_per_value() {
        let m = Metrics::enabled();
        m.count_by(Metric::EntitiesApplied, Dim::Kind, "item", 4);
        m.count_by(Metric::EntitiesStale, Dim::Kind, "item", 1);
        m.count_by(Metric::EntitiesApplied, Dim::Kind, "invoice", 2);
        m.count_by(Metric::WebhooksRejected, Dim::Reason, "", 1);
        let lines = parse(&m.flush_emf("TDS/x", 1));
        assert_eq!(lines.len(), 3);
        let item = lines.iter().find(|l| l["Kind"] == "item").unwrap();
        assert_eq!(item["EntitiesApplied"], json!(4.0));
        assert_eq!(item["EntitiesStale"], json!(1.0));
        let directive = &item["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([[], ["Kind"]]));
        assert_eq!(directive["Namespace"], "TDS/x");
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), 2);
        assert!(lines.iter().any(|l| l["Reason"] == "unknown"));
    }

    #[test]
    fn more_than_a_hundred_values_spread_over_lines() {
        let m = Metrics::enabled();
        for i in 0..250 {
            m.record(Metric::SyncRunDurationMs, f64::from(i));
        }
        m.record(Metric::ZohoBudgetWaitMs, f64::NAN);
        let lines = parse(&m.flush_emf("TDS/x", 1));
        let sizes: Vec<usize> = lines
            .iter()
            .map(|l| l["SyncRunDurationMs"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert!(lines.iter().all(|l| l.get("ZohoBudgetWaitMs").is_none()));
    }

    #[test]
    fn names_are_unique_and_units_standard() {
        let names: std::collections::HashSet<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        assert_eq!(Metric::UnannouncedChanges.name(), "UnannouncedChanges");
        assert_eq!(Metric::ZohoBudgetWaitMs.unit(), Unit::Milliseconds);
    }
}
