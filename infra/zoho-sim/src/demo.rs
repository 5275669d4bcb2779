//! Deterministic, seeded demo organisations of any size: items (goods with per-location stock and
//! services without stock fields), locations, price books, customers and vendors, and transactions,
//! with realistic names, categories, brands and images. The same spec and seed give the same records.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use serde_json::{json, Value};

use crate::data::{Collection, Image, Org, StockShape};

/// xorshift64*: deterministic, seedable, dependency-free randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is mapped to a fixed non-zero seed).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }

    /// One element of `options`.
    pub fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len())]
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    /// `organization_id`.
    pub org_id: String,
    /// Organisation name.
    pub name: String,
    /// Seed of the generator.
    pub seed: u64,
    /// Number of items (about 8 % are services).
    pub items: usize,
    /// Number of locations (warehouses).
    pub locations: usize,
    /// Stock shape of item details.
    pub stock_shape: StockShape,
    /// Customers.
    pub customers: usize,
    /// Vendors.
    pub vendors: usize,
    /// Invoices.
    pub invoices: usize,
    /// Sales orders.
    pub sales_orders: usize,
    /// Bills.
    pub bills: usize,
    /// Customer payments.
    pub customer_payments: usize,
    /// Credit notes.
    pub credit_notes: usize,
    /// Vendor payments.
    pub vendor_payments: usize,
    /// Purchase orders.
    pub purchase_orders: usize,
}

impl Default for DemoSpec {
    fn default() -> Self {
        DemoSpec {
            org_id: "60001234567".into(),
            name: "Demo Trading (Pty) Ltd".into(),
            seed: 1,
            items: 3000,
            locations: 3,
            stock_shape: StockShape::Locations,
            customers: 250,
            vendors: 50,
            invoices: 400,
            sales_orders: 200,
            bills: 150,
            customer_payments: 250,
            credit_notes: 40,
            vendor_payments: 80,
            purchase_orders: 80,
        }
    }
}

impl DemoSpec {
    /// The default organisation scaled to `items` items (other collections keep their defaults).
    pub fn with_items(items: usize) -> DemoSpec {
        DemoSpec {
            items,
            ..DemoSpec::default()
        }
    }
}

/// India Standard Time: demo timestamps carry `+0530`, one of the offsets Zoho's real responses show.
const IST: FixedOffset = match FixedOffset::east_opt(5 * 3600 + 1800) {
    Some(offset) => offset,
    None => panic!("+05:30 is a valid offset"),
};

/// The time every demo organisation's history ends at (records are modified before it).
pub fn demo_epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

const CATEGORIES: [&str; 8] = [
    "Bags",
    "Drinkware",
    "Umbrellas",
    "Stationery",
    "Kitchen",
    "Garden",
    "Toys",
    "Apparel",
];
const BRANDS: [&str; 7] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella Co",
    "Stark",
    "Wayne",
    "Hooli",
];
const ADJECTIVES: [&str; 10] = [
    "Small", "Large", "Blue", "Recycled", "Premium", "Travel", "Classic", "Compact", "Deluxe",
    "Eco",
];
const NOUNS: [&str; 10] = [
    "Bag", "Mug", "Umbrella", "Notebook", "Spatula", "Trowel", "Yo-yo", "T-shirt", "Bottle", "Lamp",
];
const SERVICES: [&str; 5] = [
    "Gift wrapping",
    "Installation",
    "Engraving",
    "Express delivery",
    "Repair",
];
const CITIES: [(&str, &str); 6] = [
    ("Mumbai", "India"),
    ("Johannesburg", "South Africa"),
    ("Berlin", "Germany"),
    ("Toronto", "Canada"),
    ("Austin", "U.S.A"),
    ("Sydney", "Australia"),
];
const FIRST: [&str; 10] = [
    "Asha", "Ben", "Chen", "Dana", "Emeka", "Farah", "Gus", "Hana", "Ivan", "Jo",
];
const LAST: [&str; 10] = [
    "Patel", "Smith", "Nguyen", "Okafor", "Müller", "Silva", "Kowalski", "Tanaka", "Brown", "Ali",
];
const COMPANY: [&str; 8] = [
    "Traders",
    "& Co",
    "Holdings",
    "Supplies",
    "Retail",
    "Logistics",
    "Imports",
    "Stores",
];
const LOCATION_NAMES: [&str; 6] = [
    "Main Warehouse",
    "Downtown Store",
    "Airport Kiosk",
    "North Depot",
    "Harbour Store",
    "Online Fulfilment",
];

