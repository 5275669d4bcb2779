//! The dashboard in a real browser (the distribution's headless Chromium through ChromeDriver)
//! against a running `tds up`: sign in, the overview agrees with the admin API, a sync started from
//! the page completes, a dead letter made by the test is found and retried, a comparison's match %
//! is shown; every page renders without console errors, on a desktop and on a phone-sized window.
//! Screenshots of every page are saved (paths printed).

mod webdriver;

use serde_json::{json, Value};
use webdriver::Browser;

use super::{free_port, fresh_database, get, settled, up, TOKEN};

/// Fails on any console entry at error level (a failed request, an uncaught exception).
async fn assert_quiet_console(browser: &Browser, page: &str) {
    let errors: Vec<(String, String)> = browser
        .console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .collect();
    assert!(
        errors.is_empty(),
        "{page} logged console errors: {errors:?}"
    );
}

/// Opens `#/<route>`, waits for the page to say it rendered, saves a screenshot and checks the
/// console and that nothing overflows the window sideways.
async fn visit(browser: &Browser, base: &str, route: &str, page: &str, shots: &std::path::Path) {
    browser.goto(&format!("{base}/dashboard/#/{route}")).await;
    render(browser, page).await;
    let path = shots.join(format!("{}.png", route.replace('/', "-")));
    browser.screenshot(&path).await;
    println!("screenshot: {}", path.display());
    assert_quiet_console(browser, page).await;
}

/// Waits until `page-<page>` has rendered its data.
async fn render(browser: &Browser, page: &str) {
    browser
        .until(
            30,
            &format!("page-{page} to render"),
            &format!(
                "const p = document.getElementById('page-{page}'); \
                 return p && !p.hidden && p.getAttribute('data-loaded') === 'true';"
            ),
        )
        .await;
    let overflow = browser
        .script(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            json!([]),
        )
        .await;
    assert!(
        overflow.as_i64().unwrap_or(0) <= 0,
        "page-{page} overflows the window sideways by {overflow} px"
    );
}

fn number(text: &str) -> f64 {
    text.trim()
        .trim_end_matches('%')
        .trim()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {text:?}"))
}

