//! Statistics of an organisation, computed by the same functions from Zoho's records (list pages, the
//! stock listings per location, price-book details) and from the stored records, so the two sides are
//! measured alike. A figure Zoho's lists do not carry (contacts' countries and credit limits are only
//! on the detail GET) is `null` on the Zoho side rather than a guess.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tds_core::EntityKind;

use crate::text;

/// One statistic group from both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stats {
    /// From Zoho.
    pub zoho: Value,
    /// From PostgreSQL.
    pub database: Value,
}

fn number(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `x` to two decimals, never `-0`.
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0 + 0.0
}

fn tally(values: impl Iterator<Item = String>) -> Value {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for v in values {
        *m.entry(v).or_default() += 1;
    }
    json!(m)
}

fn is_service(r: &Value) -> bool {
    text(r, "product_type").as_deref() == Some("service")
}

fn has_image(r: &Value) -> bool {
    text(r, "image_document_id")
        .or_else(|| text(r, "image_id"))
        .is_some()
}

fn active(r: &Value) -> bool {
    text(r, "status").as_deref() == Some("active")
}

/// Item statistics.
pub fn item_stats(items: &[Value]) -> Value {
    let prices: Vec<f64> = items.iter().filter_map(|r| number(r, "rate")).collect();
    let value: f64 = items
        .iter()
        .filter(|r| !is_service(r))
        .filter_map(|r| Some(number(r, "stock_on_hand")? * number(r, "purchase_rate")?))
        .sum();
    let with_images = items.iter().filter(|r| has_image(r)).count();
    json!({
        "total": items.len(),
        "active": items.iter().filter(|r| active(r)).count(),
        "inactive": items.iter().filter(|r| !active(r)).count(),
        "with_images": with_images,
        "without_images": items.len() - with_images,
        "by_category": tally(items.iter().map(|r| text(r, "category_name").unwrap_or_else(|| "(none)".into()))),
        "by_brand": tally(items.iter().map(|r| text(r, "brand").unwrap_or_else(|| "(none)".into()))),
        "average_price": if prices.is_empty() { 0.0 } else { round2(prices.iter().sum::<f64>() / prices.len() as f64) },
        "total_stock_value": round2(value),
    })
}

/// Countries of contacts' billing addresses; `null` when no record carries an address.
fn by_country(contacts: &[&Value]) -> Value {
    if !contacts.iter().any(|c| c.get("billing_address").is_some()) {
        return Value::Null;
    }
    tally(contacts.iter().map(|c| {
        c.get("billing_address")
            .and_then(|a| text(a, "country"))
            .unwrap_or_else(|| "(none)".into())
    }))
}

fn sum_of(contacts: &[&Value], key: &str) -> Value {
    if !contacts.iter().any(|c| number(c, key).is_some()) {
        return Value::Null;
    }
    json!(round2(
        contacts.iter().filter_map(|c| number(c, key)).sum::<f64>()
    ))
}

/// Customer and vendor statistics (contacts split by `contact_type`).
pub fn contact_stats(contacts: &[Value]) -> (Value, Value) {
    let of = |t: &str| -> Vec<&Value> {
        contacts
            .iter()
            .filter(|c| text(c, "contact_type").as_deref() == Some(t))
            .collect()
    };
    let (customers, vendors) = (of("customer"), of("vendor"));
    let customer = json!({
        "total": customers.len(),
        "active": customers.iter().filter(|c| active(c)).count(),
        "inactive": customers.iter().filter(|c| !active(c)).count(),
        "by_type": tally(customers.iter().map(|c| text(c, "customer_sub_type").unwrap_or_else(|| "(none)".into()))),
        "by_country": by_country(&customers),
        "total_credit_limit": sum_of(&customers, "credit_limit"),
        "with_outstanding_balance": customers.iter().filter(|c| number(c, "outstanding_receivable_amount").unwrap_or(0.0) > 0.0).count(),
    });
    let vendor = json!({
        "total": vendors.len(),
        "active": vendors.iter().filter(|c| active(c)).count(),
        "by_country": by_country(&vendors),
        "total_payables": sum_of(&vendors, "outstanding_payable_amount"),
    });
    (customer, vendor)
}

/// Price-list statistics: books, and the rates of their items.
pub fn price_list_stats(books: &[Value], rates: &[Value], items_total: usize) -> Value {
    let mapped: BTreeSet<String> = rates.iter().filter_map(|r| text(r, "item_id")).collect();
    json!({
        "total": books.len(),
        "active": books.iter().filter(|b| active(b)).count(),
        "items_mapped": mapped.len(),
        "by_currency": tally(books.iter().map(|b| text(b, "currency_code").unwrap_or_else(|| "(none)".into()))),
        "coverage_pct": if items_total == 0 { 0.0 } else { round2(mapped.len() as f64 * 100.0 / items_total as f64) },
    })
}

