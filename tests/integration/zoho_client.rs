//! The Zoho client against the simulator over real HTTP, with its token cache and rate budget in a
//! real PostgreSQL: every error path, single-flight refresh, the shared budget across two clients,
//! 429 and daily-quota handling, both stock shapes, both customer-payment list keys, pagination counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tds_core::{AnyEntity, EntityKind, StockShape as CoreShape};
use tds_zoho::{
    BudgetSettings, ClientSettings, Credentials, OrgConfig, Priority, Product, RetryPolicy,
    SecretString, StaticCredentials, ZohoClient, ZohoError,
};
use tds_zoho_sim::{
    ClientCredentials, DemoSpec, RunningSimulator, SimConfig, Simulator, StockShape,
};

const ORG: &str = "60001234567";

fn spec(items: usize, shape: StockShape) -> DemoSpec {
    DemoSpec {
        items,
        stock_shape: shape,
        customers: 10,
        vendors: 3,
        invoices: 5,
        sales_orders: 2,
        bills: 2,
        customer_payments: 7,
        credit_notes: 1,
        vendor_payments: 1,
        purchase_orders: 1,
        ..DemoSpec::default()
    }
}

fn fast_settings() -> ClientSettings {
    ClientSettings {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            request_timeout: Duration::from_secs(10),
        },
        ..ClientSettings::default()
    }
}

async fn sim(items: usize, shape: StockShape, config: SimConfig) -> RunningSimulator {
    Simulator::new(
        config,
        vec![tds_zoho_sim::generate(&spec(items, shape))],
        ClientCredentials::default(),
    )
    .serve_local()
    .await
    .unwrap()
}

fn client_for(sim: &RunningSimulator, pool: PgPool, settings: ClientSettings) -> ZohoClient {
    client_with(
        sim,
        pool,
        settings,
        ClientCredentials::default().refresh_token,
    )
}

fn client_with(
    sim: &RunningSimulator,
    pool: PgPool,
    settings: ClientSettings,
    refresh_token: String,
) -> ZohoClient {
    client_at(&sim.base_url, pool, settings, refresh_token)
}

fn client_at(
    base_url: &str,
    pool: PgPool,
    settings: ClientSettings,
    refresh_token: String,
) -> ZohoClient {
    let c = ClientCredentials::default();
    let credentials = StaticCredentials::single(
        ORG,
        Credentials {
            client_id: c.client_id,
            client_secret: SecretString::new(c.client_secret),
            refresh_token: SecretString::new(refresh_token),
        },
    );
    ZohoClient::new(
        vec![OrgConfig::at(ORG, base_url, base_url)],
        Arc::new(credentials),
        pool,
        settings,
    )
    .unwrap()
}

async fn second_pool(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(3)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap()
}