/// Generates a demo organisation from `spec`.
pub fn generate(spec: &DemoSpec) -> Org {
    let mut rng = Rng::new(spec.seed);
    let mut org = Org {
        id: spec.org_id.clone(),
        name: spec.name.clone(),
        currency_code: "INR".into(),
        offset: IST,
        stock_shape: spec.stock_shape,
        profile: crate::data::Profile {
            stock_shape: spec.stock_shape,
            ..Default::default()
        },
        records: BTreeMap::new(),
        images: HashMap::new(),
        next_id: 4_815_000_000_100_000 + spec.seed * 10_000_000,
    };
    let epoch = demo_epoch();
    let history = |rng: &mut Rng| -> (DateTime<Utc>, DateTime<Utc>) {
        let created = epoch - Duration::seconds((rng.unit() * 400.0 * 86400.0) as i64 + 86400);
        let span = (epoch - created).num_seconds().max(1);
        let modified = created + Duration::seconds((rng.unit() * span as f64) as i64);
        (created, modified)
    };

    // Locations.
    let mut location_ids = Vec::new();
    for i in 0..spec.locations.max(1) {
        let id = org.new_id();
        let (city, country) = CITIES[i % CITIES.len()];
        let record = json!({
            "location_id": id,
            "location_name": LOCATION_NAMES[i % LOCATION_NAMES.len()],
            "type": "general",
            "parent_location_id": "",
            "status": "active",
            "is_primary": i == 0,
            "email": format!("location{}@demo.example", i + 1),
            "phone": format!("+91 22 5550 01{:02}", i),
            "address": {"street_address1": format!("{} Depot Road", 10 + i), "street_address2": "", "city": city,
                         "state": "", "state_code": "", "country": country, "zip": format!("4000{:02}", i), "attention": ""},
            "tax_settings_id": "",
            "associated_series_ids": [],
            "is_all_users_selected": true,
            "associated_users": []
        });
        location_ids.push((id.clone(), LOCATION_NAMES[i % LOCATION_NAMES.len()]));
        insert(&mut org, Collection::Locations, id, record);
    }

    // Vendors first (items reference one).
    let mut vendor_ids = Vec::new();
    for i in 0..spec.vendors {
        let id = org.new_id();
        let (created, modified) = history(&mut rng);
        let name = format!("{} {}", rng.pick(&LAST), rng.pick(&COMPANY));
        let record = contact(&org, &mut rng, &id, &name, "vendor", i, created, modified);
        vendor_ids.push((id.clone(), name));
        insert(&mut org, Collection::Contacts, id, record);
    }
    let mut customer_ids = Vec::new();
    for i in 0..spec.customers {
        let id = org.new_id();
        let (created, modified) = history(&mut rng);
        let name = if i.is_multiple_of(3) {
            format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST))
        } else {
            format!("{} {}", rng.pick(&LAST), rng.pick(&COMPANY))
        };
        let record = contact(&org, &mut rng, &id, &name, "customer", i, created, modified);
        customer_ids.push((id.clone(), name));
        insert(&mut org, Collection::Contacts, id, record);
    }

    // Items.
    let mut item_ids = Vec::new();
    for n in 0..spec.items {
        let id = org.new_id();
        let (created, modified) = history(&mut rng);
        let service = n % 13 == 7;
        let vendor =
            (!vendor_ids.is_empty()).then(|| vendor_ids[rng.below(vendor_ids.len())].clone());
        let (record, image) = item(
            &org,
            &mut rng,
            &id,
            n,
            service,
            &location_ids,
            vendor,
            created,
            modified,
        );
        if let Some(image) = image {
            org.images.insert(id.clone(), image);
        }
        let rate = record["rate"].as_f64().unwrap_or(0.0);
        item_ids.push((
            id.clone(),
            record["name"].as_str().unwrap_or("").to_string(),
            rate,
        ));
        insert(&mut org, Collection::Items, id, record);
    }

    // Price books: one per-item book covering most items, one fixed-percentage book.
    let wholesale = org.new_id();
    let pricebook_items: Vec<Value> = item_ids
        .iter()
        .filter(|_| rng.unit() < 0.6)
        .map(|(item_id, _, rate)| {
            let id = org.new_id();
            json!({"item_id": item_id, "pricebook_item_id": id, "pricebook_rate": round2(rate * 0.85),
                   "pricebook_discount": "", "pricing_scheme": "unit", "price_brackets": []})
        })
        .collect();
    let record = json!({
        "pricebook_id": wholesale, "name": "Wholesale", "description": "Trade prices for resellers",
        "currency_id": "4815000000000097", "currency_code": org.currency_code, "decimal_place": 2,
        "is_default": false, "is_increase": false, "percentage": "", "pricebook_type": "per_item",
        "rounding_type": "no_rounding", "sales_or_purchase_type": "sales", "status": "active",
        "pricing_scheme": "unit", "pricebook_items": pricebook_items
    });
    insert(&mut org, Collection::PriceBooks, wholesale, record);
    let retail = org.new_id();
    let record = json!({
        "pricebook_id": retail, "name": "Retail +10%", "description": "",
        "currency_id": "4815000000000097", "currency_code": org.currency_code, "decimal_place": 2,
        "is_default": true, "is_increase": true, "percentage": 10, "pricebook_type": "fixed_percentage",
        "rounding_type": "round_to_dollar_minus_01", "sales_or_purchase_type": "sales", "status": "active",
        "pricing_scheme": "unit"
    });
    insert(&mut org, Collection::PriceBooks, retail, record);

    // Transactions.
    let counts = [
        (Collection::Invoices, spec.invoices),
        (Collection::SalesOrders, spec.sales_orders),
        (Collection::Bills, spec.bills),
        (Collection::CustomerPayments, spec.customer_payments),
        (Collection::CreditNotes, spec.credit_notes),
        (Collection::VendorPayments, spec.vendor_payments),
        (Collection::PurchaseOrders, spec.purchase_orders),
    ];
    for (collection, count) in counts {
        let parties = match collection {
            Collection::Bills | Collection::VendorPayments | Collection::PurchaseOrders => {
                &vendor_ids
            }
            _ => &customer_ids,
        };
        if parties.is_empty() {
            continue;
        }
        for i in 0..count {
            let id = org.new_id();
            let (created, modified) = history(&mut rng);
            let party = parties[rng.below(parties.len())].clone();
            let record = document(
                &org, &mut rng, collection, &id, i, &party, &item_ids, created, modified,
            );
            insert(&mut org, collection, id, record);
        }
    }
    org
}