/// Stock statistics: per item (aggregate stock on hand of goods) and per warehouse (location id),
/// from per-location rows `{"location_id", "stock_on_hand"}` (the same keys for both of Zoho's stock
/// shapes: TDS builds them from typed columns and parsed records, never from Zoho's raw keys).
pub fn stock_stats(items: &[Value], per_location: &[Value], low_stock: f64) -> Value {
    let goods: Vec<&Value> = items.iter().filter(|r| !is_service(r)).collect();
    let qty = |r: &Value| number(r, "stock_on_hand").unwrap_or(0.0);
    let total: f64 = goods.iter().map(|r| qty(r)).sum();
    let value: f64 = goods
        .iter()
        .filter_map(|r| Some(qty(r) * number(r, "purchase_rate")?))
        .sum();
    let mut by_warehouse: BTreeMap<String, f64> = BTreeMap::new();
    for row in per_location {
        if let Some(location) = text(row, "location_id") {
            let q = number(row, "stock_on_hand").unwrap_or(0.0);
            *by_warehouse.entry(location).or_default() += q;
        }
    }
    let by_warehouse: Map<String, Value> = by_warehouse
        .into_iter()
        .map(|(k, v)| (k, json!(round2(v))))
        .collect();
    json!({
        "items_in_stock": goods.iter().filter(|r| qty(r) > 0.0).count(),
        "out_of_stock": goods.iter().filter(|r| qty(r) <= 0.0).count(),
        "low_stock": goods.iter().filter(|r| qty(r) > 0.0 && qty(r) < low_stock).count(),
        "total_value": round2(value),
        "average_per_item": if goods.is_empty() { 0.0 } else { round2(total / goods.len() as f64) },
        "by_warehouse": by_warehouse,
    })
}

/// Image statistics: `images` is how many images exist (Zoho: items with an image id; database: rows).
pub fn image_stats(items_total: usize, images: usize) -> Value {
    json!({
        "total": images,
        "coverage_pct": if items_total == 0 { 0.0 } else { round2(images as f64 * 100.0 / items_total as f64) },
        "average_per_item": if items_total == 0 { 0.0 } else { (images as f64 / items_total as f64 * 1000.0).round() / 1000.0 },
    })
}

/// Every statistic group of both sides. `zoho` holds list records by kind (and, under `ItemStock`,
/// the per-location rows the stock comparison read or verified by totals; under `PriceBookRate`, the
/// books' rates).
pub fn collect_stats(
    zoho: &HashMap<EntityKind, Vec<Value>>,
    local: &HashMap<EntityKind, Vec<Value>>,
    local_stock: &[Value],
    local_rates: &[Value],
    local_images: &[Value],
    low_stock: f64,
) -> BTreeMap<String, Stats> {
    let empty = Vec::new();
    let z = |k: EntityKind| zoho.get(&k).unwrap_or(&empty);
    let l = |k: EntityKind| local.get(&k).unwrap_or(&empty);
    let mut out = BTreeMap::new();
    let both = |zoho: Value, database: Value| Stats { zoho, database };
    if zoho.contains_key(&EntityKind::Item) {
        let (zi, li) = (z(EntityKind::Item), l(EntityKind::Item));
        out.insert("items".into(), both(item_stats(zi), item_stats(li)));
        out.insert(
            "stock".into(),
            both(
                stock_stats(zi, z(EntityKind::ItemStock), low_stock),
                stock_stats(li, local_stock, low_stock),
            ),
        );
        let zoho_images = zi.iter().filter(|r| has_image(r)).count();
        out.insert(
            "images".into(),
            both(
                image_stats(zi.len(), zoho_images),
                image_stats(li.len(), local_images.len()),
            ),
        );
    }
    if zoho.contains_key(&EntityKind::Contact) {
        let (zc, zv) = contact_stats(z(EntityKind::Contact));
        let (lc, lv) = contact_stats(l(EntityKind::Contact));
        out.insert("customers".into(), both(zc, lc));
        out.insert("vendors".into(), both(zv, lv));
    }
    if zoho.contains_key(&EntityKind::PriceBook) {
        out.insert(
            "price_lists".into(),
            both(
                price_list_stats(
                    z(EntityKind::PriceBook),
                    z(EntityKind::PriceBookRate),
                    z(EntityKind::Item).len(),
                ),
                price_list_stats(
                    l(EntityKind::PriceBook),
                    local_rates,
                    l(EntityKind::Item).len(),
                ),
            ),
        );
    }
    let mut zt = Map::new();
    let mut lt = Map::new();
    for k in EntityKind::ALL
        .iter()
        .filter(|k| k.spec().transaction && zoho.contains_key(k))
    {
        zt.insert(k.as_str().into(), json!(z(*k).len()));
        lt.insert(k.as_str().into(), json!(l(*k).len()));
    }
    if !zt.is_empty() {
        out.insert(
            "transactions".into(),
            both(Value::Object(zt), Value::Object(lt)),
        );
    }
    out
}
