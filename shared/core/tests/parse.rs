//! Parsing of realistic Zoho records (fixtures/ hold list pages, detail GETs and webhook-shaped bodies
//! with every quirk in ZOHO.md), asserting the parsed values.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tds_core::row::content_hash;
use tds_core::{
    parse_entity, AnyEntity, Contact, Document, Entity, EntityKind, Item, Location, PriceBook,
    PriceBookRate, StockShape, VersionedRow,
};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn list_page_items_with_string_ids_six_decimal_numbers_blank_numbers_and_colonless_offsets() {
    let page = fixture("items_list_page.json");
    let items: Vec<Item> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(Item::parse)
        .collect::<Result<_, _>>()
        .unwrap();

    let bag = &items[0];
    assert_eq!(bag.item_id, "4815000000044208");
    assert_eq!(bag.name.as_deref(), Some("Bags-small"));
    assert_eq!(bag.sku.as_deref(), Some("SK123"));
    assert_eq!(bag.rate, Some(dec("6")));
    assert_eq!(bag.purchase_rate, Some(dec("3.5")));
    assert_eq!(bag.stock_on_hand, Some(dec("5")));
    assert_eq!(bag.actual_available_stock, Some(dec("4")));
    assert_eq!(bag.reorder_level, None, "\"\" means absent");
    assert_eq!(bag.image_id.as_deref(), Some("4815000000044250"));
    assert_eq!(bag.category_name.as_deref(), Some("Bags"));
    assert_eq!(bag.brand.as_deref(), Some("Acme"));
    assert_eq!(bag.last_modified_time, Some(utc("2024-02-01T08:54:54Z")));
    assert_eq!(bag.created_time, Some(utc("2024-01-30T07:12:03Z")));
    assert_eq!(
        bag.stock_shape, None,
        "list pages carry no per-location stock"
    );
    assert!(bag.stock.is_empty());
    assert_eq!(bag.record, page["items"][0], "the record is kept verbatim");

    let service = &items[1];
    assert!(service.is_service());
    assert_eq!(service.stock_on_hand, None, "services omit stock fields");
    assert_eq!(service.available_stock, None);
    assert_eq!(service.rate, Some(dec("2.5")), "numeric string");
    assert_eq!(service.purchase_rate, None);
    assert_eq!(service.image_id, None, "\"\" image id means no image");
    assert_eq!(
        service.created_time,
        Some(utc("2023-11-18T00:00:00Z")),
        "bare date"
    );
    assert_eq!(
        service.last_modified_time,
        Some(utc("2023-11-18T10:02:51Z"))
    );

    let umbrella = &items[2];
    assert_eq!(umbrella.item_id, "4815000000044444", "numeric id accepted");
    assert_eq!(umbrella.rate, Some(dec("12")));
    assert_eq!(umbrella.purchase_rate, Some(dec("7.25")));
    assert_eq!(umbrella.stock_on_hand, Some(dec("0")));
    assert_eq!(umbrella.available_stock, Some(dec("-2")));
    assert_eq!(umbrella.reorder_level, Some(dec("10")));
    assert_eq!(
        umbrella.last_modified_time,
        Some(utc("2024-03-05T12:15:10Z")),
        "+0530"
    );
}