fn insert(org: &mut Org, c: Collection, id: String, record: Value) {
    org.records.entry(c).or_default().insert(id, record);
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[allow(clippy::too_many_arguments)]
fn contact(
    org: &Org,
    rng: &mut Rng,
    id: &str,
    name: &str,
    kind: &str,
    i: usize,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
) -> Value {
    let (city, country) = CITIES[rng.below(CITIES.len())];
    let first = rng.pick(&FIRST);
    let last = rng.pick(&LAST);
    let receivable = if kind == "customer" {
        round2(rng.unit() * 5000.0)
    } else {
        0.0
    };
    let payable = if kind == "vendor" {
        round2(rng.unit() * 8000.0)
    } else {
        0.0
    };
    json!({
        "contact_id": id,
        "contact_name": name,
        "customer_name": name,
        "vendor_name": name,
        "company_name": if i.is_multiple_of(3) { String::new() } else { name.to_string() },
        "contact_type": kind,
        "customer_sub_type": if i.is_multiple_of(3) { "individual" } else { "business" },
        "status": if i % 17 == 5 { "inactive" } else { "active" },
        "payment_terms": 15,
        "payment_terms_label": "Net 15",
        "currency_id": "4815000000000097",
        "currency_code": org.currency_code,
        "outstanding_receivable_amount": receivable,
        "outstanding_payable_amount": payable,
        "unused_credits_receivable_amount": 0,
        "unused_credits_payable_amount": 0,
        "first_name": first,
        "last_name": last,
        "email": format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i),
        "phone": format!("+91 98{:08}", i),
        "mobile": "",
        "website": "",
        "portal_status": "disabled",
        "language_code": "en",
        "source": "user",
        "has_attachment": false,
        "custom_fields": [],
        "credit_limit": if kind == "customer" { json!(round2(1000.0 + rng.unit() * 20000.0)) } else { json!("") },
        "billing_address": {"attention": format!("{first} {last}"), "address": format!("{} Main Street", 1 + i % 200),
                            "street2": "", "city": city, "state": "", "zip": format!("{:06}", 100000 + i), "country": country, "fax": ""},
        "shipping_address": {"attention": "", "address": "", "street2": "", "city": city, "state": "", "zip": "", "country": country, "fax": ""},
        "contact_persons": [{"contact_person_id": format!("{id}1"), "first_name": first, "last_name": last, "is_primary_contact": true}],
        "created_time": org.zoho_time(created),
        "last_modified_time": org.zoho_time(modified)
    })
}

