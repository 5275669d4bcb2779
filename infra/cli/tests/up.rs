//! `tds up` as a user runs it: the binary on a fresh database with the embedded simulator. It syncs
//! every kind, answers the admin API (401 without the token), applies a signed webhook from the
//! simulator, and, killed in the middle of a sync and started again, finishes with nothing lost.
#![allow(clippy::unwrap_used)]

mod browser;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "cli-test-token-0123456789abcdef";

struct Stack {
    child: Child,
    admin: String,
    sim: String,
    database: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to `child` (as Ctrl-C in a terminal would, or Lambda's shutdown), spelled
/// `kill -s TERM -- <pid>`: see the browser's `Drop` for why the short form is not used.
fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-s", "TERM", "--", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s TERM {}: {status}", child.id());
}

fn up(database_url: &str, data_dir: &std::path::Path, extra: &[&str]) -> Stack {
    start(Some(database_url), data_dir, extra)
}

/// Starts `tds up` (without `DATABASE_URL` when `database_url` is `None`) and reads what it prints.
fn start(database_url: Option<&str>, data_dir: &std::path::Path, extra: &[&str]) -> Stack {
    start_on(0, database_url, data_dir, extra, &[])
}

/// [`start`] on `port` (0: any), with `env` set too.
fn start_on(
    port: u16,
    database_url: Option<&str>,
    data_dir: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Stack {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tds"));
    cmd.args([
        "up",
        "--port",
        &port.to_string(),
        "--zoho-per-minute",
        "100000",
        "--data-dir",
    ])
    .arg(data_dir)
    .args(extra)
    .envs(env.iter().copied())
    .env("TDS_ADMIN_TOKEN", TOKEN)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    match database_url {
        Some(url) => cmd.env("DATABASE_URL", url),
        None => cmd.env_remove("DATABASE_URL"),
    };
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut admin, mut sim, mut database) = (String::new(), String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("admin API:") {
            admin = rest.trim().trim_end_matches("/api/tds/health").to_string();
        }
        if let Some(rest) = line.strip_prefix("zoho:") {
            sim = rest.split_whitespace().nth(3).unwrap().to_string();
        }
        if let Some(rest) = line.strip_prefix("database:") {
            database = rest.trim().to_string();
        }
        if line.contains("Ctrl-C stops it.") {
            break;
        }
    }
    let external = env.iter().any(|(k, _)| *k == "TDS_ZOHO_CREDENTIALS");
    if admin.is_empty() || !(external || sim.starts_with("http")) {
        let _ = child.kill();
    }
    assert!(
        !admin.is_empty() && (external || sim.starts_with("http")),
        "admin={admin} sim={sim}"
    );
    std::thread::spawn(move || for _ in lines {});
    Stack {
        child,
        admin,
        sim,
        database,
    }
}

