//! The comparison engine's report and pure diff: measures Zoho against PostgreSQL record by record;
//! [`crate::comparator::Comparator`] runs it and heals the difference.
//!
//! For each entity kind it lists Zoho's records (list pages only, 200 per call, at the lowest budget
//! priority) and diffs their `(id, last_modified_time)` against the stored versions: missing locally,
//! present locally but deleted in Zoho, stale (Zoho newer). Stock per location is compared field by
//! field from the location-narrowed item lists (one listing per location), price-book rates from each
//! book's detail GET, images by image id from the item list. Each kind gets a match percentage and a
//! severity band (≥ 99 perfect, ≥ 95 good, ≥ 90 warning, below critical); the report has an overall
//! match, a health score and recommendations. Healing, when a kind's differences exceed its threshold,
//! re-fetches exactly the differing ids through `details` jobs of a `heal` run and tombstones what Zoho
//! deleted — never a blind full resync; a dry run reports the plan and changes nothing. The in-memory
//! diff ([`diff`]) is a pure function.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tds_core::EntityKind;
use tds_store::RowVersion;

use crate::stats::Stats;
use crate::text;

/// One Zoho record as a list page shows it: id and `last_modified_time` (absent for kinds without).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ZohoKey {
    /// Record id.
    pub id: String,
    /// `last_modified_time`.
    pub modified: Option<DateTime<Utc>>,
}

/// How one kind differs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindDiff {
    /// Entity kind (`item_stock`, `price_book_rate` and `item_image` for the field comparisons).
    pub kind: String,
    /// Records in Zoho.
    pub zoho_total: usize,
    /// Live rows in PostgreSQL.
    pub local_total: usize,
    /// Records equal on both sides.
    pub matched: usize,
    /// In Zoho, not (or only as a tombstone) in PostgreSQL.
    pub missing_locally: Vec<String>,
    /// Live in PostgreSQL, gone from Zoho.
    pub deleted_in_zoho: Vec<String>,
    /// Zoho's version is newer.
    pub stale: Vec<String>,
    /// Present on both sides with different values (stock quantities, rates, image ids).
    pub mismatched: Vec<String>,
}

impl KindDiff {
    /// Records that differ.
    pub fn differences(&self) -> usize {
        self.missing_locally.len()
            + self.deleted_in_zoho.len()
            + self.stale.len()
            + self.mismatched.len()
    }

    /// Matched share of every record either side has, in percent (100 when both are empty).
    pub fn match_pct(&self) -> f64 {
        let total = self.matched + self.differences();
        if total == 0 {
            100.0
        } else {
            self.matched as f64 * 100.0 / total as f64
        }
    }
}

/// The severity band of a match percentage.
pub fn severity(match_pct: f64) -> &'static str {
    if match_pct >= 99.0 {
        "perfect"
    } else if match_pct >= 95.0 {
        "good"
    } else if match_pct >= 90.0 {
        "warning"
    } else {
        "critical"
    }
}