#[test]
fn item_detail_with_locations_array() {
    let item = Item::parse(fixture("item_detail_locations.json")["item"].clone()).unwrap();
    assert_eq!(item.stock_shape, Some(StockShape::Locations));
    assert_eq!(item.track_inventory, Some(true));
    assert_eq!(item.reorder_level, Some(dec("3")));
    assert_eq!(item.image_id.as_deref(), Some("4815000000044250"));
    assert_eq!(item.stock.len(), 3);

    let main = &item.stock[0];
    assert_eq!(main.location_id, "4815000000070001");
    assert_eq!(main.location_name.as_deref(), Some("Main Warehouse"));
    assert_eq!(main.is_primary, Some(true));
    assert_eq!(main.stock_on_hand, Some(dec("3")));
    assert_eq!(main.actual_available_stock, Some(dec("2")));
    assert_eq!(main.committed_stock, Some(dec("1")));
    assert_eq!(main.available_for_sale_stock, Some(dec("2")));
    assert_eq!(main.actual_available_for_sale_stock, Some(dec("1")));
    assert_eq!(main.quantity_in_transit, None);

    let downtown = &item.stock[1];
    assert_eq!(downtown.stock_on_hand, Some(dec("2")), "number form");
    assert_eq!(downtown.committed_stock, Some(dec("0")));
    assert_eq!(downtown.quantity_in_transit, Some(dec("4.5")));

    let returns = &item.stock[2];
    assert_eq!(returns.is_primary, Some(false), "\"false\" string");
    assert_eq!(returns.stock_on_hand, None, "OAS example '' means absent");

    let rows = item.stock_rows();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].zoho_id(), "4815000000044208:4815000000070002");
    assert_eq!(rows[1].kind(), EntityKind::ItemStock);
    assert_eq!(
        rows[1].last_modified_time(),
        None,
        "stock is versioned by observation"
    );
    assert_eq!(rows[1].record(), &item.record["locations"][1]);
}

#[test]
fn item_detail_with_legacy_warehouses_array() {
    let item = Item::parse(fixture("item_detail_warehouses.json")["item"].clone()).unwrap();
    assert_eq!(item.stock_shape, Some(StockShape::Warehouses));
    assert_eq!(item.rate, Some(dec("8.99")));
    assert_eq!(item.stock_on_hand, Some(dec("42")));
    assert_eq!(item.image_id, None);
    assert_eq!(
        item.last_modified_time,
        Some(utc("2019-11-27T17:05:02Z")),
        "-0500"
    );
    assert_eq!(item.stock.len(), 2);
    let primary = &item.stock[0];
    assert_eq!(primary.location_id, "2000000000101");
    assert_eq!(primary.location_name.as_deref(), Some("Primary"));
    assert_eq!(primary.stock_on_hand, Some(dec("30")));
    assert_eq!(primary.available_stock, Some(dec("29")));
    assert_eq!(primary.committed_stock, Some(dec("1")));
    assert_eq!(primary.available_for_sale_stock, Some(dec("28")));
    let overflow = &item.stock[1];
    assert_eq!(overflow.stock_on_hand, Some(dec("12")));
    assert_eq!(overflow.committed_stock, None);
}

#[test]
fn item_totals_come_from_the_locations_when_a_detail_omits_them() {
    for fixture_name in ["item_detail_locations.json", "item_detail_warehouses.json"] {
        let mut record = fixture(fixture_name)["item"].clone();
        let given = Item::parse(record.clone()).unwrap();
        for key in ["stock_on_hand", "available_stock", "actual_available_stock"] {
            record.as_object_mut().unwrap().remove(key);
        }
        let item = Item::parse(record).unwrap();
        let sum = |f: fn(&tds_core::LocationStock) -> Option<Decimal>| {
            let known: Vec<Decimal> = item.stock.iter().filter_map(f).collect();
            (!known.is_empty()).then(|| known.into_iter().sum::<Decimal>())
        };
        assert_eq!(
            item.stock_on_hand,
            sum(|s| s.stock_on_hand),
            "{fixture_name}"
        );
        assert_eq!(
            item.available_stock,
            sum(|s| s.available_stock),
            "{fixture_name}"
        );
        assert_eq!(
            item.actual_available_stock,
            sum(|s| s.actual_available_stock),
            "{fixture_name}"
        );
        assert!(item.stock_on_hand.is_some(), "{fixture_name}");
        // Where the record carries totals, they are kept as given.
        assert!(given.stock_on_hand.is_some(), "{fixture_name}");
    }
    // No totals and no locations (a service): nothing is invented.
    let service = Item::parse(json!({"item_id": "1", "product_type": "service"})).unwrap();
    assert_eq!(service.stock_on_hand, None);
}