#[tokio::test]
async fn the_dashboard_signs_in_shows_the_stack_and_steers_it() {
    let name = format!("tds_cli_dashboard_{}", std::process::id());
    let url = fresh_database(&name).await;
    let dir = std::env::temp_dir().join(&name);
    let stack = up(&url, &dir, &["--items", "40"]);
    settled(&stack, 12).await;
    let base = stack.admin.clone();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(shots.join("phone")).unwrap();

    let browser = Browser::start(free_port(), 1280, 900).await;
    // The page itself needs no token; its data does.
    browser.goto(&format!("{base}/dashboard/")).await;
    browser
        .until(15, "the sign-in form", "return document.getElementById('token') && !document.getElementById('sign-in').disabled")
        .await;
    browser.screenshot(&shots.join("sign-in.png")).await;
    println!("screenshot: {}", shots.join("sign-in.png").display());
    // A wrong token is refused and said so.
    browser.type_into("#token", "not-the-token-at-all").await;
    browser.click("#sign-in").await;
    browser
        .until(15, "the refusal", "const e = document.getElementById('sign-in-error'); return e && !e.hidden && e.textContent.trim()")
        .await;
    // That 401 is the one console error expected (and shows the console is read).
    let refused = browser.console().await;
    assert!(
        refused
            .iter()
            .any(|(level, m)| level == "SEVERE" && m.contains("401")),
        "{refused:?}"
    );
    browser
        .script("document.getElementById('token').value = '';", json!([]))
        .await;
    browser.type_into("#token", TOKEN).await;
    browser.click("#sign-in").await;
    render(&browser, "overview").await;
    // The token is kept for the tab's session only.
    let kept = browser
        .script(
            "return [sessionStorage.getItem('tds.token'), localStorage.length];",
            json!([]),
        )
        .await;
    assert_eq!(kept, json!([TOKEN, 0]));

    // The overview agrees with the admin API.
    let overview = get(&stack, "/api/tds/overview").await;
    assert_eq!(
        browser.text("#health-status").await,
        overview["health"]["status"].as_str().unwrap()
    );
    assert_eq!(
        browser.text("#deadletter-depth").await,
        overview["queue"]["deadletter"]["visible"].to_string()
    );
    assert_eq!(
        browser.text("#open-alerts").await,
        overview["open_alerts"]
            .as_array()
            .unwrap()
            .len()
            .to_string()
    );
    let kinds_shown = browser
        .script(
            "return document.getElementById('last-success').innerText;",
            json!([]),
        )
        .await;
    for kind in overview["last_success"].as_array().unwrap() {
        let entity = kind["entity"].as_str().unwrap();
        assert!(
            kinds_shown.as_str().unwrap().contains(entity),
            "{entity} missing from {kinds_shown}"
        );
    }
    browser.screenshot(&shots.join("overview.png")).await;
    println!("screenshot: {}", shots.join("overview.png").display());
    assert_quiet_console(&browser, "overview").await;

    // Start a full sync of locations from the Syncs page and watch it complete there.
    visit(&browser, &base, "syncs", "syncs", &shots).await;
    browser
        .click("input[name='sync-kind'][value='location']")
        .await;
    browser
        .script(
            "const s = document.getElementById('sync-mode'); s.value = 'full'; \
             s.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
    browser.click("#start-sync").await;
    let started = browser
        .until(
            20,
            "the started run",
            "const t = document.getElementById('sync-result').innerText; \
             const m = t.match(/Started \\d+ .*?: *#?(\\d+)/); return m ? m[1] : null;",
        )
        .await;
    let run_id: i64 = started.as_str().unwrap().parse().unwrap();
    browser
        .until(
            90,
            "the run to show completed",
            &format!(
                "const c = document.querySelector('tr[data-run-id=\"{run_id}\"] td.status'); \
                 return c && c.textContent.trim() === 'completed';"
            ),
        )
        .await;
    let run = get(&stack, &format!("/api/tds/sync-runs/{run_id}")).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        (run["entity"].as_str(), run["mode"].as_str()),
        (Some("location"), Some("full"))
    );
    visit(&browser, &base, &format!("syncs/{run_id}"), "run", &shots).await;

    // A dead letter, made by the test: a message the inbox cannot read.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let store = tds_store::Store::from_pool(pool.clone());
    let inbox = tds_store::PgQueue::new(store, "tds-inbox", std::time::Duration::from_secs(60));
    use tds_core::ports::Queue;
    inbox
        .send("this is not an inbox message (made by the dashboard test)".into())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let dead = loop {
        let letters = get(&stack, "/api/tds/deadletter").await;
        let found = letters["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["original"]
                    .to_string()
                    .contains("made by the dashboard test")
            })
            .map(|m| m["message_id"].as_str().unwrap().to_string());
        if let Some(id) = found {
            break id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the unreadable message was never dead-lettered: {letters}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    visit(&browser, &base, "queue", "queue", &shots).await;
    let row = format!("tr[data-message-id='{dead}']");
    let reason = browser.text(&row).await;
    assert!(reason.contains("not an inbox message"), "{reason}");
    browser.click(&format!("{row} button.retry-one")).await;
    browser
        .until(
            20,
            "the retry's answer",
            "return document.getElementById('retry-result').textContent.trim() === 'moved 1';",
        )
        .await;
    // It left the dead-letter queue (and, still unreadable, comes back as a new dead letter).
    let letters: Value = get(&stack, "/api/tds/deadletter").await;
    assert!(
        letters["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["message_id"] != dead.as_str()),
        "{letters}"
    );
    assert_quiet_console(&browser, "queue").await;

    // Compare now from the Drift page; it shows the report's match %.
    visit(&browser, &base, "drift", "drift", &shots).await;
    browser.click("#compare-now").await;
    browser
        .until(
            300,
            "the comparison's match %",
            "const t = document.getElementById('match-pct').textContent; return /\\d/.test(t) ? t : null;",
        )
        .await;
    render(&browser, "drift").await;
    let shown = number(&browser.text("#match-pct").await);
    let report = get(&stack, "/api/tds/statistics/overview").await;
    let measured = report["match_pct"].as_f64().unwrap();
    assert!(
        (shown - measured).abs() < 0.01,
        "the page shows {shown} %, the report says {measured} %"
    );
    browser.screenshot(&shots.join("drift.png")).await;
    assert_quiet_console(&browser, "drift").await;

    visit(&browser, &base, "stock", "stock", &shots).await;
    visit(&browser, &base, "metrics", "metrics", &shots).await;

    // On a phone-sized window every page still fits.
    browser.command_window(390, 844).await;
    for (route, page) in [
        ("overview", "overview"),
        ("syncs", "syncs"),
        ("queue", "queue"),
        ("drift", "drift"),
        ("stock", "stock"),
        ("metrics", "metrics"),
    ] {
        visit(&browser, &base, route, page, &shots.join("phone")).await;
    }
    drop(browser);
    drop(stack);
    let _ = pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
