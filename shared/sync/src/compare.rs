//! The comparison engine's report and pure diff: measures Zoho against PostgreSQL record by record;
//! [`crate::comparator::Comparator`] runs it and heals the difference.
//!
//! For each entity kind it lists Zoho's records (list pages only, 200 per call, at the lowest budget
//! priority) and diffs their `(id, last_modified_time)` against the stored versions: missing locally,
//! present locally but deleted in Zoho, stale (Zoho newer, or a stored version newer than any Zoho
//! has). Stock per location is checked by totals (the unfiltered item list's organisation totals
//! against the stored totals and per-location sums), with `/itemdetails` only for items whose totals
//! differ or that the list lacks, plus a rotating sample for transfers that keep totals; price-book
//! rates from each book's detail GET; images by image id from the item list. Each kind gets a match
//! percentage and a severity band (≥ 99 perfect, ≥ 95 good, ≥ 90 warning, below critical); the report
//! has an overall match, a health score and recommendations, rounded to two decimals. Healing
//! re-fetches exactly the differing ids through `details` jobs of a `heal` run (what Zoho answers
//! "does not exist" is tombstoned) when a kind's differences exceed its threshold; deletions are
//! confirmed and applied whatever the threshold. Never a blind full resync; a dry run reports the plan
//! and changes nothing. The in-memory diff ([`diff`]) is a pure function.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Versions differ: Zoho's is newer, or the stored one is newer than any Zoho has (a claimed,
    /// future-dated version).
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

/// A severity band of a match percentage: ≥ 99 perfect, ≥ 95 good, ≥ 90 warning, below critical.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// ≥ 99 %.
    Perfect,
    /// ≥ 95 %.
    Good,
    /// ≥ 90 %.
    Warning,
    /// Below 90 %.
    Critical,
}

impl Severity {
    /// The band of `match_pct`.
    pub fn of(match_pct: f64) -> Severity {
        if match_pct >= 99.0 {
            Severity::Perfect
        } else if match_pct >= 95.0 {
            Severity::Good
        } else if match_pct >= 90.0 {
            Severity::Warning
        } else {
            Severity::Critical
        }
    }