#[test]
fn locations_warehouses_and_price_books() {
    let catalog = fixture("catalog.json");

    let loc = Location::parse(catalog["location"].clone()).unwrap();
    assert_eq!(loc.location_id, "4815000000070001");
    assert_eq!(loc.name.as_deref(), Some("Main Warehouse"));
    assert_eq!(loc.source, StockShape::Locations);
    assert_eq!(loc.location_type.as_deref(), Some("general"));
    assert_eq!(loc.parent_location_id, None);
    assert_eq!(loc.country.as_deref(), Some("South Africa"));

    let wh = Location::parse(catalog["warehouse"].clone()).unwrap();
    assert_eq!(wh.location_id, "2000000000102");
    assert_eq!(wh.source, StockShape::Warehouses);
    assert_eq!(wh.name.as_deref(), Some("Overflow"));
    assert_eq!(wh.is_primary, Some(false));
    assert_eq!(
        wh.country.as_deref(),
        Some("Canada"),
        "address \"\" then country"
    );

    let book = PriceBook::parse(catalog["pricebook"].clone()).unwrap();
    assert_eq!(book.pricebook_id, "4815000000080001");
    assert_eq!(book.currency_code.as_deref(), Some("ZAR"));
    assert_eq!(book.pricebook_type.as_deref(), Some("per_item"));
    assert_eq!(book.percentage, None);
    let rates = book.rates.as_ref().unwrap();
    assert_eq!(rates.len(), 2);
    assert_eq!(rates[0].zoho_id(), "4815000000080001:4815000000044208");
    assert_eq!(rates[0].pricebook_rate, Some(dec("5.4")));
    assert_eq!(rates[0].pricebook_discount, None);
    assert_eq!(rates[1].pricebook_rate, Some(dec("10.50")));
    assert_eq!(rates[1].pricebook_discount, Some(dec("5")));
    assert_eq!(
        rates[1].pricebook_item_id.as_deref(),
        Some("4815000000080102")
    );

    let listed = PriceBook::parse(catalog["pricebook_list_entry"].clone()).unwrap();
    assert_eq!(listed.rates, None, "list entries carry no items");
    assert_eq!(listed.percentage, Some(dec("10")));
    assert_eq!(listed.is_increase, Some(true));

    let lookup =
        PriceBookRate::parse("4815000000080001", catalog["pricebookrate_lookup"].clone()).unwrap();
    assert_eq!(lookup.item_id, "4815000000044208");
    assert_eq!(lookup.pricebook_rate, Some(dec("5.4")));
    assert_eq!(lookup.base_rate, Some(dec("6")));
}

#[test]
fn customers_and_vendors() {
    let catalog = fixture("catalog.json");
    let c = Contact::parse(catalog["contact"].clone()).unwrap();
    assert_eq!(c.contact_id, "460000000026049");
    assert_eq!(c.contact_type.as_deref(), Some("customer"));
    assert_eq!(c.customer_sub_type.as_deref(), Some("business"));
    assert_eq!(c.country.as_deref(), Some("U.S.A"), "billing address first");
    assert_eq!(c.credit_limit, Some(dec("5000.00")));
    assert_eq!(c.outstanding_receivable, Some(dec("250")));
    assert_eq!(c.outstanding_payable, None);
    assert_eq!(c.last_modified_time, Some(utc("2013-10-07T12:54:51Z")));

    let v = Contact::parse(catalog["vendor"].clone()).unwrap();
    assert_eq!(v.contact_id, "460000000026777");
    assert_eq!(v.contact_type.as_deref(), Some("vendor"));
    assert_eq!(v.country.as_deref(), Some("Germany"));
    assert_eq!(v.outstanding_payable, Some(dec("1200.5")));
    assert_eq!(v.created_time, Some(utc("2020-01-01T00:00:00Z")));
}

