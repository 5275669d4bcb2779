//! Shared helpers for TDS's integration tests and benchmarks: the simulator's deterministic random
//! generator and builders of realistic Zoho records (shaped like real Inventory responses, quirks included).
#![recursion_limit = "256"]

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tds_core::{Item, VersionedRow};

pub use tds_zoho_sim::Rng;

/// Connection tests (one round trip each) made by benchmark pools: as the store's production pool,
/// only connections idle past `tds_store::PING_IDLE_AFTER` are tested.
pub static ACQUIRES: std::sync::LazyLock<std::sync::Arc<std::sync::atomic::AtomicUsize>> =
    std::sync::LazyLock::new(Default::default);

/// A fixed base time for sample data.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .expect("valid date")
}

/// Formats a time as Zoho does (`2026-01-05T11:00:00+0200`), in a +02:00 zone like a real org.
pub fn zoho_time(t: DateTime<Utc>) -> String {
    let offset = chrono::FixedOffset::east_opt(2 * 3600).expect("+02:00 is a valid offset");
    t.with_timezone(&offset)
        .format("%Y-%m-%dT%H:%M:%S%z")
        .to_string()
}

/// Item id of sample item number `n`.
pub fn item_id(n: usize) -> String {
    format!("48150000000{:05}", n)
}

/// A realistic Inventory item detail record (about 2 KB of JSON): string ids, six-decimal numbers as
/// numbers and as strings, `""` for unset numbers, `+0200` offsets, three locations with stock.
/// `revision` changes the rate, stock and description so versions of the same item differ.
pub fn sample_item(rng: &mut Rng, n: usize, revision: u32, modified: DateTime<Utc>) -> Value {
    let categories = [
        "Bags",
        "Mugs",
        "Umbrellas",
        "Stationery",
        "Kitchen",
        "Garden",
        "Toys",
    ];
    let brands = ["Acme", "Globex", "Initech", "Umbrella Co", "Stark", "Wayne"];
    let adjectives = [
        "Small", "Large", "Blue", "Recycled", "Premium", "Travel", "Classic",
    ];
    let nouns = [
        "Bag", "Mug", "Umbrella", "Notebook", "Spatula", "Trowel", "Yo-yo",
    ];
    let rate = 5.0 + (n % 97) as f64 + f64::from(revision) * 0.25;
    let stock: Vec<f64> = (0..3).map(|_| (rng.below(200)) as f64).collect();
    let total: f64 = stock.iter().sum();
    let locations: Vec<Value> = ["Main Warehouse", "Downtown Store", "Airport Kiosk"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({
                "location_id": format!("481500000007000{}", i + 1),
                "location_name": name,
                "status": "active",
                "is_primary": i == 0,
                "location_stock_on_hand": format!("{:.6}", stock[i]),
                "location_available_stock": format!("{:.6}", stock[i]),
                "location_actual_available_stock": format!("{:.6}", stock[i]),
                "location_committed_stock": "0.000000",
                "location_actual_committed_stock": "0.000000",
                "location_available_for_sale_stock": format!("{:.6}", stock[i]),
                "location_actual_available_for_sale_stock": format!("{:.6}", stock[i]),
                "location_quantity_in_transit": ""
            })
        })
        .collect();
    let name = format!("{} {} {n}", rng.pick(&adjectives), rng.pick(&nouns));
    json!({
        "item_id": item_id(n),
        "name": name,
        "item_name": name,
        "unit": "pcs",
        "unit_id": "4815000000003001",
        "status": if n.is_multiple_of(11) { "inactive" } else { "active" },
        "source": "user",
        "description": format!("{name}, revision {revision}. Durable, boxed, ships in 2 days."),
        "rate": rate,
        "purchase_rate": format!("{:.6}", rate * 0.6),
        "tax_id": "4815000000050001",
        "tax_name": "VAT",
        "tax_percentage": 15,
        "account_id": "4815000000000388",
        "account_name": "Sales",
        "purchase_account_id": "4815000000000509",
        "purchase_account_name": "Cost of Goods Sold",
        "inventory_account_id": "4815000000000612",
        "item_type": "inventory",
        "product_type": "goods",
        "can_be_sold": true,
        "can_be_purchased": true,
        "track_inventory": true,
        "is_taxable": true,
        "sku": format!("SKU-{n:06}"),
        "upc": "",
        "ean": format!("600{:010}", n),
        "isbn": "",
        "part_number": format!("PN-{n}"),
        "reorder_level": if n.is_multiple_of(3) { json!("") } else { json!(10.0) },
        "stock_on_hand": total,
        "available_stock": total,
        "actual_available_stock": total,
        "brand": rng.pick(&brands),
        "manufacturer": rng.pick(&brands),
        "category_id": format!("48150000000310{:02}", n % 7),
        "category_name": categories[n % 7],
        "image_id": if n.is_multiple_of(4) { String::new() } else { format!("48150000004{:05}", n) },
        "image_name": if n.is_multiple_of(4) { String::new() } else { format!("item_{n}.jpg") },
        "image_type": "jpg",
        "vendor_id": "4815000000049001",
        "vendor_name": "Paper Supplies Ltd",
        "is_returnable": true,
        "is_combo_product": false,
        "length": "10", "width": "5", "height": "2", "weight": "0.3",
        "weight_unit": "kg", "dimension_unit": "cm",
        "item_tax_preferences": [{"tax_id": "4815000000050001", "tax_name": "VAT", "tax_percentage": 15, "tax_specification": "intra"}],
        "custom_fields": [{"customfield_id": "4815000000060001", "label": "Colour", "value": rng.pick(&["Red", "Blue", "Green"])}],
        "created_time": zoho_time(base_time() - Duration::days(30)),
        "last_modified_time": zoho_time(modified),
        "locations": locations
    })
}

