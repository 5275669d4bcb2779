//! The comparison engine: measures Zoho against PostgreSQL record by record and heals the difference.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tds_core::fields::parse_zoho_timestamp;
use tds_core::ports::DomainEvent;
use tds_core::{EntityKind, ItemStock, PriceBookRate};
use tds_store::{NewJob, RowVersion};
use tds_zoho::Priority;

use crate::jobs::{StartSync, SyncJob, SyncMode};
use crate::stats::{collect_stats, Stats};
use crate::{decimal, text, Failure, Processor};

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

const COMPARED: [EntityKind; 11] = [
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
fn ids_listed(
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

impl Processor {
    /// Compares (and heals, unless a dry run or told not to) every organisation the request names.
    pub async fn compare(
        &self,
        request: &CompareRequest,
    ) -> Result<Vec<ComparisonReport>, Failure> {
        let mut kinds =
            crate::jobs::resolve_entities(&request.entities).map_err(Failure::Permanent)?;
        kinds.retain(|k| COMPARED.contains(k) || *k == EntityKind::ItemImage);
        let orgs = crate::organisations(&self.zoho, request.org_id.as_deref())?;
        let mut out = Vec::new();
        for org in orgs {
            out.push(self.compare_org(&org, &kinds, request).await?);
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
        for &kind in COMPARED.iter().filter(|k| {
            kinds.contains(k)
                || (want_items && **k == EntityKind::Item)
                || (kinds.contains(&EntityKind::Item) && **k == EntityKind::Location)
        }) {
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
                let local = self.store.versions(kind, org).await?;
                let mut d = diff(kind.as_str(), &keys, &local);
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
            diffs.push(self.compare_stock(org, &mut listed, &mut api_calls).await?);
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
        let matched: usize = diffs.iter().map(|d| d.matched).sum();
        let total: usize = matched + diffs.iter().map(KindDiff::differences).sum::<usize>();
        let match_pct = if total == 0 {
            100.0
        } else {
            matched as f64 * 100.0 / total as f64
        };
        let critical = diffs
            .iter()
            .filter(|d| severity(d.match_pct()) == "critical")
            .count();
        let health_score = (match_pct - 5.0 * critical as f64).clamp(0.0, 100.0);
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
                if d.differences() > self.threshold(&d.kind, request) {
                    "heal: re-fetch exactly these ids and tombstone what Zoho deleted"
                } else {
                    "below the heal threshold: the next scheduled sync will pick these up"
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
            severity: severity(health_score).to_string(),
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

    /// Stock on hand per (item, location): Zoho's location-narrowed lists against `item_stock`.
    async fn compare_stock(
        &self,
        org: &str,
        listed: &mut HashMap<EntityKind, Vec<Value>>,
        api_calls: &mut i64,
    ) -> Result<KindDiff, Failure> {
        let locations = ids_listed(listed, EntityKind::Location, "location_id");
        let mut zoho = HashMap::new();
        let mut rows = Vec::new();
        for location in &locations {
            let records = self
                .list_all(
                    org,
                    EntityKind::Item,
                    vec![("location_id".into(), location.clone())],
                    api_calls,
                )
                .await?;
            for r in records {
                if text(&r, "product_type").as_deref() == Some("service") {
                    continue;
                }
                if let Some(id) = text(&r, "item_id") {
                    zoho.insert(
                        ItemStock::row_id(&id, location),
                        decimal(EntityKind::Item, &r, "stock_on_hand"),
                    );
                    rows.push(json!({"item_id": id, "location_id": location,
                                     "stock_on_hand": r.get("stock_on_hand").cloned().unwrap_or(Value::Null)}));
                }
            }
        }
        listed.insert(EntityKind::ItemStock, rows);
        let local: HashMap<String, Option<Decimal>> = self
            .store
            .stock_on_hand(org, None)
            .await?
            .into_iter()
            .map(|(k, v)| (k, v.map(|d| d.normalize())))
            .collect();
        Ok(diff_values(EntityKind::ItemStock.as_str(), &zoho, &local))
    }

    /// Price-book rates: each book's detail GET against `price_book_rates`.
    async fn compare_rates(
        &self,
        org: &str,
        listed: &mut HashMap<EntityKind, Vec<Value>>,
        api_calls: &mut i64,
    ) -> Result<KindDiff, Failure> {
        let books = ids_listed(listed, EntityKind::PriceBook, "pricebook_id");
        let mut zoho = HashMap::new();
        let mut rate_records = Vec::new();
        for book in &books {
            *api_calls += 1;
            let record = match self
                .zoho
                .get_record(org, EntityKind::PriceBook, book, Priority::Compare)
                .await
            {
                Ok(r) => r,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            for rate in record
                .get("pricebook_items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(item) = text(rate, "item_id") {
                    zoho.insert(
                        PriceBookRate::row_id(book, &item),
                        decimal(EntityKind::PriceBookRate, rate, "pricebook_rate"),
                    );
                    rate_records.push(rate.clone());
                }
            }
        }
        listed.insert(EntityKind::PriceBookRate, rate_records);
        let local = self.store.rates_of_books(org).await?;
        let local: HashMap<String, Option<Decimal>> = local
            .into_iter()
            .map(|(k, v)| (k, v.map(|d| d.normalize())))
            .collect();
        Ok(diff_values(
            EntityKind::PriceBookRate.as_str(),
            &zoho,
            &local,
        ))
    }

    /// Images by image id: the item list against `item_images`.
    async fn compare_images(
        &self,
        org: &str,
        listed: &HashMap<EntityKind, Vec<Value>>,
    ) -> Result<KindDiff, Failure> {
        let zoho: HashMap<String, String> = listed
            .get(&EntityKind::Item)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let image = text(r, "image_document_id").or_else(|| text(r, "image_id"))?;
                Some((text(r, "item_id")?, image))
            })
            .collect();
        let local = self.store.image_ids(org).await?;
        Ok(diff_values(EntityKind::ItemImage.as_str(), &zoho, &local))
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
            if d.differences() == 0 || d.differences() <= self.threshold(&d.kind, request) {
                continue;
            }
            let Ok(kind) = d.kind.parse::<EntityKind>() else {
                continue;
            };
            let item_of = |row: &String| row.split(':').next().unwrap_or_default().to_string();
            let (fetch_kind, refetch, tombstone): (EntityKind, Vec<String>, Vec<String>) =
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
                };
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
                self.tombstone_ids(org, kind, tombstone).await?;
            }
            if kind == EntityKind::ItemImage {
                // An image run re-fetches exactly the changed images and tombstones the removed ones.
                let ids = self
                    .start_sync(&StartSync {
                        org_id: Some(org.to_string()),
                        entities: vec!["item_image".into()],
                        mode: SyncMode::Incremental,
                        trigger: "heal".into(),
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
                action.run_id = Some(self.start_heal_run(org, fetch_kind, &refetch).await?);
            }
            actions.push(action);
        }
        Ok(actions)
    }

    /// Opens a `heal` run whose jobs re-fetch exactly `ids` of `kind`.
    pub async fn start_heal_run(
        &self,
        org: &str,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<i64, Failure> {
        let run_id = self
            .store
            .start_run(
                org,
                kind.as_str(),
                "heal",
                "comparison",
                json!({"ids": ids.len()}),
            )
            .await?;
        self.publish(vec![crate::event(
            "tds.sync.started",
            json!({"run_id": run_id, "org_id": org, "entity": kind, "mode": "heal", "trigger": "comparison"}),
        )])
        .await;
        let per_job = if kind == EntityKind::Item {
            100
        } else {
            self.settings.details_per_job.max(1)
        };
        let jobs: Vec<NewJob> = ids
            .chunks(per_job)
            .enumerate()
            .map(|(n, chunk)| {
                let job = SyncJob::Details {
                    run_id,
                    key: format!("heal:{n}"),
                    org_id: org.to_string(),
                    kind,
                    ids: chunk.to_vec(),
                };
                job.new_job()
            })
            .collect();
        self.store.add_jobs(run_id, None, &jobs).await?;
        self.send_jobs(&jobs).await?;
        Ok(run_id)
    }

    async fn record_report(
        &self,
        report: &ComparisonReport,
        kinds: &[EntityKind],
    ) -> Result<i64, Failure> {
        let scope = kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let sum = |f: fn(&KindDiff) -> usize| report.kinds.iter().map(f).sum::<usize>() as i64;
        let heal_jobs = report.heal.iter().filter(|h| h.run_id.is_some()).count() as i64;
        let body = serde_json::to_value(report).unwrap_or(Value::Null);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tds_comparison_reports (org_id, scope, match_pct, health_score, severity, missing_locally,
                 deleted_in_zoho, stale, mismatched, heal_jobs, report)
             VALUES ($1, $2, round($3::numeric, 3), round($4::numeric, 3), $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&report.org_id)
        .bind(scope)
        .bind(report.match_pct)
        .bind(report.health_score)
        .bind(&report.severity)
        .bind(sum(|d| d.missing_locally.len()))
        .bind(sum(|d| d.deleted_in_zoho.len()))
        .bind(sum(|d| d.stale.len()))
        .bind(sum(|d| d.mismatched.len()))
        .bind(heal_jobs)
        .bind(body)
        .fetch_one(self.store.pool())
        .await
        .map_err(|e| Failure::Retry(format!("record comparison report: {e}")))?;
        // Both sides of every group in one statement.
        let (mut sources, mut entities, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for (entity, stats) in &report.statistics {
            for (source, value) in [("zoho", &stats.zoho), ("database", &stats.database)] {
                sources.push(source);
                entities.push(entity.as_str());
                values.push(value);
            }
        }
        sqlx::query(
            "INSERT INTO tds_statistics_history (org_id, source, entity, stats)
             SELECT $1, s, e, v FROM UNNEST($2::text[], $3::text[], $4::jsonb[]) AS t(s, e, v)",
        )
        .bind(&report.org_id)
        .bind(sources)
        .bind(entities)
        .bind(values)
        .execute(self.store.pool())
        .await
        .map_err(|e| Failure::Retry(format!("record statistics: {e}")))?;
        Ok(id)
    }

    async fn publish_comparison(&self, report: &ComparisonReport) {
        let differences: usize = report.kinds.iter().map(KindDiff::differences).sum();
        let mut events = vec![DomainEvent {
            detail_type: "tds.stats.compared".into(),
            detail: json!({"org_id": report.org_id, "report_id": report.report_id, "match_pct": report.match_pct,
                           "health_score": report.health_score, "severity": report.severity,
                           "differences": differences, "dry_run": report.dry_run,
                           "heal_runs": report.heal.iter().filter_map(|h| h.run_id).collect::<Vec<_>>()}),
            time: Utc::now(),
        }];
        let critical: Vec<&str> = report
            .kinds
            .iter()
            .filter(|d| severity(d.match_pct()) == "critical")
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
            let alert_severity = if report.severity == "critical" || !critical.is_empty() {
                "critical"
            } else {
                "warning"
            };
            let stored = sqlx::query(
                "INSERT INTO tds_alerts (org_id, severity, kind, message, details, dedupe_key)
                 VALUES ($1, $2, 'drift', $3, $4, 'drift') ON CONFLICT (org_id, dedupe_key) WHERE resolved_at IS NULL
                 DO UPDATE SET severity = EXCLUDED.severity, message = EXCLUDED.message, details = EXCLUDED.details,
                     raised_at = now()",
            )
            .bind(&report.org_id)
            .bind(alert_severity)
            .bind(&message)
            .bind(json!({"report_id": report.report_id, "critical": critical}))
            .execute(self.store.pool())
            .await;
            if let Err(e) = stored {
                tracing::warn!(error = %e, "drift alert not stored");
            }
            events.push(DomainEvent {
                detail_type: "tds.alert.raised".into(),
                detail: json!({"org_id": report.org_id, "severity": alert_severity, "kind": "drift",
                               "message": message, "report_id": report.report_id}),
                time: Utc::now(),
            });
        } else {
            let resolved = sqlx::query(
                "UPDATE tds_alerts SET resolved_at = now() WHERE org_id = $1 AND dedupe_key = 'drift' AND resolved_at IS NULL",
            )
            .bind(&report.org_id)
            .execute(self.store.pool())
            .await;
            if let Err(e) = resolved {
                tracing::warn!(error = %e, "drift alert not resolved");
            }
        }
        self.publish(events).await;
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
            local.insert(*kind, self.store.live_records(*kind, org).await?);
        }
        let local_stock = self.store.live_records(EntityKind::ItemStock, org).await?;
        let local_rates = self
            .store
            .live_records(EntityKind::PriceBookRate, org)
            .await?;
        let local_images = self.store.live_records(EntityKind::ItemImage, org).await?;
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