#[test]
fn every_transaction_kind() {
    let t = fixture("transactions.json");
    let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();

    let inv = Document::parse(EntityKind::Invoice, t["invoice"].clone()).unwrap();
    assert_eq!(inv.id, "982000000567114");
    assert_eq!(inv.number.as_deref(), Some("INV-00003"));
    assert_eq!(inv.status.as_deref(), Some("overdue"));
    assert_eq!(inv.date, Some(date("2013-11-17")));
    assert_eq!(inv.due_date, Some(date("2013-12-03")));
    assert_eq!(inv.contact_id.as_deref(), Some("982000000567001"));
    assert_eq!(inv.total, Some(dec("40.6")));
    assert_eq!(inv.balance, Some(dec("40.60")));
    assert_eq!(inv.reference_number, None);
    assert_eq!(inv.line_item_count, Some(1));
    assert!(!inv.needs_detail());

    let hook = Document::parse(EntityKind::Invoice, t["invoice_webhook"].clone()).unwrap();
    assert_eq!(hook.id, "982000000567114", "numeric id from a webhook");
    assert_eq!(hook.balance, Some(dec("0")));
    assert_eq!(hook.line_item_count, None);
    assert!(hook.needs_detail(), "webhooks omit line items");
    assert_eq!(hook.last_modified_time, Some(utc("2013-11-20T03:30:00Z")));

    let so = Document::parse(EntityKind::SalesOrder, t["salesorder"].clone()).unwrap();
    assert_eq!(so.number.as_deref(), Some("SO-00012"));
    assert_eq!(so.due_date, Some(date("2024-02-10")), "shipment_date");
    assert_eq!(so.total, Some(dec("1250")));
    assert_eq!(so.balance, None);
    assert_eq!(so.line_item_count, Some(0));

    let bill = Document::parse(EntityKind::Bill, t["bill"].clone()).unwrap();
    assert_eq!(
        bill.contact_id.as_deref(),
        Some("460000000026777"),
        "vendor_id"
    );
    assert_eq!(bill.contact_name.as_deref(), Some("Paper Supplies Ltd"));
    assert_eq!(bill.reference_number.as_deref(), Some("PO-7"));

    let pay = Document::parse(EntityKind::CustomerPayment, t["customerpayment"].clone()).unwrap();
    assert_eq!(pay.id, "9030000079467");
    assert_eq!(pay.total, Some(dec("450")), "amount");
    assert_eq!(pay.balance, None, "unused_amount \"\"");
    assert_eq!(pay.last_modified_time, None, "payments may lack it");
    assert!(!pay.needs_detail());
    let observed = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let row = VersionedRow::new("org", pay, observed);
    assert_eq!(
        row.version, observed,
        "versioned by observation when Zoho gives no time"
    );

    let cn = Document::parse(EntityKind::CreditNote, t["creditnote"].clone()).unwrap();
    assert_eq!(cn.number.as_deref(), Some("CN-00001"));
    assert_eq!(cn.total, Some(dec("30.00")));
    assert_eq!(cn.created_time, Some(utc("2016-06-05T00:00:00Z")));

    let vp = Document::parse(EntityKind::VendorPayment, t["vendorpayment"].clone()).unwrap();
    assert_eq!(vp.total, Some(dec("500.00")));
    assert_eq!(vp.balance, Some(dec("0")));

    let po = Document::parse(EntityKind::PurchaseOrder, t["purchaseorder"].clone()).unwrap();
    assert_eq!(po.due_date, Some(date("2024-01-12")), "delivery_date");
    assert_eq!(po.line_item_count, Some(2));
    assert_eq!(po.total, Some(dec("2400")));
}

#[test]
fn parse_entity_dispatches_by_kind_and_refuses_derived_kinds() {
    let t = fixture("transactions.json");
    match parse_entity(EntityKind::Bill, t["bill"].clone()).unwrap() {
        AnyEntity::Document(d) => assert_eq!(d.kind, EntityKind::Bill),
        other => panic!("{other:?}"),
    }
    let err = parse_entity(EntityKind::ItemStock, json!({})).unwrap_err();
    assert!(err.problem.contains("item"), "{err}");
    let err = Document::parse(EntityKind::Item, json!({})).unwrap_err();
    assert!(err.problem.contains("not a transaction kind"), "{err}");
}