async fn items_page(client: &ZohoClient) -> Result<serde_json::Value, ZohoError> {
    client
        .get_json(
            ORG,
            Product::Inventory,
            "items",
            &[("per_page", "5")],
            Priority::Poll,
        )
        .await
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn fifty_concurrent_calls_share_one_token_refresh(pool: PgPool) {
    let sim = sim(20, StockShape::Locations, SimConfig::default()).await;
    let client = Arc::new(client_for(&sim, pool.clone(), fast_settings()));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            items_page(&client).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(sim.sim.stats().token_refreshes, 1);

    // A second process (own memory, own pool) reuses the token from the shared cache.
    let other = client_for(&sim, second_pool(&pool).await, fast_settings());
    items_page(&other).await.unwrap();
    assert_eq!(sim.sim.stats().token_refreshes, 1);

    // The cached token never shows in the database's error column or in Debug output.
    let stored: (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT access_token, last_error FROM tds_token_cache WHERE credential_id = $1",
    )
    .bind(ORG)
    .fetch_one(&pool)
    .await
    .unwrap();
    let token = stored.0.unwrap();
    assert!(stored.1.is_none());
    assert_eq!(format!("{:?}", SecretString::new(token.clone())), "***");
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn an_expired_token_is_refreshed_once_then_a_clear_error(pool: PgPool) {
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    let client = Arc::new(client_for(&sim, pool.clone(), fast_settings()));
    items_page(&client).await.unwrap();
    sim.sim.expire_tokens();
    // 20 callers hit 401 code 57 with the dead token: exactly one refresh serves them all.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            items_page(&client).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(sim.sim.stats().token_refreshes, 2);

    // Tokens that die at once (revoked, or missing scope): one refresh, then Unauthorized.
    sim.sim.configure(|c| c.token_ttl_secs = 0);
    sim.sim.expire_tokens();
    let err = items_page(&client).await.unwrap_err();
    assert!(
        matches!(err, ZohoError::Unauthorized { code: 57, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("revoked or lack the scope"),
        "{err}"
    );
    assert!(
        err.is_retriable(),
        "auth failures are delayed and retried by the queue, not dead-lettered at once"
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_revoked_grant_costs_one_refresh_not_one_per_call(pool: PgPool) {
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    let client = Arc::new(client_for(&sim, pool.clone(), fast_settings()));
    items_page(&client).await.unwrap();
    assert_eq!(sim.sim.stats().token_refreshes, 1);
    // The grant loses its scope: every call is refused, whatever the token.
    sim.sim.configure(|c| c.deny_tokens = true);
    let err = items_page(&client).await.unwrap_err();
    assert!(
        matches!(err, ZohoError::Unauthorized { code: 57, .. }),
        "{err}"
    );
    assert_eq!(
        sim.sim.stats().token_refreshes,
        2,
        "refreshed once, then failed"
    );
    // Fifty more calls from many tasks (webhooks of a kind the scope lacks): no refresh at all, so
    // Zoho's 10-per-10-minutes allowance stays untouched for the endpoints that still work.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move { items_page(&client).await }));
    }
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(
            matches!(err, ZohoError::Unauthorized { code: 57, .. }),
            "{err}"
        );
    }
    assert_eq!(sim.sim.stats().token_refreshes, 2);
    // Another process sees the same refusal in the shared cache.
    let other = client_for(&sim, pool.clone(), fast_settings());
    assert!(matches!(
        items_page(&other).await.unwrap_err(),
        ZohoError::Unauthorized { code: 57, .. }
    ));
    assert_eq!(sim.sim.stats().token_refreshes, 2);

    // The cool-down backs off from seconds: one refusal so far, so 5 s, not ten minutes.
    let (refusals, cooling): (i32, bool) = sqlx::query_as(
        "SELECT refusals, refused_at > clock_timestamp() - interval '5 seconds' FROM tds_token_cache",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((refusals, cooling), (1, true));

    // Re-authorised, and the cool-down over: one caller refreshes again and all is well.
    sim.sim.configure(|c| c.deny_tokens = false);
    sqlx::query("UPDATE tds_token_cache SET refused_at = refused_at - interval '6 seconds'")
        .execute(&pool)
        .await
        .unwrap();
    sim.sim.expire_tokens();
    items_page(&client).await.unwrap();
    items_page(&other).await.unwrap();
    assert_eq!(sim.sim.stats().token_refreshes, 3);
    // The first success clears the refusals: a later denial starts again from 5 s.
    let refusals: i32 = sqlx::query_scalar("SELECT refusals FROM tds_token_cache")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(refusals, 0);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn refused_and_rate_limited_refreshes(pool: PgPool) {
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    let bad = client_with(&sim, pool.clone(), fast_settings(), "1000.wrong".into());
    let err = items_page(&bad).await.unwrap_err();
    assert!(
        matches!(&err, ZohoError::TokenRefused { error, .. } if error == "invalid_code"),
        "{err}"
    );
    assert!(!err.to_string().contains("1000.wrong"), "{err}");
    assert!(
        !err.to_string().contains("simulator-client-secret"),
        "{err}"
    );

    // Our own guard refuses before Zoho's 10-per-10-minutes lockout.
    let mut settings = fast_settings();
    settings.tokens.refresh_limit = 3;
    let client = client_for(&sim, pool.clone(), settings);
    sim.sim.configure(|c| c.token_ttl_secs = 0);
    // The failed attempt above counted once; two more refreshes exhaust 3.
    let _ = items_page(&client).await;
    let err = items_page(&client).await.unwrap_err();
    assert!(
        matches!(err, ZohoError::TokenRefreshLimited { .. }),
        "{err}"
    );
    assert!(err.is_retriable());

    // Zoho's own lockout (400 Access Denied) is recognised.
    let sim2 = tds_zoho_sim::Simulator::demo(&spec(5, StockShape::Locations));
    sim2.configure(|c| {
        c.refresh_limit = 0;
    });
    let sim2 = sim2.serve_local().await.unwrap();
    let pool2 = second_pool(&pool).await;
    sqlx::query("DELETE FROM tds_token_cache")
        .execute(&pool2)
        .await
        .unwrap();
    let client = client_for(&sim2, pool2, fast_settings());
    let err = items_page(&client).await.unwrap_err();
    assert!(
        matches!(err, ZohoError::TokenRefreshLimited { .. }),
        "{err}"
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn zoho_errors_map_to_typed_errors(pool: PgPool) {
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    let client = client_for(&sim, pool, fast_settings());

    let err = client
        .get_record(ORG, EntityKind::Item, "404404", Priority::Webhook)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("1002"), "{err}");
    // A 404 for a path Zoho does not know (code 5, "Invalid URL") is TDS's mistake, not a deletion:
    // nothing may be tombstoned on it.
    let err = client
        .get_json(
            ORG,
            tds_zoho::Product::Inventory,
            "itemz/123",
            &[],
            Priority::Webhook,
        )
        .await
        .unwrap_err();
    assert!(!err.is_not_found(), "{err}");
    assert!(
        matches!(
            err,
            ZohoError::Api {
                status: 404,
                code: 5,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_retriable());
    // A sort column the endpoint does not document (vendor payments: no created_time) is refused.
    let mut pages = client
        .pages(
            ORG,
            EntityKind::VendorPayment,
            vec![("sort_column".into(), "created_time".into())],
            Priority::Poll,
        )
        .unwrap();
    let err = pages.next().await.unwrap().unwrap_err();
    assert!(
        matches!(&err, ZohoError::Api { status: 400, code: 2, message, .. } if message.contains("sort_column")),
        "{err}"
    );

    sim.sim.configure(|c| c.error_rate = 1.0);
    let err = items_page(&client).await.unwrap_err();
    assert!(
        matches!(err, ZohoError::Server { status: 500, .. }),
        "{err}"
    );
    assert!(err.is_retriable());
    assert_eq!(
        sim.sim.stats().orgs[ORG].by_endpoint["GET /inventory/v1/items"],
        3,
        "retried up to max_attempts"
    );

    sim.sim.configure(|c| {
        c.error_rate = 0.0;
        c.http200_error_rate = 1.0;
    });
    sim.sim.reset_stats();
    let err = items_page(&client).await.unwrap_err();
    assert_eq!(
        sim.sim.stats().orgs[ORG].by_endpoint["GET /inventory/v1/items"],
        3,
        "an undocumented code on HTTP 200 is retried up to max_attempts first"
    );
    assert!(
        matches!(
            err,
            ZohoError::Api {
                status: 200,
                code: 2,
                ..
            }
        ),
        "{err}"
    );

    sim.sim.configure(|c| c.http200_error_rate = 0.0);
    let err = client
        .get_json(ORG, Product::Inventory, "itemdetails", &[], Priority::Poll)
        .await
        .unwrap_err();
    assert!(matches!(err, ZohoError::Api { status: 400, .. }), "{err}");

    let err = client
        .get_json("999", Product::Books, "items", &[], Priority::Poll)
        .await
        .unwrap_err();
    assert!(matches!(err, ZohoError::UnknownOrganization(_)));
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_429_is_waited_out_with_or_without_retry_after(pool: PgPool) {
    for retry_after in [true, false] {
        let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
        sim.sim.configure(|c| {
            c.per_minute_limit = 3;
            c.window = Duration::from_millis(1500);
            c.retry_after = retry_after;
        });
        // The client believes it may send 10 per window: Zoho's 429 must teach it to wait.
        let mut settings = fast_settings();
        settings.budget = BudgetSettings {
            per_minute_limit: 10,
            window: Duration::from_millis(1600),
            ..BudgetSettings::default()
        };
        settings.retry.max_attempts = 5;
        sqlx::query("DELETE FROM tds_rate_budget")
            .execute(&pool)
            .await
            .unwrap();
        let client = client_for(&sim, pool.clone(), settings);
        let started = Instant::now();
        for _ in 0..5 {
            items_page(&client).await.unwrap();
        }
        let stats = sim.sim.stats();
        assert!(
            stats.orgs[ORG].rate_limited >= 1,
            "retry_after={retry_after}"
        );
        assert_eq!(stats.orgs[ORG].calls, 5);
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "it waited for the window"
        );
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn an_exhausted_daily_quota_fails_fast_with_the_reset_time(pool: PgPool) {
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    sim.sim.configure(|c| c.daily_limit = 3);
    let client = client_for(&sim, pool, fast_settings());
    for _ in 0..3 {
        items_page(&client).await.unwrap();
    }
    // The headers said 0 remaining: the budget refuses without calling Zoho.
    let err = items_page(&client).await.unwrap_err();
    assert!(
        matches!(err, ZohoError::DailyQuotaExhausted { .. }),
        "{err}"
    );
    assert!(err.is_retriable());
    assert_eq!(
        sim.sim.stats().orgs[ORG].rate_limited,
        0,
        "no request was wasted"
    );
}

fn shared_budget_settings() -> ClientSettings {
    let mut s = fast_settings();
    s.budget = BudgetSettings {
        per_minute_limit: 10,
        window: Duration::from_millis(1100),
        ..BudgetSettings::default()
    };
    s
}

async fn ten_tasks_of_two_calls(client: Arc<ZohoClient>) {
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..2 {
                items_page(&client).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// The URL of the database `pool` is connected to, on the server `DATABASE_URL` names.
fn url_of(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").unwrap();
    let db = pool.connect_options().get_database().unwrap().to_string();
    let scheme_end = base.find("://").unwrap() + 3;
    let path = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let query = base[path..]
        .find('?')
        .map(|q| base[path + q..].to_string())
        .unwrap_or_default();
    format!("{}/{db}{query}", &base[..path])
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn twenty_tasks_in_two_processes_never_exceed_the_shared_budget(pool: PgPool) {
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    sim.sim.configure(|c| {
        c.per_minute_limit = 10;
        c.window = Duration::from_millis(1000);
    });
    // A second OS process: this test binary again, running only the helper below, sharing nothing
    // with this one but the database and the simulator.
    let exe = std::env::current_exe().unwrap();
    let (db_url, sim_url) = (url_of(&pool), sim.base_url.clone());
    let child = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "zoho_client::budget_child_process",
                "--test-threads",
                "1",
            ])
            .env("TDS_CHILD_DATABASE_URL", db_url)
            .env("TDS_CHILD_SIM_URL", sim_url)
            .output()
            .unwrap()
    });
    let started = Instant::now();
    ten_tasks_of_two_calls(Arc::new(client_for(
        &sim,
        pool.clone(),
        shared_budget_settings(),
    )))
    .await;
    let output = child.await.unwrap();
    let child_log = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child process failed: {child_log}");
    assert!(
        child_log.contains("1 passed"),
        "the child ran its 20 calls: {child_log}"
    );

    let stats = sim.sim.stats();
    assert_eq!(stats.orgs[ORG].calls, 40);
    assert_eq!(
        stats.orgs[ORG].rate_limited, 0,
        "the shared budget kept both processes under Zoho's limit"
    );
    // 40 calls at 10 per 1.1 s take at least three full windows.
    assert!(
        started.elapsed() >= Duration::from_millis(3300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stats.token_refreshes, 1, "one token for both processes");
}

/// Runs as the second process of the test above (skipped unless it sets the environment).
#[tokio::test]
#[ignore = "helper: started as a child process by twenty_tasks_in_two_processes_never_exceed_the_shared_budget"]
async fn budget_child_process() {
    let (Ok(db_url), Ok(sim_url)) = (
        std::env::var("TDS_CHILD_DATABASE_URL"),
        std::env::var("TDS_CHILD_SIM_URL"),
    ) else {
        return;
    };
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect(&db_url)
        .await
        .unwrap();
    let client = client_at(
        &sim_url,
        pool,
        shared_budget_settings(),
        ClientCredentials::default().refresh_token,
    );
    ten_tasks_of_two_calls(Arc::new(client)).await;
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn webhook_refetches_go_before_polling(pool: PgPool) {
    // The rule itself is unit-tested on explicit times (`tds_zoho::budget` tests); this checks the
    // wiring through the database with a window wide enough for a loaded machine.
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    let mut settings = fast_settings();
    settings.budget = BudgetSettings {
        per_minute_limit: 4,
        window: Duration::from_secs(3),
        ..BudgetSettings::default()
    };
    let client = Arc::new(client_for(&sim, pool.clone(), settings));
    for _ in 0..4 {
        items_page(&client).await.unwrap();
    }
    let decided = || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
                "SELECT updated_at FROM tds_rate_budget WHERE org_id = $1",
            )
            .bind(ORG)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let before = decided().await;
    // The window is full. A webhook re-fetch that starts waiting claims the next slot ahead of a
    // poll that started waiting first.
    let poller = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .get_json(ORG, Product::Inventory, "items", &[], Priority::Poll)
                .await
                .unwrap();
            Instant::now()
        })
    };
    // Until the poll has been told to wait (its decision touches the budget row).
    let deadline = Instant::now() + Duration::from_secs(10);
    while decided().await == before {
        assert!(Instant::now() < deadline, "the poll never asked the budget");
        tokio::task::yield_now().await;
    }
    let hook = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .get_json(ORG, Product::Inventory, "items", &[], Priority::Webhook)
                .await
                .unwrap();
            Instant::now()
        })
    };
    let (poll_done, hook_done) = (poller.await.unwrap(), hook.await.unwrap());
    assert!(hook_done <= poll_done, "the webhook re-fetch went first");
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn both_stock_shapes_parse_from_bulk_details(pool: PgPool) {
    for (shape, expected) in [
        (StockShape::Locations, CoreShape::Locations),
        (StockShape::Warehouses, CoreShape::Warehouses),
    ] {
        let sim = sim(30, shape, SimConfig::default()).await;
        let client = client_for(&sim, pool.clone(), fast_settings());
        // Inactive items too: Zoho lists active ones only unless told otherwise.
        let all = vec![("filter_by".to_string(), "Status.All".to_string())];
        let mut pages = client
            .pages(ORG, EntityKind::Item, all, Priority::Poll)
            .unwrap();
        let page = pages.next().await.unwrap().unwrap();
        let ids: Vec<String> = page
            .records
            .iter()
            .map(|r| r["item_id"].as_str().unwrap().to_string())
            .collect();
        let items = client
            .item_details(ORG, &ids, Priority::Poll)
            .await
            .unwrap();
        assert_eq!(items.len(), 30);
        let goods: Vec<_> = items.iter().filter(|i| !i.is_service()).collect();
        assert!(
            goods
                .iter()
                .all(|i| i.stock_shape == Some(expected) && i.stock.len() == 3),
            "{shape:?}"
        );
        assert!(items
            .iter()
            .filter(|i| i.is_service())
            .all(|i| i.stock.is_empty() && i.stock_on_hand.is_none()));
        let total: rust_decimal::Decimal =
            goods[0].stock.iter().filter_map(|s| s.stock_on_hand).sum();
        assert_eq!(Some(total), goods[0].stock_on_hand);
        sqlx::query("DELETE FROM tds_token_cache")
            .execute(&pool)
            .await
            .unwrap();
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn customer_payments_under_either_list_key(pool: PgPool) {
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    let client = client_for(&sim, pool, fast_settings());
    for key in ["customerpayments", "customer_payments"] {
        sim.sim.set_profile(
            ORG,
            tds_zoho_sim::Profile {
                payments_list_key: key.into(),
                ..Default::default()
            },
        );
        let mut pages = client
            .pages(ORG, EntityKind::CustomerPayment, vec![], Priority::Poll)
            .unwrap();
        let page = pages.next().await.unwrap().unwrap();
        let parsed = page.parse(EntityKind::CustomerPayment).unwrap();
        assert_eq!(parsed.len(), 7, "{key}");
        assert!(parsed
            .iter()
            .all(|p| matches!(p, AnyEntity::Document(d) if d.kind == EntityKind::CustomerPayment)));
        assert!(pages.next().await.is_none());
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn listing_ten_thousand_items_takes_exactly_fifty_calls(pool: PgPool) {
    let sim = sim(10_000, StockShape::Locations, SimConfig::default()).await;
    let client = client_for(&sim, pool, fast_settings());
    let mut pages = client
        .pages(
            ORG,
            EntityKind::Item,
            vec![("filter_by".into(), "Status.All".into())],
            Priority::Poll,
        )
        .unwrap();
    let mut ids = std::collections::HashSet::new();
    while let Some(page) = pages.next().await {
        for item in page.unwrap().parse(EntityKind::Item).unwrap() {
            if let AnyEntity::Item(i) = item {
                ids.insert(i.item_id.clone());
            }
        }
    }
    assert_eq!(ids.len(), 10_000);
    assert_eq!(
        sim.sim.stats().orgs[ORG].by_endpoint["GET /inventory/v1/items"],
        50
    );
    assert_eq!(sim.sim.stats().orgs[ORG].calls, 50);
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn tokens_are_refreshed_before_they_expire(pool: PgPool) {
    // Zoho's tokens live an hour. No window here depends on how fast the machine is: a token is
    // either well inside its life (reused) or, for a client that refreshes an hour early, always
    // inside the early window (refreshed before every call, never sent expired).
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    sim.sim.configure(|c| c.token_ttl_secs = 3600);
    let client = client_for(&sim, pool.clone(), fast_settings());
    items_page(&client).await.unwrap();
    items_page(&client).await.unwrap();
    assert_eq!(sim.sim.stats().token_refreshes, 1, "still fresh: reused");

    let mut early = fast_settings();
    early.tokens.refresh_early = Duration::from_secs(3600);
    let early = client_for(&sim, pool, early);
    items_page(&early).await.unwrap();
    assert_eq!(
        sim.sim.stats().token_refreshes,
        2,
        "the shared token is inside this client's early window: refreshed"
    );
    items_page(&early).await.unwrap();
    let stats = sim.sim.stats();
    assert_eq!(stats.token_refreshes, 3, "and again before the next call");
    assert_eq!(
        stats.unauthorized, 0,
        "no call ever went out with an expired token"
    );
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn timeouts_are_retried_then_reported(pool: PgPool) {
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    let mut settings = fast_settings();
    settings.retry.request_timeout = Duration::from_millis(300);
    let client = client_for(&sim, pool, settings);
    items_page(&client).await.unwrap();
    sim.sim
        .configure(|c| c.latency = Duration::from_millis(600));
    let err = items_page(&client).await.unwrap_err();
    assert!(matches!(err, ZohoError::Transport { .. }), "{err}");
    assert!(err.is_retriable());
    sim.sim.configure(|c| c.latency = Duration::ZERO);
    items_page(&client).await.unwrap();
}

/// The "deploy, then fill the secret" flow and any later change of organisations or credentials:
/// a warm client reads the credentials document again when asked for an organisation it does not
/// know, so it needs no restart.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_warm_client_follows_changes_to_the_credentials_secret(pool: PgPool) {
    let sim = sim(5, StockShape::Locations, SimConfig::default()).await;
    let c = ClientCredentials::default();
    let secrets = tds_local::MemorySecrets::new([(
        "zoho".to_string(),
        r#"{"organizations": []}"#.to_string(),
    )]);
    let secrets = Arc::new(secrets);
    let directory =
        tds_zoho::SecretDirectory::load(secrets.clone(), "zoho", tds_zoho::DataCentre::Us)
            .await
            .unwrap()
            .with_min_reload(Duration::ZERO);
    let client = ZohoClient::with_directory(Arc::new(directory), pool, fast_settings()).unwrap();
    assert!(client.org_ids().is_empty());
    assert!(matches!(
        client.ensure_org(ORG).await.unwrap_err(),
        ZohoError::UnknownOrganization(_)
    ));
    // The operator fills the secret: the next request for the organisation finds it.
    let doc = serde_json::json!({"organizations": [{
        "organization_id": ORG, "client_id": c.client_id, "client_secret": c.client_secret,
        "refresh_token": c.refresh_token, "accounts_server": sim.base_url, "api_domain": sim.base_url
    }]});
    secrets.set("zoho", &doc.to_string());
    client.ensure_org(ORG).await.unwrap();
    assert_eq!(client.org_ids(), vec![ORG.to_string()]);
    items_page(&client).await.unwrap();
}