/// Diffs Zoho's keys against stored versions (tombstones included): a pure, O(n log n) function.
pub fn diff(kind: &str, zoho: &[ZohoKey], local: &[RowVersion]) -> KindDiff {
    let mut z: Vec<&ZohoKey> = zoho.iter().collect();
    z.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    z.dedup_by(|a, b| a.id == b.id);
    let mut l: Vec<&RowVersion> = local.iter().collect();
    l.sort_unstable_by(|a, b| a.zoho_id.cmp(&b.zoho_id));
    let mut out = KindDiff {
        kind: kind.to_string(),
        zoho_total: z.len(),
        local_total: l.iter().filter(|r| r.deleted_at.is_none()).count(),
        ..KindDiff::default()
    };
    let (mut i, mut j) = (0, 0);
    while i < z.len() || j < l.len() {
        let order = match (z.get(i), l.get(j)) {
            (Some(a), Some(b)) => a.id.as_str().cmp(b.zoho_id.as_str()),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                out.missing_locally.push(z[i].id.clone());
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                if l[j].deleted_at.is_none() {
                    out.deleted_in_zoho.push(l[j].zoho_id.clone());
                }
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (a, b) = (z[i], l[j]);
                match (b.deleted_at, a.modified) {
                    // A tombstone Zoho still lists with a newer version: missing locally.
                    (Some(d), Some(m)) if m > d => out.missing_locally.push(a.id.clone()),
                    (Some(_), None) => out.missing_locally.push(a.id.clone()),
                    // Deleted locally and Zoho's record is not newer: a delete webhook raced a list.
                    (Some(_), Some(_)) => out.missing_locally.push(a.id.clone()),
                    (None, Some(m)) if m > b.last_modified_time => out.stale.push(a.id.clone()),
                    (None, _) => out.matched += 1,
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Compares two maps of row id → value: missing, extra (deleted in Zoho), mismatched.
pub fn diff_values<V: PartialEq>(
    kind: &str,
    zoho: &HashMap<String, V>,
    local: &HashMap<String, V>,
) -> KindDiff {
    let mut out = KindDiff {
        kind: kind.to_string(),
        zoho_total: zoho.len(),
        local_total: local.len(),
        ..KindDiff::default()
    };
    for (id, v) in zoho {
        match local.get(id) {
            None => out.missing_locally.push(id.clone()),
            Some(w) if w != v => out.mismatched.push(id.clone()),
            Some(_) => out.matched += 1,
        }
    }
    out.deleted_in_zoho = local
        .keys()
        .filter(|id| !zoho.contains_key(*id))
        .cloned()
        .collect();
    out.missing_locally.sort();
    out.mismatched.sort();
    out.deleted_in_zoho.sort();
    out
}

/// What a comparison is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    /// One organisation; every configured one when absent.
    #[serde(default)]
    pub org_id: Option<String>,
    /// Kinds to compare, or `all` (the default).
    #[serde(default = "all")]
    pub entities: Vec<String>,
    /// Heal differences above the thresholds.
    #[serde(default = "yes")]
    pub heal: bool,
    /// Report what healing would do, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Per-kind thresholds overriding the defaults (differences above which a kind is healed).
    #[serde(default)]
    pub thresholds: BTreeMap<String, usize>,
    /// Stock below which an item counts as low stock in the statistics.
    #[serde(default)]
    pub low_stock_threshold: Option<f64>,
}

fn all() -> Vec<String> {
    vec!["all".into()]
}

fn yes() -> bool {
    true
}

impl CompareRequest {
    /// Parses an invocation payload (an empty object compares everything and heals).
    pub fn parse(input: &Value) -> Result<CompareRequest, String> {
        let input = if input.is_null() {
            json!({})
        } else {
            input.clone()
        };
        let request: CompareRequest = serde_json::from_value(input).map_err(|e| {
            format!("invalid statistics input ({e}): expected {{\"entities\": [..] | [\"all\"], \"heal\": bool, \"dry_run\": bool, \"org_id\", \"thresholds\": {{kind: n}}}}")
        })?;
        for k in request.thresholds.keys() {
            k.parse::<EntityKind>()
                .map_err(|e| format!("thresholds: {e}"))?;
        }
        crate::jobs::resolve_entities(&request.entities)?;
        Ok(request)
    }
}

/// Differences above which a kind is healed (the old auto-sync's defaults).
pub fn default_threshold(kind: EntityKind) -> usize {
    match kind {
        EntityKind::Item => 5,
        EntityKind::ItemStock => 10,
        EntityKind::ItemImage => 50,
        EntityKind::PriceBook | EntityKind::PriceBookRate => 1,
        _ => 5,
    }
}

/// A finished comparison of one organisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonReport {
    /// Row id in `tds_comparison_reports` (absent for dry runs? no: dry runs are recorded too).
    pub report_id: i64,
    /// Organisation.
    pub org_id: String,
    /// Per kind.
    pub kinds: Vec<KindDiff>,
    /// Overall match percentage.
    pub match_pct: f64,
    /// Health score (0–100): the overall match, lowered by critical kinds.
    pub health_score: f64,
    /// Severity band of the health score.
    pub severity: String,
    /// What to do about it.
    pub recommendations: Vec<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Heal actions: per kind, ids re-fetched and tombstoned (planned, for a dry run).
    pub heal: Vec<HealAction>,
    /// Statistics of both sides.
    pub statistics: BTreeMap<String, Stats>,
    /// Zoho calls the comparison made.
    pub api_calls: i64,
}

/// What healing did (or would do) for one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealAction {
    /// Kind.
    pub kind: String,
    /// Ids re-fetched (for stock: items; for rates: price books).
    pub refetch: Vec<String>,
    /// Ids tombstoned.
    pub tombstone: Vec<String>,
    /// The heal run, when one was started.
    pub run_id: Option<i64>,
}

pub(crate) const COMPARED: [EntityKind; 11] = [
    EntityKind::Item,
    EntityKind::Location,
    EntityKind::PriceBook,
    EntityKind::Contact,
    EntityKind::Invoice,
    EntityKind::SalesOrder,
    EntityKind::Bill,
    EntityKind::CustomerPayment,
    EntityKind::CreditNote,
    EntityKind::VendorPayment,
    EntityKind::PurchaseOrder,
];

/// The ids (`field`) of the listed records of `kind`.
pub(crate) fn ids_listed(
    listed: &HashMap<EntityKind, Vec<Value>>,
    kind: EntityKind,
    field: &str,
) -> Vec<String> {
    listed
        .get(&kind)
        .into_iter()
        .flatten()
        .filter_map(|r| text(r, field))
        .collect()
}