#[allow(clippy::too_many_arguments)]
fn item(
    org: &Org,
    rng: &mut Rng,
    id: &str,
    n: usize,
    service: bool,
    locations: &[(String, &str)],
    vendor: Option<(String, String)>,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
) -> (Value, Option<Image>) {
    let category = n % CATEGORIES.len();
    let name = if service {
        format!("{} {}", rng.pick(&SERVICES), n)
    } else {
        format!("{} {} {}", rng.pick(&ADJECTIVES), rng.pick(&NOUNS), n)
    };
    let rate = round2(20.0 + rng.unit() * 980.0);
    let has_image = !service && !n.is_multiple_of(5);
    let image_id = if has_image {
        format!("{id}9")
    } else {
        String::new()
    };
    let image_type = if n.is_multiple_of(2) { "jpg" } else { "png" };
    let mut record = json!({
        "item_id": id,
        "name": name,
        "item_name": name,
        "unit": if service { "hrs" } else { "pcs" },
        "unit_id": "4815000000003001",
        "status": if n % 19 == 3 { "inactive" } else { "active" },
        "source": "user",
        "description": format!("{name}. Durable, boxed, ships in 2 days."),
        "rate": rate,
        "purchase_rate": if service { json!("") } else { json!(round2(rate * 0.6)) },
        "tax_id": "4815000000050001",
        "tax_name": "GST18",
        "tax_percentage": 18,
        "account_id": "4815000000000388",
        "account_name": "Sales",
        "purchase_account_id": if service { "" } else { "4815000000000509" },
        "purchase_account_name": if service { "" } else { "Cost of Goods Sold" },
        "item_type": if service { "sales" } else { "inventory" },
        "product_type": if service { "service" } else { "goods" },
        "is_taxable": true,
        "sku": if service { String::new() } else { format!("SKU-{n:06}") },
        "upc": "",
        "ean": if service { String::new() } else { format!("890{n:010}") },
        "isbn": "",
        "part_number": "",
        "brand": if service { "" } else { rng.pick(&BRANDS) },
        "manufacturer": if service { "" } else { rng.pick(&BRANDS) },
        "category_id": format!("48150000000310{category:02}"),
        "category_name": CATEGORIES[category],
        "image_id": image_id,
        "image_document_id": image_id,
        "image_name": if has_image { format!("item_{n}.{image_type}") } else { String::new() },
        "image_type": if has_image { image_type } else { "" },
        "has_attachment": false,
        "is_returnable": !service,
        "is_combo_product": false,
        "is_linked_with_zohocrm": false,
        "zcrm_product_id": "",
        "length": "", "width": "", "height": "", "weight": "",
        "weight_unit": "kg", "dimension_unit": "cm",
        "item_tax_preferences": [{"tax_id": "4815000000050001", "tax_name": "GST18", "tax_percentage": 18, "tax_specification": "intra"}],
        "custom_fields": [{"customfield_id": "4815000000060001", "label": "Colour", "value": rng.pick(&["Red", "Blue", "Green", "Black"])}],
        "pricebook_rate": rate,
        "created_time": org.zoho_time(created),
        "last_modified_time": org.zoho_time(modified)
    });
    if let Some((vendor_id, vendor_name)) = vendor {
        record["vendor_id"] = json!(vendor_id);
        record["vendor_name"] = json!(vendor_name);
    }
    if !service {
        let stock: Vec<f64> = locations.iter().map(|_| rng.below(120) as f64).collect();
        let committed: Vec<f64> = stock.iter().map(|s| (s * 0.1).floor()).collect();
        let total: f64 = stock.iter().sum();
        let committed_total: f64 = committed.iter().sum();
        record["track_inventory"] = json!(true);
        record["reorder_level"] = if n.is_multiple_of(3) {
            json!("")
        } else {
            json!(10.0)
        };
        record["stock_on_hand"] = json!(total);
        record["available_stock"] = json!(total);
        record["actual_available_stock"] = json!(total - committed_total);
        record["locations"] = Value::Array(
            locations
                .iter()
                .enumerate()
                .map(|(i, (location_id, location_name))| {
                    location_stock(location_id, location_name, i == 0, stock[i], committed[i])
                })
                .collect(),
        );
    } else {
        record["track_inventory"] = json!(false);
    }
    let image = has_image.then(|| image_bytes(rng, image_type));
    (record, image)
}

