//! The comparison of child rows, which Zoho lists only inside their parents: stock on hand per
//! (item, location), price-book rates and item images. `Comparator::compare_org` calls these
//! with the listings it has already read.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde_json::Value;
use tds_core::{EntityKind, ItemStock, PriceBookRate};
use tds_zoho::Priority;

use super::{stock_row, Comparator};
use crate::compare::{diff_values, ids_listed, CompareRequest, KindDiff, STOCK_SAMPLE_CYCLES};
use crate::{decimal, text, Failure};

impl Comparator {
    /// Stock on hand per (item, location), right whatever Zoho does with `location_id` on lists
    /// (ZOHO.md: narrowing is inferred, not documented), so narrowed listings are never used:
    /// * the unfiltered item list (already read for the item comparison: `ceil(N/200)` calls) gives
    ///   each item's organisation total, compared with the stored item total and with the sum of the
    ///   stored per-location rows;
    /// * only items whose totals differ, plus a rotating sample (`ceil(N / cycles)` items a cycle, so
    ///   every item's split between locations is checked once every `cycles` comparisons: a transfer
    ///   keeps the totals), are read with `/itemdetails` (`ceil(n/100)` calls) and compared row by row;
    /// * the rows of the other items are verified by their totals.
    pub(super) async fn compare_stock(
        &self,
        org: &str,
        listed: &mut HashMap<EntityKind, Vec<Value>>,
        request: &CompareRequest,
        api_calls: &mut i64,
    ) -> Result<KindDiff, Failure> {
        let mut zoho_totals: BTreeMap<String, Option<Decimal>> = BTreeMap::new();
        for r in listed.get(&EntityKind::Item).into_iter().flatten() {
            if text(r, "product_type").as_deref() == Some("service") {
                continue;
            }
            if let Some(id) = text(r, "item_id") {
                zoho_totals.insert(id, decimal(EntityKind::Item, r, "stock_on_hand"));
            }
        }
        // The items read in detail: totals that differ, items the list lacks, and the sample.
        let stored = self.store().item_stock_totals(org).await?;
        let mut asked: std::collections::BTreeSet<String> = zoho_totals
            .iter()
            .filter(|(id, total)| match stored.get(*id) {
                // Not stored at all: the item comparison reports it; its rows come with its re-fetch.
                None => false,
                Some(t) => t.differ_from(**total),
            })
            .map(|(id, _)| id.clone())
            .collect();
        // Stored rows of items Zoho's list lacks: asked by id (a listing can miss a live item); the
        // rows of an item Zoho no longer has are then deleted in Zoho.
        let local_rows: HashMap<String, Option<Decimal>> = self
            .store()
            .stock_on_hand(org, None)
            .await?
            .into_iter()
            .map(|(k, v)| (k, v.map(|d| d.normalize())))
            .collect();
        let item_of = |row: &str| row.split(':').next().unwrap_or_default().to_string();
        asked.extend(
            local_rows
                .keys()
                .map(|row| item_of(row))
                .filter(|item| !zoho_totals.contains_key(item)),
        );
        let cycles = request
            .stock_sample_cycles
            .unwrap_or(STOCK_SAMPLE_CYCLES)
            .max(1);
        let turn = self.store().comparison_count(org).await?.max(0) as usize % cycles;
        let per_cycle = zoho_totals.len().div_ceil(cycles);
        asked.extend(
            zoho_totals
                .keys()
                .skip(turn * per_cycle)
                .take(per_cycle)
                .cloned(),
        );

        let mut zoho_rows: HashMap<String, Option<Decimal>> = HashMap::new();
        let mut rows = Vec::new();
        let ids: Vec<String> = asked.iter().cloned().collect();
        for chunk in ids.chunks(100) {
            *api_calls += 1;
            let items = self
                .zoho
                .item_details(org, chunk, Priority::Compare)
                .await?;
            for item in items {
                for row in item.stock_rows() {
                    let location = row.stock.location_id.clone();
                    zoho_rows.insert(
                        ItemStock::row_id(&item.item_id, &location),
                        row.stock.stock_on_hand.map(|d| d.normalize()),
                    );
                    rows.push(stock_row(
                        &ItemStock::row_id(&item.item_id, &location),
                        row.stock.stock_on_hand,
                    ));
                }
            }
        }
        // Rows of items asked in detail are compared one by one; the others stand on their totals.
        let checked: HashMap<String, Option<Decimal>> = local_rows
            .iter()
            .filter(|(row, _)| asked.contains(&item_of(row)))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut d = diff_values(EntityKind::ItemStock.as_str(), &zoho_rows, &checked);
        let verified = local_rows.len() - checked.len();
        d.matched += verified;
        d.zoho_total = zoho_rows.len() + verified;
        d.local_total = local_rows.len();
        // Zoho's side of the stock statistics: the rows read in detail, and for the other items the
        // stored rows their totals verified.
        for (row, qty) in local_rows
            .iter()
            .filter(|(row, _)| !asked.contains(&item_of(row)))
        {
            rows.push(stock_row(row, *qty));
        }
        listed.insert(EntityKind::ItemStock, rows);
        Ok(d)
    }

    /// Price-book rates: each book's detail GET against `price_book_rates`.
    pub(super) async fn compare_rates(
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
        let local = self.store().rates_of_books(org).await?;
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
    pub(super) async fn compare_images(
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
        let local = self.store().image_ids(org).await?;
        Ok(diff_values(EntityKind::ItemImage.as_str(), &zoho, &local))
    }
}