/// Parses and versions a sample record for `org` (observed now).
pub fn versioned_item(org: &str, record: Value) -> VersionedRow<Item> {
    let item = Item::parse(record).unwrap_or_else(|e| panic!("sample item must parse: {e}"));
    VersionedRow::new(org, item, Utc::now())
}

/// A database of its own for a benchmark: created (and migrated) on the server `DATABASE_URL` names
/// (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped by [`BenchDatabase::drop_now`].
pub struct BenchDatabase {
    /// Pool on the new database.
    pub pool: PgPool,
    admin: PgConnection,
    name: String,
}

impl BenchDatabase {
    /// Creates `tds_bench_<pid>` and applies the migrations; `connections` sizes the pool.
    pub async fn create(connections: u32) -> BenchDatabase {
        let base_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("tds_bench_{}", std::process::id());
        let mut admin = PgConnection::connect(&base_url)
            .await
            .expect("DATABASE_URL must reach PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the benchmark database");
        let scheme_end = base_url.find("://").map_or(0, |i| i + 3);
        let path_start = base_url[scheme_end..]
            .find('/')
            .map(|i| scheme_end + i)
            .expect("DATABASE_URL must name a database");
        let query = base_url[path_start..]
            .find('?')
            .map(|q| &base_url[path_start + q..])
            .unwrap_or("");
        let url = format!("{}/{name}{query}", &base_url[..path_start]);
        let acquires = ACQUIRES.clone();
        // As tds_store::Store::connect_lazy: a connection is tested only after it sat idle.
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let acquires = acquires.clone();
                Box::pin(async move {
                    if tds_store::needs_ping(&meta) {
                        acquires.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(
                url.parse::<sqlx::postgres::PgConnectOptions>()
                    .expect("a PostgreSQL URL")
                    .options([("plan_cache_mode", tds_store::PLAN_CACHE_MODE)]),
            )
            .await
            .expect("connect to the benchmark database");
        tds_store::Store::from_pool(pool.clone())
            .migrate()
            .await
            .expect("migrate the benchmark database");
        BenchDatabase { pool, admin, name }
    }

    /// Closes the pool and drops the database.
    pub async fn drop_now(mut self) {
        self.pool.close().await;
        let _ = sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut self.admin)
            .await;
    }
}

/// A `moto_server` emulating AWS for one test, on a free port; killed when dropped.
pub struct Moto {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts `moto_server` from `PATH` (the test command puts its venv there) and waits until it answers.
    pub async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server must be on PATH: run the tests with infra/scripts/test.sh, or pip install 'moto[server]'");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Moto { child, endpoint };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto_server did not start listening on port {port}");
    }