/// One element of an item's `locations[]` (quantities as six-decimal strings, as Zoho sends them).
pub fn location_stock(
    location_id: &str,
    location_name: &str,
    primary: bool,
    stock: f64,
    committed: f64,
) -> Value {
    let q = |x: f64| format!("{x:.6}");
    json!({
        "location_id": location_id,
        "location_name": location_name,
        "status": "active",
        "is_primary": primary,
        "location_stock_on_hand": q(stock),
        "location_available_stock": q(stock),
        "location_actual_available_stock": q(stock - committed),
        "location_committed_stock": q(committed),
        "location_actual_committed_stock": q(committed),
        "location_available_for_sale_stock": q(stock - committed),
        "location_actual_available_for_sale_stock": q(stock - committed),
        "location_quantity_in_transit": ""
    })
}

fn image_bytes(rng: &mut Rng, image_type: &str) -> Image {
    let len = 600 + rng.below(1400);
    let mut bytes = Vec::with_capacity(len + 16);
    let content_type = if image_type == "png" {
        bytes.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        "image/png"
    } else {
        bytes.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
        "image/jpeg"
    };
    bytes.extend((0..len).map(|_| (rng.next_u64() & 0xFF) as u8));
    if image_type != "png" {
        bytes.extend_from_slice(&[0xFF, 0xD9]);
    }
    Image {
        content_type: content_type.into(),
        bytes,
    }
}