async fn get(stack: &Stack, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", stack.admin))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until every run is finished and at least `min_runs` exist; returns the runs.
async fn settled(stack: &Stack, min_runs: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = get(stack, "/api/tds/sync-runs?limit=100").await["runs"]
            .as_array()
            .cloned()
            .unwrap();
        if runs.len() >= min_runs && runs.iter().all(|r| r["status"] != "running") {
            return runs;
        }
        assert!(Instant::now() < deadline, "runs never settled: {runs:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn fresh_database(name: &str) -> String {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pool = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    let (head, _) = base.rsplit_once('/').unwrap();
    format!("{head}/{name}")
}

async fn drop_database(name: &str) {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pool = sqlx::PgPool::connect(&base).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await;
}

#[tokio::test]
async fn the_local_stack_syncs_serves_the_admin_api_and_applies_webhooks() {
    let name = format!("tds_cli_up_{}", std::process::id());
    let url = fresh_database(&name).await;
    let dir = std::env::temp_dir().join(&name);
    // A warehouse-mode organisation on a Zoho that ignores `location_id` on lists.
    let stack = up(
        &url,
        &dir,
        &[
            "--items",
            "60",
            "--zoho-profile",
            "filter-ignored-warehouses",
        ],
    );

    // A client that never finishes its request headers (a slowloris) is cut off by the
    // header-read timeout (10 s), not kept for ever; checked at the end of the test.
    let slow = {
        use std::io::{Read, Write};
        let addr = stack.admin.trim_start_matches("http://").to_string();
        std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            c.write_all(b"GET /api/tds/health HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            let mut seen = Vec::new();
            c.read_to_end(&mut seen).map(|_| seen)
        })
    };

    let runs = settled(&stack, 12).await;
    assert!(runs.iter().all(|r| r["status"] == "completed"), "{runs:?}");
    let status = get(&stack, "/api/tds/status").await;
    assert_eq!(status["entities"]["item"]["rows"], 60);
    let unauthenticated = reqwest::get(format!("{}/api/tds/status", stack.admin))
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), reqwest::StatusCode::UNAUTHORIZED);

    // An oversized body is refused before it is read whole (413), as API Gateway would.
    let resp = reqwest::Client::new()
        .post(format!("{}/webhooks/zoho/60001234567", stack.admin))
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);

    // A change in "Zoho": the simulator sends its signed webhook to the stack.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let item: String = sqlx::query_scalar("SELECT zoho_id FROM items ORDER BY zoho_id LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/__sim/orgs/60001234567/items", stack.sim))
        .json(&serde_json::json!({"item_id": item, "name": "Renamed through a webhook"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let name: String = sqlx::query_scalar("SELECT name FROM items WHERE zoho_id = $1")
            .bind(&item)
            .fetch_one(&pool)
            .await
            .unwrap();
        if name == "Renamed through a webhook" {
            break;
        }
        assert!(Instant::now() < deadline, "the webhook was never applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let receipts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tds_webhook_receipts WHERE zoho_id = $1 AND processed_at IS NOT NULL",
    )
    .bind(&item)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(receipts, 1);
    let seen = get(&stack, &format!("/api/tds/entities/item/{item}")).await;
    assert_eq!(
        seen["record"]["name"], "Renamed through a webhook",
        "{seen}"
    );
    // ... and `tds stats` sees the organisation as the comparison measured it.
    let (code, out, err) = tds(&stack, &["compare", "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["reports"][0]["match_pct"],
        100.0
    );
    let (code, out, err) = tds(&stack, &["stats", "--entity", "items", "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["statistics"]["database"]["total"],
        60
    );
    stock_stats_per_warehouse(&stack, &pool).await;
    // While the stack still runs: the slow connection was closed by the server.
    let seen = slow
        .join()
        .unwrap()
        .expect("the server never closed the slow connection");
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.is_empty() || seen.starts_with("HTTP/1.1 408"),
        "{seen}"
    );
    drop(stack);
    pool.close().await;
    drop_database(&name).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn killed_mid_sync_and_started_again_it_finishes_with_nothing_lost() {
    let name = format!("tds_cli_kill_{}", std::process::id());
    let url = fresh_database(&name).await;
    let dir = std::env::temp_dir().join(&name);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    {
        // Slow Zoho down so the kill lands in the middle of the item run.
        let stack = up(&url, &dir, &["--items", "3000"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pages: Option<i32> =
                sqlx::query_scalar("SELECT pages_done FROM tds_sync_runs WHERE entity = 'item'")
                    .fetch_optional(&pool)
                    .await
                    .unwrap();
            if pages.is_some_and(|p| p >= 3) {
                break;
            }
            assert!(Instant::now() < deadline, "the item run never got going");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(stack); // SIGKILL: no shutdown of any kind
    }
    let item_run: (String, i32) =
        sqlx::query_as("SELECT status, pages_done FROM tds_sync_runs WHERE entity = 'item'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        item_run.0, "running",
        "killed before the item run finished: {item_run:?}"
    );
    assert!(item_run.1 < 15, "{item_run:?}");

    let stack = up(&url, &dir, &["--items", "3000", "--no-initial-sync"]);
    let runs = settled(&stack, 12).await;
    assert!(runs.iter().all(|r| r["status"] == "completed"), "{runs:?}");
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM items WHERE deleted_at IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(items, 3000);
    let item = runs.iter().find(|r| r["entity"] == "item").unwrap();
    assert_eq!(item["pages"], 15);
    assert_eq!(item["fetched"], 3000);
    drop(stack);
    pool.close().await;
    drop_database(&name).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn killed_during_a_webhook_burst_it_applies_every_webhook_it_acknowledged() {
    let name = format!("tds_cli_burst_{}", std::process::id());
    let url = fresh_database(&name).await;
    let dir = std::env::temp_dir().join(&name);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let n = 30i64;
    {
        let stack = up(&url, &dir, &["--items", "20", "--no-initial-sync"]);
        let http = reqwest::Client::new();
        // Zoho slow (every re-fetch takes a second), so acknowledged webhooks wait in the inbox.
        let resp = http
            .post(format!("{}/__sim/config", stack.sim))
            .json(&serde_json::json!({"latency": 1000}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        // A burst of new items in "Zoho": each is a signed webhook to the stack.
        for i in 0..n {
            let resp = http
                .post(format!("{}/__sim/orgs/60001234567/items", stack.sim))
                .json(&serde_json::json!({"name": format!("Burst {i}"), "rate": i}))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
        }
        // Every delivery acknowledged (202 only once its inbox row is committed), then SIGKILL.
        let deadline = Instant::now() + Duration::from_secs(60);
        while count("SELECT (SELECT count(*) FROM tds_queue_messages WHERE queue = 'tds-inbox')
                          + (SELECT count(*) FROM tds_webhook_receipts WHERE processed_at IS NOT NULL)")
            .await
            < n
        {
            assert!(Instant::now() < deadline, "the burst never arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(stack);
    }
    let waiting = count("SELECT count(*) FROM tds_queue_messages WHERE queue = 'tds-inbox'").await;
    assert!(
        waiting > 0,
        "killed with acknowledged webhooks still waiting"
    );

    // Started again: every acknowledged webhook is applied (in-flight ones after the visibility
    // timeout, as SQS would redeliver them), none needs a redrive.
    let stack = up(&url, &dir, &["--items", "20", "--no-initial-sync"]);
    let deadline = Instant::now() + Duration::from_secs(150);
    while count("SELECT count(*) FROM tds_webhook_receipts WHERE processed_at IS NOT NULL").await
        < n
    {
        assert!(Instant::now() < deadline, "acknowledged webhooks were lost");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A message is deleted from the inbox only after its batch committed, and one the killed
    // process applied but never deleted comes back after the visibility timeout (as a duplicate):
    // wait for the inbox to drain, then nothing may be left anywhere (the dead-letter queue).
    until(150, "the inbox drains", || async {
        count("SELECT count(*) FROM tds_queue_messages WHERE queue = 'tds-inbox'").await == 0
    })
    .await;
    let left: Vec<(String, i64)> =
        sqlx::query_as("SELECT queue, count(*) FROM tds_queue_messages GROUP BY queue")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(left.is_empty(), "nothing dead-lettered: {left:?}");
    drop(stack);
    pool.close().await;
    drop_database(&name).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `tds` with the stack's API and token; returns (exit code, stdout, stderr).
fn tds(stack: &Stack, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tds"));
    cmd.args(args)
        .env("TDS_API_URL", &stack.admin)
        .env("TDS_ADMIN_TOKEN", TOKEN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn every_command_works_against_the_local_stack_and_fails_clearly() {
    let name = format!("tds_cli_cmd_{}", std::process::id());
    let url = fresh_database(&name).await;
    let dir = std::env::temp_dir().join(&name);
    let stack = up(&url, &dir, &["--items", "40"]);
    settled(&stack, 12).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let item: String =
        sqlx::query_scalar("SELECT item_id FROM item_stock ORDER BY item_id LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();

    // Happy paths (tables, and JSON that parses).
    let (code, out, err) = tds(
        &stack,
        &["sync", "item", "--mode", "full", "--wait", "--json"],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"][0]["status"], "completed");
    let org = v["runs"][0]["org_id"].as_str().unwrap().to_string();
    // `--flag=value` forms (`--api=` wins over TDS_API_URL, here unreachable); the progress of
    // --wait, piped and so not a terminal, is plain lines without `\r` frames.
    let (code, out, err) = tds(
        &stack,
        &[
            "sync",
            "item",
            &format!("--org={org}"),
            "--mode=full",
            "--wait",
            &format!("--api={}", stack.admin),
        ],
        &[("TDS_API_URL", "http://127.0.0.1:1")],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains('\r') && !err.contains('\r'),
        "{out:?} {err:?}"
    );
    assert!(err.contains("1/1 runs finished"), "{err}");
    assert!(
        out.contains("completed") && out.contains("api calls"),
        "{out}"
    );
    let (code, out, _) = tds(&stack, &["sync", "all"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("started"), "{out}");
    let (code, out, err) = tds(&stack, &["stock", "--items", &item, "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["mode"],
        "items"
    );
    // Before any comparison: nothing to show, said so (exit 1, not "bad usage").
    let (code, _, err) = tds(&stack, &["stats"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("run `tds compare`"), "{err}");
    let save = dir.join("report.json");
    let (code, out, err) = tds(
        &stack,
        &["compare", "--dry-run", "--save", save.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("match") && out.contains("dry run"), "{out}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&save).unwrap()).unwrap();
    assert!(saved["reports"][0]["kinds"].is_array());
    // A location-mode organisation (the documented profile).
    stock_stats_per_warehouse(&stack, &pool).await;
    // Stock by warehouse and below a threshold.
    let warehouse: String =
        sqlx::query_scalar("SELECT zoho_id FROM locations ORDER BY zoho_id LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let (code, out, err) = tds(&stack, &["stock", "--warehouse", &warehouse], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("items") && out.contains("api calls"), "{out}");
    let (code, out, err) = tds(
        &stack,
        &["stock", "--low-stock", "--threshold", "1000000", "--json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let low: Value = serde_json::from_str(&out).unwrap();
    assert!(
        low["reports"][0]["low_stock"].as_u64().unwrap() > 0,
        "{low}"
    );

    // Drift: a record lost from the database is found by compare and healed by compare --sync.
    let lost: String = sqlx::query_scalar(
        "DELETE FROM items WHERE zoho_id = (SELECT min(zoho_id) FROM items) RETURNING zoho_id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (code, out, err) = tds(&stack, &["compare", "--entity", "item", "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let item_kind = report["reports"][0]["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "item")
        .cloned()
        .unwrap();
    assert_eq!(
        item_kind["missing_locally"],
        serde_json::json!([lost]),
        "{report}"
    );
    // One missing item is below the schedule's heal threshold, but an operator's --sync heals it.
    let (code, out, err) = tds(&stack, &["compare", "--entity", "item", "--sync"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("item") && out.contains("missing"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let back: Option<String> =
            sqlx::query_scalar("SELECT zoho_id FROM items WHERE zoho_id = $1")
                .bind(&lost)
                .fetch_optional(&pool)
                .await
                .unwrap();
        if back.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "compare --sync did not bring {lost} back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (code, out, _) = tds(&stack, &["stats"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("match") && out.contains("item"), "{out}");
    let (code, out, _) = tds(&stack, &["stats", "--entity", "items", "--json"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["statistics"]["zoho"]["total"],
        40
    );
    let (code, _, _) = tds(&stack, &["stats", "--detailed"], &[]);
    assert_eq!(code, 0);
    let (code, out, _) = tds(&stack, &["health"], &[]);
    assert_eq!((code, out.trim_end()), (0, "healthy"));
    let (code, out, _) = tds(&stack, &["deadletter", "list"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("0 message(s)"), "{out}");
    let (code, out, _) = tds(&stack, &["deadletter", "retry", "--json"], &[]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["moved"], 0);
    let (code, out, err) = tds(&stack, &["migrate"], &[("DATABASE_URL", &url)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 migration(s) applied"), "{out}");

    // Errors: usage 2, refused 1, unreachable 4; messages say what was wrong.
    let (code, _, err) = tds(&stack, &["sync", "widgets"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("widgets") && err.contains("item") && err.contains("purchase_order"),
        "{err}"
    );
    let (code, _, err) = tds(&stack, &["sync", "item", "--mode", "sometimes"], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tds(&stack, &["stock", "--mode", "weekly"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("weekly"), "{err}");
    let (code, _, err) = tds(&stack, &["stats", "--entity", "widgets"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("items, customers"), "{err}");
    let (code, _, err) = tds(&stack, &["stock", "--low-stock", "--threshold", "few"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--threshold") && err.contains("must be a number") && err.contains("few"),
        "{err}"
    );
    let (code, _, err) = tds(&stack, &["compare", "--sync", "--threshold", "lots"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--threshold") && err.contains("must be a whole number"),
        "{err}"
    );
    let (code, _, err) = tds(&stack, &["compare", "--entity", "widgets"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("widgets") && err.contains("item"), "{err}");
    let (code, _, err) = tds(&stack, &["deadletter"], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tds(&stack, &["deadletter", "purge"], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tds(&stack, &["migrate"], &[("DATABASE_URL", "")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
    let (code, _, err) = tds(&stack, &["health", "--colour", "red"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--colour"), "{err}");
    let (code, _, err) = tds(
        &stack,
        &["health"],
        &[("TDS_ADMIN_TOKEN", "wrong-token-0123456789")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("refused the token"), "{err}");
    let (code, _, err) = tds(&stack, &["health", "--api", "http://127.0.0.1:1"], &[]);
    assert_eq!(code, 4);
    assert!(err.contains("http://127.0.0.1:1"), "{err}");
    let bad_db = "postgres://postgres:secretpw@127.0.0.1:1/nowhere";
    let (code, _, err) = tds(&stack, &["migrate"], &[("DATABASE_URL", bad_db)]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("127.0.0.1:1/nowhere") && !err.contains("secretpw"),
        "{err}"
    );
    let (code, _, err) = tds(&stack, &["frobnicate"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
    // A value option does not swallow the switch after it; unknown options are refused.
    let (code, out, err) = tds(&stack, &["sync", "item", "--org", "--json"], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("a value is required for '--org"), "{err}");
    let (code, _, err) = tds(&stack, &["sync", "item", "--orgs", &org], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--orgs"), "{err}");
    let (code, _, err) = tds(&stack, &["deadletter", "list", "--limit=many"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--limit"), "{err}");

    drop(stack);
    pool.close().await;
    drop_database(&name).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_database_url_it_runs_its_own_postgres_and_keeps_the_data() {
    let name = format!("tds_cli_private_{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    let mut stack = start(None, &dir, &["--items", "30"]);
    let database = stack.database.clone();
    assert!(
        database.contains("private cluster") && !database.contains(":5432/"),
        "{database}"
    );
    settled(&stack, 12).await;
    assert_eq!(
        get(&stack, "/api/tds/status").await["entities"]["item"]["rows"],
        30
    );
    // SIGTERM: the stack stops its cluster.
    sigterm(&stack.child);
    let status = stack.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !dir.join("pg/postmaster.pid").exists(),
        "the private cluster was not stopped"
    );

    // Started again on the same directory: the same data, no new sync needed.
    let mut stack = start(None, &dir, &["--items", "30", "--no-initial-sync"]);
    assert_eq!(
        get(&stack, "/api/tds/status").await["entities"]["item"]["rows"],
        30
    );
    sigterm(&stack.child);
    assert!(stack.child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tds_sim_runs_the_simulator_and_bad_usage_fails() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tds"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // `tds sim` runs the simulator (built beside `tds` by cargo) with its options.
    let mut sim = Command::new(env!("CARGO_BIN_EXE_tds"))
        .args(["sim", "--items", "10", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    for line in BufReader::new(sim.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("API domain:").nth(1) {
            url = rest.trim().to_string();
            break;
        }
    }
    let addr = url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /__sim/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("webhooks_sent"),
        "{answer}"
    );
    let _ = sim.kill();
    let _ = sim.wait();
    let (code, _, err) = run(&["sim", "--items", "many"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--items"), "{err}");
    // zoho-sim's own help (through `tds sim`, which passes every argument on) and a bad flag.
    let (code, out, err) = run(&["sim", "--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Usage: zoho-sim") && out.contains("--per-minute"),
        "{out}"
    );
    let (code, _, err) = run(&["sim", "--port", "1", "--bogus"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--bogus"), "{err}");
    for args in [&["help"][..], &["--help"], &["-h"]] {
        let (code, out, err) = run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            out.contains("tds up") && out.contains("exit codes") && out.contains("TDS_API_URL"),
            "{args:?}: {out}"
        );
    }
    // Every command's help: exit 0, on stdout, naming its options.
    for (args, options) in [
        (
            &["sync", "--help"][..],
            &[
                "<ENTITY>",
                "--mode",
                "--wait",
                "--org",
                "--api",
                "--token",
                "--aws-iam",
                "--json",
            ][..],
        ),
        (
            &["up", "--help"],
            &[
                "--port",
                "--items",
                "--time-scale",
                "--data-dir",
                "--no-initial-sync",
                "--zoho-per-minute",
                "--zoho-profile",
            ],
        ),
        (
            &["stock", "-h"],
            &["--warehouse", "--low-stock", "--threshold", "--json"],
        ),
        (
            &["help", "compare"],
            &["--dry-run", "--save", "--threshold"],
        ),
        (
            &["deadletter", "retry", "--help"],
            &["--max", "--api", "--json"],
        ),
        (&["migrate", "--help"], &["--json"]),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("Usage: tds"), "{args:?}: {out}");
        for option in options {
            assert!(
                out.contains(option),
                "{args:?} does not name {option}: {out}"
            );
        }
    }
    let (code, _, err) = run(&["up", "--port", "eighty"]);
    assert_eq!(code, 2);
    assert!(err.contains("--port"), "{err}");
    let (code, _, err) = run(&["up", "--port=eighty"]);
    assert_eq!(code, 2);
    assert!(err.contains("--port"), "{err}");
    let (code, _, err) = run(&["up", "--zoho-profile", "mars"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--zoho-profile") && err.contains("filter-ignored-locations"),
        "{err}"
    );
    let (code, _, err) = run(&["up", "--time-scale", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--time-scale"), "{err}");
    let (code, _, err) = run(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("no command"), "{err}");
    // Settings `tds up` would otherwise silently replace or ignore are refused before anything starts.
    for (var, value, says) in [
        ("TDS_ADMIN_TOKEN", "short", "at least 16"),
        ("TDS_ZOHO_DC", "mars", "TDS_ZOHO_DC"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tds"))
            .args(["up", "--port", "0"])
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert!(err.contains(says), "{var}: {err}");
    }
}

/// The one principal the stand-in gateway knows.
const AWS_KEY: &str = "AKIDTDSCLITEST000000";
const AWS_SECRET: &str = "tds-cli-test-secret-key/0123456789abcdefgh";
const AWS_SESSION: &str = "tds-cli-test-session-token";

/// What the stand-in gateway saw of one request: method, path, body, whether it let it through.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String, bool)>>>;

/// A stand-in for API Gateway's IAM authorizer in front of the admin API: it recomputes each request's
/// SigV4 signature (service execute-api, region eu-west-1) with the secret of the one key it knows and
/// answers 403 `{"message": "Forbidden"}` as API Gateway does when it differs; else a canned answer.
async fn iam_gateway(seen: Seen) -> String {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let header = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let authorization = header("authorization");
                let field = |name: &str| {
                    authorization
                        .split([' ', ','])
                        .find_map(|p| p.strip_prefix(name))
                        .unwrap_or("")
                        .to_string()
                };
                let time =
                    chrono::NaiveDateTime::parse_from_str(&header("x-amz-date"), "%Y%m%dT%H%M%SZ")
                        .map(|t| std::time::SystemTime::from(t.and_utc()));
                let session = header("x-amz-security-token");
                let valid = authorization.starts_with("AWS4-HMAC-SHA256 ")
                    && field("Credential=").starts_with(&format!("{AWS_KEY}/"))
                    && field("Credential=").ends_with("/eu-west-1/execute-api/aws4_request")
                    && time.is_ok()
                    && {
                        let credentials = aws_credential_types::Credentials::new(
                            AWS_KEY,
                            AWS_SECRET,
                            (!session.is_empty()).then(|| AWS_SESSION.to_string()),
                            None,
                            "test",
                        );
                        let identity = credentials.into();
                        let params = aws_sigv4::sign::v4::SigningParams::builder()
                            .identity(&identity)
                            .region("eu-west-1")
                            .name("execute-api")
                            .time(time.unwrap())
                            .settings(SigningSettings::default())
                            .build()
                            .unwrap()
                            .into();
                        // The signed headers as received, but those the signer adds itself.
                        let signed = field("SignedHeaders=");
                        let pairs: Vec<(String, String)> = signed
                            .split(';')
                            .filter(|h| !["x-amz-date", "x-amz-security-token"].contains(h))
                            .map(|h| (h.to_string(), header(h)))
                            .collect();
                        let url = format!("http://{}{}", header("host"), uri);
                        let request = SignableRequest::new(
                            method.as_str(),
                            url,
                            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                            SignableBody::Bytes(&body),
                        )
                        .unwrap();
                        let expected = sign(request, &params).unwrap().into_parts().0;
                        let expected_auth = expected
                            .headers()
                            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                            .map(|(_, v)| v.to_string())
                            .unwrap_or_default();
                        expected_auth == authorization
                            && (session.is_empty() || session == AWS_SESSION)
                    };
                seen.lock().unwrap().push((
                    method.to_string(),
                    uri.to_string(),
                    String::from_utf8_lossy(&body).into_owned(),
                    valid,
                ));
                if !valid || !header("authorization").starts_with("AWS4") {
                    return (
                        StatusCode::FORBIDDEN,
                        axum::Json(serde_json::json!({"message": "Forbidden"})),
                    );
                }
                // What the admin API answers, as its types say.
                use tds_admin::api::{Health, HealthLevel, PartState, QueueHealth, ZohoState};
                let answer = match uri.path() {
                    "/api/tds/health" => serde_json::to_value(Health {
                        status: HealthLevel::Healthy,
                        reasons: Vec::new(),
                        database: PartState { ok: true },
                        queue: QueueHealth {
                            ok: true,
                            inbox: None,
                            deadletter: None,
                        },
                        open_alerts: 0,
                        zoho: ZohoState {
                            organizations: vec!["60001234567".into()],
                            tokens: Vec::new(),
                        },
                        last_sync: None,
                    }),
                    "/api/tds/sync" => serde_json::to_value(tds_admin::api::SyncStarted {
                        run_ids: vec![7],
                        mode: tds_core::SyncMode::Full,
                        reason: None,
                    }),
                    _ => serde_json::to_value(tds_admin::api::ErrorBody {
                        error: "no such route".into(),
                    }),
                }
                .unwrap();
                (StatusCode::OK, axum::Json(answer))
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Runs `tds` with only the given environment (no AWS settings of the machine leak in).
async fn tds_alone(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tds"));
    cmd.args(args)
        .env_clear()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/tds-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/tds-test/credentials",
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Blocking on a thread of its own: the stand-in gateway runs on this test's runtime.
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn against_the_iam_authorized_api_every_request_is_signed_with_aws_credentials() {
    let seen: Seen = Default::default();
    let api = iam_gateway(seen.clone()).await;
    let key = [
        ("AWS_ACCESS_KEY_ID", AWS_KEY),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ("AWS_REGION", "eu-west-1"),
    ];

    // GET, signed: the gateway lets it through, and no bearer token went along.
    let (code, out, err) = tds_alone(&["health", "--aws-iam", "--api", &api], &key).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("healthy"), "{out}");

    // POST: the signature covers the JSON body; temporary credentials send their session token.
    let mut with_session = key.to_vec();
    with_session.push(("AWS_SESSION_TOKEN", AWS_SESSION));
    with_session.push(("TDS_API_AUTH", "aws-iam"));
    with_session.push(("TDS_API_URL", &api));
    let (code, out, err) =
        tds_alone(&["sync", "item", "--mode", "full", "--json"], &with_session).await;
    assert_eq!(code, 0, "{out}{err}");
    let started: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(started["run_ids"][0], 7);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen.iter().all(|(_, _, _, valid)| *valid), "{seen:?}");
        assert_eq!(seen[1].0, "POST");
        let body: Value = serde_json::from_str(&seen[1].2).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"entities": ["item"], "mode": "full"})
        );
    }

    // A wrong secret: the gateway's 403, explained; the secret itself is never printed.
    let wrong = [
        ("AWS_ACCESS_KEY_ID", AWS_KEY),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-0123456789"),
        ("AWS_REGION", "eu-west-1"),
    ];
    let (code, out, err) = tds_alone(&["health", "--aws-iam", "--api", &api], &wrong).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("403") && err.contains("execute-api:Invoke"),
        "{err}"
    );
    assert!(!err.contains("not-the-secret-key") && !out.contains("not-the-secret-key"));
    assert!(!seen.lock().unwrap()[2].3);

    // With a token and no --aws-iam (and a URL that is not execute-api's), the bearer token goes:
    // the IAM gateway refuses it, as API Gateway would.
    let (code, _, err) = tds_alone(
        &["health", "--api", &api],
        &[("TDS_ADMIN_TOKEN", "some-admin-token-0123456789")],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("403"), "{err}");

    // No credentials anywhere: a clear usage error before any request.
    let before = seen.lock().unwrap().len();
    let (code, _, err) = tds_alone(
        &["health", "--aws-iam", "--api", &api],
        &[("AWS_REGION", "eu-west-1")],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no AWS credentials"), "{err}");
    // An execute-api URL without a token means IAM (the region comes from the host name).
    let (code, _, err) = tds_alone(
        &[
            "health",
            "--api",
            "https://abc123defg.execute-api.eu-central-1.amazonaws.com",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no AWS credentials"), "{err}");
    // Without a region, or with an unknown way to authenticate: said so.
    let (code, _, err) = tds_alone(&["health", "--aws-iam", "--api", &api], &key[..2]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AWS_REGION"), "{err}");
    let (code, _, err) =
        tds_alone(&["health", "--api", &api], &[("TDS_API_AUTH", "kerberos")]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("token or aws-iam"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), before);
}

/// `tds stats --entity stock` gives, on both sides, one entry per warehouse with the stored
/// per-location totals (the typed `item_stock` columns, whatever shape Zoho sent them in).
async fn stock_stats_per_warehouse(stack: &Stack, pool: &sqlx::PgPool) {
    let warehouses: Vec<(String, f64)> = sqlx::query_as(
        "SELECT location_id, sum(stock_on_hand)::float8 FROM item_stock WHERE deleted_at IS NULL GROUP BY location_id ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(warehouses.len() >= 2, "{warehouses:?}");
    let (code, out, err) = tds(stack, &["stats", "--entity", "stock", "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let stock = &serde_json::from_str::<Value>(&out).unwrap()["statistics"];
    for side in ["zoho", "database"] {
        let by: Vec<(String, f64)> = stock[side]["by_warehouse"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect();
        assert_eq!(by.len(), warehouses.len(), "{side}: {by:?}");
        for ((k, v), (w, total)) in by.iter().zip(&warehouses) {
            assert_eq!(
                (k, (v * 100.0).round()),
                (w, (total * 100.0).round()),
                "{side}"
            );
        }
    }
}

/// A port free right now (for a stack that must come back on the same one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Restarts the private cluster in `dir` the hard way (`-m immediate`: no checkpoint, crash
/// recovery on start), as a database failover or host restart would.
fn restart_cluster(dir: &str) {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/pg_ctl"))
        .filter(|p| p.exists())
        .max()
        .unwrap();
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    // The new postmaster logs to a file: were it to inherit pg_ctl's pipes, reading them to the end
    // would wait for as long as the server runs.
    let log = format!("{dir}/restart.log");
    let status = cmd
        .args(["-D", dir, "-m", "immediate", "-w", "-l", &log, "restart"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "pg_ctl restart failed: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

async fn post(stack: &Stack, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", stack.admin))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

/// Waits for `what` to hold, up to `secs` seconds.
async fn until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every fault at once, then one comparison: Zoho (the simulator, running here so it outlives the
/// stack) answers 500s and HTTP-200 error codes, bursts of 429s and a 15 s token denial; its
/// webhooks are delayed, dropped, duplicated and reordered; `tds up` is killed with -9 during a
/// webhook burst and its database is restarted under it. After quiescence and the hourly
/// incremental sync, one comparison finds 100 %, every webhook the stack acknowledged has been
/// applied, nothing waits for a manual redrive, and at least one event was published per row
/// changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_every_fault_at_once_it_converges_and_loses_nothing() {
    use tds_zoho_sim::{Collection, DemoSpec, Simulator, WebhookConfig};
    let name = format!("tds_cli_converge_{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    let spec = DemoSpec::with_items(20);
    let org = spec.org_id.clone();
    let sim = Simulator::demo(&spec).serve_local().await.unwrap();
    sim.sim.configure(|c| c.per_minute_limit = 100_000);
    let port = free_port();
    let (secret, signing) = ("converge-secret-0123456789", "converge-signing-0123456789");
    let hooks = WebhookConfig {
        url: format!("http://127.0.0.1:{port}/webhooks/zoho/{org}"),
        header_secret: Some(("X-TDS-Webhook-Secret".into(), secret.into())),
        signing_secret: Some(signing.into()),
        include_action: true,
        ..WebhookConfig::default()
    };
    sim.sim.configure_webhooks(Some(hooks.clone()));
    let client = tds_zoho_sim::ClientCredentials::default();
    let doc = serde_json::json!({"organizations": [{
        "organization_id": org, "client_id": client.client_id, "client_secret": client.client_secret,
        "refresh_token": client.refresh_token, "accounts_server": sim.base_url, "api_domain": sim.base_url,
        "webhook": {"header": "X-TDS-Webhook-Secret", "secret": secret, "signing_secret": signing}
    }]})
    .to_string();
    let env = [("TDS_ZOHO_CREDENTIALS", doc.as_str())];
    let mut stack = start_on(port, None, &dir, &[], &env);
    let cluster = stack
        .database
        .split("(private cluster in ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let db_url = format!("postgres://postgres@localhost/tds_local?host={cluster}&port=5432");
    settled(&stack, 12).await;
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let after_load: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let events_before = std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .count();

    // The changes: items, contacts and invoices edited, items created and deleted.
    let ids = |c: Collection| -> Vec<String> {
        sim.sim
            .with_state(|s| s.orgs[&org].records[&c].keys().cloned().collect())
    };
    let (items, contacts, invoices) = (
        ids(Collection::Items),
        ids(Collection::Contacts),
        ids(Collection::Invoices),
    );
    let mut round = 0usize;
    let mut change = |n: usize| {
        for _ in 0..n {
            round += 1;
            let fields = |id_field: &str, id: &str, field: &str, value: Value| {
                let mut m = serde_json::Map::new();
                m.insert(id_field.into(), Value::String(id.into()));
                m.insert(field.into(), value);
                m
            };
            let r = round;
            match r % 5 {
                0 => {
                    let id = &contacts[r % contacts.len()];
                    let f = fields("contact_id", id, "notes", format!("round {r}").into());
                    sim.sim.upsert(&org, Collection::Contacts, f).unwrap();
                }
                1 => {
                    let id = &invoices[r % invoices.len()];
                    let f = fields(
                        "invoice_id",
                        id,
                        "reference_number",
                        format!("R-{r}").into(),
                    );
                    sim.sim.upsert(&org, Collection::Invoices, f).unwrap();
                }
                2 => {
                    let mut f = serde_json::Map::new();
                    f.insert("name".into(), format!("Converge {r}").into());
                    f.insert("rate".into(), serde_json::json!(r));
                    sim.sim.upsert(&org, Collection::Items, f).unwrap();
                }
                _ => {
                    let id = &items[r % items.len()];
                    let f = fields("item_id", id, "rate", serde_json::json!(r as f64 + 0.5));
                    sim.sim.upsert(&org, Collection::Items, f).unwrap();
                }
            }
        }
    };

    // Zoho misbehaves and its webhooks are delayed, dropped, duplicated and reordered.
    sim.sim.configure(|c| {
        c.error_rate = 0.1;
        c.http200_error_rate = 0.05;
        c.latency = Duration::from_millis(50);
    });
    sim.sim.configure_webhooks(Some(WebhookConfig {
        duplicate_rate: 0.2,
        drop_rate: 0.1,
        delay_ms: 300,
        reorder: true,
        ..hooks.clone()
    }));
    change(15);
    // A burst of 429s: 3 calls per 5 s for a while.
    sim.sim.configure(|c| {
        c.per_minute_limit = 3;
        c.window = Duration::from_secs(5);
    });
    change(10);
    tokio::time::sleep(Duration::from_secs(8)).await; // the fault lasts 8 s
    sim.sim.configure(|c| {
        c.per_minute_limit = 100_000;
        c.window = Duration::from_secs(60);
    });
    // A 15 s token denial (a revoked grant, then restored).
    sim.sim.configure(|c| c.deny_tokens = true);
    change(10);
    tokio::time::sleep(Duration::from_secs(15)).await; // the fault lasts 15 s
    sim.sim.configure(|c| c.deny_tokens = false);
    // kill -9 during a webhook burst, while Zoho is slow, then the same stack again.
    sim.sim
        .configure(|c| c.latency = Duration::from_millis(500));
    change(15);
    tokio::time::sleep(Duration::from_millis(700)).await; // let deliveries land mid-burst
    stack.child.kill().unwrap();
    stack.child.wait().unwrap();
    change(5); // delivered while the stack is down: Zoho's retries fail, the sync must find them
    sim.sim.configure(|c| c.latency = Duration::from_millis(50));
    stack = start_on(port, None, &dir, &["--no-initial-sync"], &env);
    // The database restarted under the running stack.
    change(5);
    restart_cluster(&cluster);
    change(10);
    for id in items.iter().take(2) {
        sim.sim.delete(&org, Collection::Items, id).unwrap();
    }

    // Quiescence: faults off, the inbox drained, every run finished.
    sim.sim.configure(|c| {
        c.error_rate = 0.0;
        c.http200_error_rate = 0.0;
        c.latency = Duration::ZERO;
    });
    until(
        120,
        "every webhook queued is delivered or given up on",
        || {
            let pending = sim.sim.stats().webhooks_pending;
            async move { pending == 0 }
        },
    )
    .await;
    let stats = sim.sim.stats();
    println!(
        "webhooks: {} sent, {} dropped, {} failed",
        stats.webhooks_sent, stats.webhooks_dropped, stats.webhooks_failed
    );
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    until(240, "the inbox drains", || async {
        count("SELECT count(*) FROM tds_queue_messages WHERE queue = 'tds-inbox'").await == 0
    })
    .await;
    // The hourly incremental sync, as the schedule would start it.
    post(
        &stack,
        "/api/tds/sync",
        serde_json::json!({"entities": ["all"], "mode": "incremental"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let runs = get(&stack, "/api/tds/sync-runs?limit=100").await["runs"]
            .as_array()
            .cloned()
            .unwrap();
        let queued =
            count("SELECT count(*) FROM tds_queue_messages WHERE queue = 'tds-inbox'").await;
        if queued == 0 && runs.iter().all(|r| r["status"] != "running") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sync never settled: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // One comparison: 100 %.
    let answer = post(
        &stack,
        "/api/tds/statistics/sync-differences",
        serde_json::json!({"heal": false}),
    )
    .await;
    let report = &answer["reports"][0];
    assert_eq!(report["match_pct"], 100.0, "{report:#}");

    // Every webhook the stack acknowledged was applied: its receipt is processed.
    let acked = sim.sim.acknowledged_deliveries();
    assert!(
        acked.len() >= 30,
        "only {} deliveries were acknowledged",
        acked.len()
    );
    let mut keys = std::collections::BTreeSet::new();
    for d in &acked {
        let (_, query) = d.url.split_once('?').unwrap_or((&d.url, ""));
        let query = tds_core::webhook::parse_urlencoded(query);
        let headers: Vec<(String, String)> = d
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let req = tds_core::webhook::WebhookRequest {
            org_id: &org,
            route_action: None,
            content_type: Some(d.content_type),
            query: &query,
            headers: &headers,
            body: &d.body,
        };
        keys.insert(
            tds_core::webhook::normalize(&req, chrono::Utc::now())
                .unwrap()
                .dedupe_key,
        );
    }
    let keys: Vec<String> = keys.into_iter().collect();
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tds_webhook_receipts WHERE dedupe_key = ANY($1) AND processed_at IS NOT NULL",
    )
    .bind(&keys)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        applied as usize,
        keys.len(),
        "acknowledged webhooks were lost"
    );
    // Nothing needs a manual redrive.
    assert_eq!(
        count("SELECT count(*) FROM tds_queue_messages").await,
        0,
        "left in a queue"
    );
    // At least one event per row changed since the first load.
    let mut changed = 0i64;
    for table in ["items", "contacts", "invoices", "item_stock", "item_images"] {
        changed += sqlx::query_scalar::<_, i64>(&format!(
            "SELECT count(*) FROM {table} WHERE synced_at > $1"
        ))
        .bind(after_load)
        .fetch_one(&pool)
        .await
        .unwrap();
    }
    let events: Vec<Value> = std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .skip(events_before)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let entity_events = events
        .iter()
        .filter(|e| {
            let t = e["detail_type"].as_str().unwrap_or_default();
            t.starts_with("tds.entity.") || t == "tds.stock.changed"
        })
        .count() as i64;
    assert!(changed > 0);
    assert!(
        entity_events >= changed,
        "{entity_events} events for {changed} rows changed"
    );
    pool.close().await;
    sigterm(&stack.child);
    let _ = stack.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