    /// SDK configuration pointing at this server (region us-east-1, dummy credentials).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Validates `detail` against a schema in events/schemas with a JSON Schema 2020-12 validator (types,
/// required fields, enums, formats as annotations, no undocumented field where the schema says so);
/// panics with every violation and where it is.
pub fn conforms(schema_file: &str, detail: &Value) {
    let path = format!(
        "{}/../events/schemas/{schema_file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_str(&text).expect("schemas are JSON");
    conforms_to(schema_file, &schema, detail);
}

/// Validates `instance` against `schema` (JSON Schema 2020-12, what `what` names in the message);
/// panics with every violation and where it is.
pub fn conforms_to(what: &str, schema: &Value, instance: &Value) {
    let validator = jsonschema::draft202012::new(schema)
        .unwrap_or_else(|e| panic!("{what} is not a valid JSON Schema: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: {instance} does not conform: {errors:?}"
    );
}

/// A Zoho client for one organisation of a simulator at `base_url` (accounts server and API domain),
/// with the simulator's default OAuth client.
pub fn sim_client(
    org_id: &str,
    base_url: &str,
    pool: PgPool,
    settings: tds_zoho::ClientSettings,
) -> tds_zoho::ZohoClient {
    let c = tds_zoho_sim::ClientCredentials::default();
    let credentials = tds_zoho::StaticCredentials::single(
        org_id,
        tds_zoho::Credentials {
            client_id: c.client_id,
            client_secret: tds_zoho::SecretString::new(c.client_secret),
            refresh_token: tds_zoho::SecretString::new(c.refresh_token),
        },
    );
    tds_zoho::ZohoClient::new(
        vec![tds_zoho::OrgConfig::at(org_id, base_url, base_url)],
        std::sync::Arc::new(credentials),
        pool,
        settings,
    )
    .expect("a client for the simulator")
}

/// Client settings for tests: quick retries, and a budget as large as the simulator allows.
pub fn test_client_settings(per_minute_limit: u32) -> tds_zoho::ClientSettings {
    tds_zoho::ClientSettings {
        retry: tds_zoho::RetryPolicy {
            max_attempts: 2,
            base_delay: std::time::Duration::from_millis(5),
            max_delay: std::time::Duration::from_millis(10),
            request_timeout: std::time::Duration::from_secs(10),
        },
        budget: tds_zoho::BudgetSettings {
            per_minute_limit,
            ..tds_zoho::BudgetSettings::default()
        },
        ..tds_zoho::ClientSettings::default()
    }
}

/// A benchmark setting from the environment, or `default` when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's peak resident memory (VmHWM), in MB; 0 where /proc is unavailable.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The demo organisation of `items` items served by a simulator allowing `per_window` requests per
/// `window`, and a client for it whose own budget is the same limit over `window + window / 60` (its
/// default guard: 61 s for Zoho's 60 s). Returns the simulator, the client and the organisation id.
pub async fn paced_sim_client(
    items: usize,
    per_window: u32,
    window: std::time::Duration,
    pool: PgPool,
) -> (tds_zoho_sim::RunningSimulator, tds_zoho::ZohoClient, String) {
    let spec = tds_zoho_sim::DemoSpec::with_items(items);
    let config = tds_zoho_sim::SimConfig {
        per_minute_limit: per_window,
        window,
        ..tds_zoho_sim::SimConfig::default()
    };
    let sim = tds_zoho_sim::Simulator::new(
        config,
        vec![tds_zoho_sim::generate(&spec)],
        tds_zoho_sim::ClientCredentials::default(),
    )
    .serve_local()
    .await
    .expect("the simulator serves");
    let settings = tds_zoho::ClientSettings {
        budget: tds_zoho::BudgetSettings {
            per_minute_limit: per_window,
            window: window + window / 60,
            ..tds_zoho::BudgetSettings::default()
        },
        ..tds_zoho::ClientSettings::default()
    };
    let client = sim_client(&spec.org_id, &sim.base_url, pool, settings);
    (sim, client, spec.org_id)
}

/// Wall time over the rate limit's lower bound, as printed by the paced benchmarks; `n/a` when the
/// work fits in one window (the bound is zero).
pub fn bound_ratio(wall: std::time::Duration, bound: std::time::Duration) -> String {
    if bound.is_zero() {
        "n/a (within one window)".into()
    } else {
        format!("{:.3}", wall.as_secs_f64() / bound.as_secs_f64())
    }
}

/// Appends one row's typed columns to a COPY text line.
struct CopyLine<'a> {
    line: &'a mut String,
    names: Option<&'a mut Vec<&'static str>>,
}

impl CopyLine<'_> {
    fn field(&mut self, name: &'static str, value: Option<String>) {
        if let Some(names) = self.names.as_mut() {
            names.push(name);
        }
        self.line.push('\t');
        match value {
            None => self.line.push_str("\\N"),
            Some(v) => escape_into(self.line, &v),
        }
    }
}

impl tds_core::ColumnSink for CopyLine<'_> {
    fn text(&mut self, name: &'static str, value: Option<&str>) {
        self.field(name, value.map(str::to_string));
    }
    fn decimal(&mut self, name: &'static str, value: Option<rust_decimal::Decimal>) {
        self.field(name, value.map(|d| d.to_string()));
    }
    fn integer(&mut self, name: &'static str, value: Option<i64>) {
        self.field(name, value.map(|d| d.to_string()));
    }
    fn boolean(&mut self, name: &'static str, value: Option<bool>) {
        self.field(name, value.map(|d| d.to_string()));
    }
    fn timestamp(&mut self, name: &'static str, value: Option<DateTime<Utc>>) {
        self.field(name, value.map(|d| d.to_rfc3339()));
    }
    fn date(&mut self, name: &'static str, value: Option<chrono::NaiveDate>) {
        self.field(name, value.map(|d| d.to_string()));
    }
}

/// Appends `s` to `out` escaped for COPY's text format.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The COPY payload for `rows` (text format, the store's common columns then the kind's typed
/// columns) and its column list: the baseline the benchmarks compare TDS's writes with.
pub fn copy_payload<E: tds_core::Entity>(rows: &[VersionedRow<E>]) -> (String, Vec<&'static str>) {
    let mut out = String::with_capacity(rows.len() * 3000);
    let mut names = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        escape_into(&mut out, &row.org_id);
        out.push('\t');
        escape_into(&mut out, &row.zoho_id);
        let _ = std::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "\t{}\t\\\\x{}\t{}\t",
                row.version.to_rfc3339(),
                hex(&row.content_hash),
                row.completeness
            ),
        );
        escape_into(&mut out, &row.entity.record().to_string());
        let mut sink = CopyLine {
            line: &mut out,
            names: (i == 0).then_some(&mut names),
        };
        row.entity.write_columns(&mut sink);
        out.push('\n');
    }
    (out, names)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
        s
    })
}