    /// The band's name (`perfect`, `good`, `warning`, `critical`), as reports store it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Perfect => "perfect",
            Severity::Good => "good",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Severity {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The severity band of a match percentage ([`Severity::of`]).
pub fn severity(match_pct: f64) -> Severity {
    Severity::of(match_pct)
}

/// Diffs Zoho's keys against stored versions (tombstones included): a pure, O(n log n) function.
/// A stored version newer than Zoho's is drift too (a version Zoho never had).
pub fn diff(kind: &str, zoho: &[ZohoKey], local: &[RowVersion]) -> KindDiff {
    diff_listed_at(kind, zoho, local, DateTime::<Utc>::MAX_UTC)
}

/// [`diff`] of a listing that began at `listed_from`: a stored version newer than Zoho's listed one
/// but within [`tds_store::FUTURE_TOLERANCE`] after `listed_from` is a change made while the
/// listing ran, not drift; one before `listed_from` or beyond the tolerance (dated in the future)
/// is drift, reported stale and re-read.
pub fn diff_listed_at(
    kind: &str,
    zoho: &[ZohoKey],
    local: &[RowVersion],
    listed_from: DateTime<Utc>,
) -> KindDiff {
    let tolerance = chrono::Duration::from_std(tds_store::FUTURE_TOLERANCE).unwrap_or_default();
    let concurrent = |v: DateTime<Utc>| {
        v >= listed_from
            && listed_from
                .checked_add_signed(tolerance)
                .is_none_or(|t| v <= t)
    };
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
                    // Stored newer than Zoho has it, and not a change made during the listing.
                    (None, Some(m))
                        if m < b.last_modified_time && !concurrent(b.last_modified_time) =>
                    {
                        out.stale.push(a.id.clone())
                    }
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// In how many comparisons every item's per-location split is read once (default
    /// [`STOCK_SAMPLE_CYCLES`]); 1 reads every item's locations each time.
    #[serde(default)]
    pub stock_sample_cycles: Option<usize>,
}

/// Comparisons over which the rotating stock sample covers every item: 28, a week of the
/// template's 6-hourly `CompareSchedule`. Each comparison reads `ceil(N / 28)` items' locations
/// (`ceil(N / 2800)` `/itemdetails` calls: 4 for 10,000 items).
pub const STOCK_SAMPLE_CYCLES: usize = 28;

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

/// Differences above which a kind is healed (the old auto-sync's defaults, in the kind table).
pub fn default_threshold(kind: EntityKind) -> usize {
    kind.spec().heal_threshold
}

/// A finished comparison of one organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    pub severity: Severity,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// The kinds a comparison lists and compares record by record, in dependency order.
pub(crate) fn compared() -> impl Iterator<Item = EntityKind> {
    EntityKind::ALL.into_iter().filter(|k| k.spec().compared)
}

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

/// What healing a kind's differences re-fetches and tombstones: `(kind to re-fetch, ids to re-fetch,
/// ids to tombstone)`. Stock rows are healed by re-reading their items (stock rows Zoho no longer has
/// are tombstoned), rates by re-reading their price books, images by an image run (planned there);
/// every other kind re-fetches what differs, including what the listing lacks: only a re-fetch that
/// Zoho answers "does not exist" tombstones a record, since a paged listing can miss a live one.
pub fn heal_plan(kind: EntityKind, d: &KindDiff) -> (EntityKind, Vec<String>, Vec<String>) {
    let item_of = |row: &String| row.split(':').next().unwrap_or_default().to_string();
    match kind {
        EntityKind::ItemStock => {
            let items: BTreeSet<String> = d
                .missing_locally
                .iter()
                .chain(&d.mismatched)
                .map(item_of)
                .collect();
            (
                EntityKind::Item,
                items.into_iter().collect(),
                d.deleted_in_zoho.clone(),
            )
        }
        EntityKind::PriceBookRate => {
            let books: BTreeSet<String> = d
                .missing_locally
                .iter()
                .chain(&d.mismatched)
                .chain(&d.deleted_in_zoho)
                .map(item_of)
                .collect();
            (
                EntityKind::PriceBook,
                books.into_iter().collect(),
                Vec::new(),
            )
        }
        EntityKind::ItemImage => (EntityKind::ItemImage, Vec::new(), Vec::new()),
        // What the listing lacks is re-fetched too, not tombstoned on its word: a page
        // listing shifts when Zoho deletes a record meanwhile, so a live record can be
        // missed. The re-fetch tombstones only what Zoho confirms gone (not found).
        k => {
            let ids: Vec<String> = d
                .missing_locally
                .iter()
                .chain(&d.stale)
                .chain(&d.deleted_in_zoho)
                .cloned()
                .collect();
            (k, ids, Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_760_000_000 + s, 0).unwrap()
    }
    fn key(id: &str, modified: i64) -> ZohoKey {
        ZohoKey {
            id: id.into(),
            modified: Some(at(modified)),
        }
    }
    fn row(id: &str, version: i64, deleted: Option<i64>) -> RowVersion {
        RowVersion {
            zoho_id: id.into(),
            last_modified_time: at(version),
            deleted_at: deleted.map(at),
        }
    }

    #[test]
    fn severity_bands() {
        assert_eq!(severity(100.0), "perfect");
        assert_eq!(severity(99.0), "perfect");
        assert_eq!(severity(98.9), "good");
        assert_eq!(severity(95.0), "good");
        assert_eq!(severity(94.9), "warning");
        assert_eq!(severity(90.0), "warning");
        assert_eq!(severity(89.9), "critical");
    }

    #[test]
    fn diff_names_each_difference_by_id() {
        let zoho = [
            key("1", 10),
            key("2", 20),
            key("3", 30),
            key("5", 50),
            key("5", 50),
        ];
        let local = [
            row("1", 10, None),     // equal
            row("2", 10, None),     // Zoho newer: stale
            row("4", 10, None),     // live here, not in Zoho
            row("5", 40, Some(45)), // tombstoned, Zoho has a newer version
            row("6", 10, Some(11)), // tombstoned and gone: nothing to do
        ];
        let d = diff("item", &zoho, &local);
        assert_eq!(d.matched, 1);
        assert_eq!(d.stale, vec!["2"]);
        assert_eq!(d.missing_locally, vec!["3", "5"]);
        assert_eq!(d.deleted_in_zoho, vec!["4"]);
        assert_eq!((d.zoho_total, d.local_total), (4, 3));
        assert_eq!(d.differences(), 4);
        assert!((d.match_pct() - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_stored_version_newer_than_zohos_is_drift_unless_made_during_the_listing() {
        let zoho = [key("1", 10), key("2", 10), key("3", 10)];
        let local = [
            row("1", 20, None),    // newer, before the listing began: drift
            row("2", 1_000, None), // newer, during the listing: a concurrent change
            row("3", 9_000, None), // newer, far beyond the listing: future-dated, drift
        ];
        let listed_from = at(900);
        let d = diff_listed_at("item", &zoho, &local, listed_from);
        assert_eq!(d.stale, vec!["1", "3"]);
        assert_eq!(d.matched, 1);
    }

    #[test]
    fn an_empty_comparison_matches_fully() {
        let d = diff("item", &[], &[]);
        assert_eq!(d.match_pct(), 100.0);
    }

    #[test]
    fn diff_values_finds_missing_extra_and_mismatched() {
        let zoho: HashMap<String, i32> = [("a", 1), ("b", 2), ("c", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let local: HashMap<String, i32> = [("a", 1), ("b", 9), ("d", 4)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let d = diff_values("item_stock", &zoho, &local);
        assert_eq!(d.matched, 1);
        assert_eq!(d.mismatched, vec!["b"]);
        assert_eq!(d.missing_locally, vec!["c"]);
        assert_eq!(d.deleted_in_zoho, vec!["d"]);
    }

    #[test]
    fn heal_plans_refetch_what_differs_and_tombstone_only_stock_rows() {
        let d = KindDiff {
            kind: "item_stock".into(),
            missing_locally: vec!["i1:l1".into()],
            mismatched: vec!["i1:l2".into(), "i2:l1".into()],
            deleted_in_zoho: vec!["i3:l1".into()],
            ..KindDiff::default()
        };
        let (kind, refetch, tombstone) = heal_plan(EntityKind::ItemStock, &d);
        assert_eq!(kind, EntityKind::Item);
        assert_eq!(refetch, vec!["i1", "i2"]);
        assert_eq!(tombstone, vec!["i3:l1"]);

        let d = KindDiff {
            kind: "price_book_rate".into(),
            deleted_in_zoho: vec!["b1:i1".into()],
            mismatched: vec!["b2:i1".into()],
            ..KindDiff::default()
        };
        let (kind, refetch, tombstone) = heal_plan(EntityKind::PriceBookRate, &d);
        assert_eq!(
            (kind, refetch, tombstone.len()),
            (
                EntityKind::PriceBook,
                vec!["b1".to_string(), "b2".into()],
                0
            )
        );

        // A record the listing lacks is re-fetched, never tombstoned on the listing's word.
        let d = KindDiff {
            kind: "invoice".into(),
            missing_locally: vec!["1".into()],
            stale: vec!["2".into()],
            deleted_in_zoho: vec!["3".into()],
            ..KindDiff::default()
        };
        let (kind, refetch, tombstone) = heal_plan(EntityKind::Invoice, &d);
        assert_eq!(kind, EntityKind::Invoice);
        assert_eq!(refetch, vec!["1", "2", "3"]);
        assert!(tombstone.is_empty());
    }
}