#[allow(clippy::too_many_arguments)]
fn document(
    org: &Org,
    rng: &mut Rng,
    collection: Collection,
    id: &str,
    i: usize,
    party: &(String, String),
    items: &[(String, String, f64)],
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
) -> Value {
    let date = created.with_timezone(&org.offset).date_naive();
    let lines: Vec<Value> = (0..1 + rng.below(4))
        .filter(|_| !items.is_empty())
        .map(|line| {
            let (item_id, name, rate) = &items[rng.below(items.len())];
            let quantity = 1 + rng.below(10);
            json!({"line_item_id": format!("{id}{line}"), "item_id": item_id, "name": name,
                   "quantity": quantity as f64, "rate": rate, "item_total": round2(rate * quantity as f64)})
        })
        .collect();
    let total: f64 = round2(lines.iter().filter_map(|l| l["item_total"].as_f64()).sum());
    let paid = rng.unit() < 0.5;
    let balance = if paid { 0.0 } else { total };
    let due = date + Duration::days(15);
    let (prefix, number_field, party_kind) = match collection {
        Collection::Invoices => ("INV", "invoice_number", "customer"),
        Collection::SalesOrders => ("SO", "salesorder_number", "customer"),
        Collection::Bills => ("BILL", "bill_number", "vendor"),
        Collection::CustomerPayments => ("", "payment_number", "customer"),
        Collection::CreditNotes => ("CN", "creditnote_number", "customer"),
        Collection::VendorPayments => ("", "payment_number", "vendor"),
        _ => ("PO", "purchaseorder_number", "vendor"),
    };
    let number = if prefix.is_empty() {
        format!("{}", i + 1)
    } else {
        format!("{prefix}-{:05}", i + 1)
    };
    let mut record = json!({
        collection.spec().id_field: id,
        number_field: number,
        "date": date.format("%Y-%m-%d").to_string(),
        format!("{party_kind}_id"): party.0,
        format!("{party_kind}_name"): party.1,
        "currency_code": org.currency_code,
        "reference_number": if i.is_multiple_of(4) { format!("REF-{i}") } else { String::new() },
        "created_time": org.zoho_time(created),
        "last_modified_time": org.zoho_time(modified)
    });
    match collection {
        Collection::CustomerPayments | Collection::VendorPayments => {
            let amount = round2(50.0 + rng.unit() * 2000.0);
            record["amount"] = json!(amount);
            record["payment_mode"] = json!(rng.pick(&["cash", "bank transfer", "creditcard"]));
            if collection == Collection::CustomerPayments {
                record["unused_amount"] = if i.is_multiple_of(5) {
                    json!(round2(amount * 0.1))
                } else {
                    json!("")
                };
                record["invoices"] = json!([]);
            } else {
                record["balance"] = json!(0);
                record["bills"] = json!([]);
            }
        }
        _ => {
            record["total"] = json!(total);
            record["sub_total"] = json!(total);
            record["line_items"] = Value::Array(lines);
            record["notes"] = json!("Thanks for your business.");
            record["terms"] = json!("");
            let status = match collection {
                Collection::Invoices => {
                    if paid {
                        "paid"
                    } else {
                        rng.pick(&["sent", "overdue", "draft"])
                    }
                }
                Collection::SalesOrders => rng.pick(&["confirmed", "draft", "closed"]),
                Collection::Bills => {
                    if paid {
                        "paid"
                    } else {
                        "open"
                    }
                }
                Collection::CreditNotes => rng.pick(&["open", "closed"]),
                _ => rng.pick(&["issued", "billed", "draft"]),
            };
            record["status"] = json!(status);
            match collection {
                Collection::Invoices | Collection::Bills => {
                    record["balance"] = json!(balance);
                    record["due_date"] = json!(due.format("%Y-%m-%d").to_string());
                }
                Collection::CreditNotes => record["balance"] = json!(balance),
                Collection::SalesOrders => {
                    record["shipment_date"] = json!(due.format("%Y-%m-%d").to_string())
                }
                _ => record["delivery_date"] = json!(due.format("%Y-%m-%d").to_string()),
            }
        }
    }
    record
}