#[test]
fn bad_records_name_the_field_and_the_record() {
    let cases: Vec<(EntityKind, Value, &str, &str)> = vec![
        (
            EntityKind::Item,
            json!({"name": "x"}),
            "item_id",
            "required",
        ),
        (
            EntityKind::Item,
            json!({"item_id": ""}),
            "item_id",
            "required",
        ),
        (
            EntityKind::Item,
            json!({"item_id": {"a": 1}}),
            "item_id",
            "an object",
        ),
        (
            EntityKind::Item,
            json!({"item_id": "1", "rate": "six"}),
            "rate",
            "\"six\"",
        ),
        (
            EntityKind::Item,
            json!({"item_id": "1", "last_modified_time": "01/02/2024 10:54"}),
            "last_modified_time",
            "01/02/2024",
        ),
        (
            EntityKind::Item,
            json!({"item_id": "1", "locations": [{"location_id": "9", "location_stock_on_hand": "many"}]}),
            "locations[0].location_stock_on_hand",
            "\"many\"",
        ),
        (
            EntityKind::Item,
            json!({"item_id": "1", "warehouses": [{"warehouse_name": "no id"}]}),
            "warehouses[0].warehouse_id",
            "required",
        ),
        (
            EntityKind::Item,
            json!({"item_id": "1", "locations": "none"}),
            "locations",
            "an array",
        ),
        (
            EntityKind::Contact,
            json!({"contact_id": "5", "billing_address": 7}),
            "billing_address",
            "an object",
        ),
        (
            EntityKind::Invoice,
            json!({"invoice_id": "7", "date": "17/11/2013"}),
            "date",
            "17/11/2013",
        ),
        (
            EntityKind::Invoice,
            json!({"invoice_id": "7", "line_items": {}}),
            "line_items",
            "an array",
        ),
        (
            EntityKind::Location,
            json!({"location_name": "x"}),
            "location_id",
            "required",
        ),
        (
            EntityKind::PriceBook,
            json!({"pricebook_id": "3", "pricebook_items": [{"item_id": "1", "pricebook_rate": true}]}),
            "pricebook_items[0].pricebook_rate",
            "a boolean",
        ),
        (
            EntityKind::Bill,
            json!("not an object"),
            "(record)",
            "JSON object",
        ),
        (
            EntityKind::Contact,
            json!({"contact_id": "5", "status": ["a"]}),
            "status",
            "an array",
        ),
        (
            EntityKind::Item,
            json!({"item_id": "1", "track_inventory": "maybe"}),
            "track_inventory",
            "\"maybe\"",
        ),
    ];
    for (kind, record, field, problem) in cases {
        let err =
            parse_entity(kind, record.clone()).expect_err(&format!("{kind} {record} should fail"));
        assert_eq!(err.kind, kind);
        assert_eq!(err.field, field, "{err}");
        assert!(
            err.problem.contains(problem),
            "{err} should mention {problem}"
        );
        let message = err.to_string();
        assert!(message.contains(field), "{message}");
        if let Some(id) = record.get("item_id").or(record.get("invoice_id")) {
            if id.as_str().is_some_and(|s| !s.is_empty()) {
                assert_eq!(err.id.as_deref(), id.as_str(), "{message}");
            }
        }
    }
}

#[test]
fn versioned_rows_hash_canonically_and_prefer_richer_records_at_equal_versions() {
    // A detail GET returns the list fields plus detail-only ones (locations, tax preferences, ...).
    let list_record = fixture("items_list_page.json")["items"][0].clone();
    let mut detail_record = list_record.clone();
    let extra = fixture("item_detail_locations.json")["item"].clone();
    for key in [
        "locations",
        "item_tax_preferences",
        "custom_fields",
        "unit_id",
        "track_inventory",
    ] {
        detail_record[key] = extra[key].clone();
    }
    let list = Item::parse(list_record).unwrap();
    let detail = Item::parse(detail_record).unwrap();
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let a = VersionedRow::new("org", list.clone(), at);
    let b = VersionedRow::new("org", detail, at);
    assert_eq!(a.version, b.version, "same last_modified_time");
    assert!(b.completeness > a.completeness);
    assert!(b.supersedes(&a));
    assert!(!a.supersedes(&b));
    assert!(!a.supersedes(&a.clone()), "same content never supersedes");
    assert_eq!(a.content_hash, content_hash(&list.record));
    let reordered: Value =
        serde_json::from_str(&serde_json::to_string_pretty(&list.record).unwrap()).unwrap();
    assert_eq!(content_hash(&reordered), a.content_hash);
}
