//! The admin API over real HTTP against PostgreSQL, the simulator and the local queue twins: every
//! route refuses unauthenticated calls with 401, answers with the token, and its shapes are those the
//! OpenAPI document names; the document and the router list the same routes.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;
use tds_admin::{router, Admin, ROUTES};
use tds_local::LocalRedrive;
use tds_sync::stock::StockPoller;
use tds_sync::SyncMode;

use crate::scheduled_sync::{harness, small_spec, Harness, ORG};

const TOKEN: &str = "test-admin-token-0123456789";

async fn serve(h: &Harness) -> String {
    let admin = Arc::new(Admin {
        store: h.store.clone(),
        processor: Arc::new(h.processor()),
        poller: Arc::new(StockPoller::new(
            h.store.clone(),
            h.zoho.clone(),
            h.events.clone(),
            Decimal::from(5),
        )),
        inbox: h.inbox.clone(),
        dead_letters: h.dlq.clone(),
        redrive: Arc::new(LocalRedrive {
            source: h.inbox.clone(),
            dead_letter: h.dlq.clone(),
        }),
        tokens: vec![TOKEN.into()],
        orgs: vec![ORG.into()],
    });
    assert!(!format!("{admin:?}").contains(TOKEN));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(admin)).await.unwrap() });
    format!("http://{addr}")
}

fn concrete(path: &str) -> String {
    path.replace("{kind}", "item").replace("{id}", "1")
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let url = format!("{base}{path}");
    let mut req = if method == "post" {
        client.post(url).json(&body)
    } else {
        client.get(url)
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[test]
fn the_openapi_document_lists_exactly_the_routes_of_the_router() {
    let path = format!(
        "{}/../shared/admin/openapi.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routed);
    for (_, ops) in doc["paths"].as_object().unwrap() {
        for (_, op) in ops.as_object().unwrap() {
            assert!(op["responses"]["401"].is_object(), "{op}");
        }
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn every_route_refuses_unauthenticated_calls_and_answers_with_the_token(pool: PgPool) {
    let h = harness(pool, &small_spec(40), None).await;
    let base = serve(&h).await;
    // Data to show: a full item sync and a comparison.
    let p = h.processor();
    h.start(
        &["item", "location", "price_book", "contact"],
        SyncMode::Full,
    )
    .await;
    h.drain(&p).await;

    for (method, path) in ROUTES {
        let path = concrete(path);
        for token in [None, Some("wrong-token")] {
            let (status, body) = call(&base, method, &path, token, json!({})).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert!(body["error"].as_str().is_some(), "{body}");
        }
    }
    let ok = |s: StatusCode| s.is_success() || s == StatusCode::NOT_FOUND;
    for (method, path) in ROUTES {
        let path = concrete(path);
        let body = match path.as_str() {
            "/api/tds/stock/sync" => {
                json!({"mode": "items", "item_ids": [crate::scheduled_sync::id_of(tds_zoho_sim::Collection::Items, &crate::scheduled_sync::goods(&h)[0])]})
            }
            "/api/tds/statistics/sync-differences" => json!({"dry_run": true}),
            "/api/tds/sync" => json!({"entity": "location", "mode": "full"}),
            _ => json!({}),
        };
        let (status, answer) = call(&base, method, &path, Some(TOKEN), body).await;
        assert!(ok(status), "{method} {path}: {status} {answer}");
        assert!(answer.is_object(), "{method} {path}: {answer}");
    }

    // Shapes and behaviour of the main routes.
    let (s, health) = call(&base, "get", "/api/tds/health", Some(TOKEN), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(health["status"], "healthy", "{health}");
    let (_, status) = call(&base, "get", "/api/tds/status", Some(TOKEN), json!({})).await;
    assert_eq!(status["entities"]["item"]["rows"], 40);
    let (s, started) = call(
        &base,
        "post",
        "/api/tds/sync",
        Some(TOKEN),
        json!({"entity": "invoice", "mode": "full"}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let run_id = started["run_ids"][0].as_i64().unwrap();
    let (s, run) = call(
        &base,
        "get",
        &format!("/api/tds/sync-runs/{run_id}"),
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert_eq!(
        (s, run["entity"].as_str()),
        (StatusCode::OK, Some("invoice"))
    );
    let (s, _) = call(
        &base,
        "get",
        "/api/tds/sync-runs/999999",
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, page) = call(
        &base,
        "get",
        "/api/tds/sync-runs?limit=2&entity=item",
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert!(page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["entity"] == "item"));
    assert!(page["runs"].as_array().unwrap().len() <= 2);
    let (_, cmp) = call(
        &base,
        "get",
        "/api/tds/statistics/overview",
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert!(cmp["match_pct"].is_number(), "{cmp}");

    // Clear errors.
    for (method, path, body, needle) in [
        (
            "post",
            "/api/tds/sync",
            json!({"entity": "widgets"}),
            "widgets",
        ),
        (
            "post",
            "/api/tds/sync",
            json!({"mode": "sometimes"}),
            "sometimes",
        ),
        ("get", "/api/tds/sync-runs?limit=0", json!({}), "limit"),
        ("get", "/api/tds/sync-runs?status=lost", json!({}), "status"),
        ("get", "/api/tds/sync-runs/abc", json!({}), "number"),
        ("get", "/api/tds/status?org_id=42", json!({}), "42"),
        ("post", "/api/tds/stock/sync", json!({}), "empty"),
        (
            "post",
            "/api/tds/statistics/sync-differences",
            json!({"colour": 1}),
            "colour",
        ),
    ] {
        let (s, answer) = call(&base, method, path, Some(TOKEN), body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{path}: {answer}"
        );
    }
    let (s, answer) = call(
        &base,
        "get",
        "/api/tds/entities/widget/1",
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("widget"),
        "{answer}"
    );
    let (s, _) = call(&base, "get", "/api/tds/nope", Some(TOKEN), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Dead letters: listed with their reason, then retried back onto the inbox.
    let reason_body = json!({"reason": "not an inbox message", "failed_at": "2026-11-26T00:00:00Z", "original": "garbage"});
    tds_core::ports::Queue::send(&*h.dlq, reason_body.to_string())
        .await
        .unwrap();
    let (_, dl) = call(&base, "get", "/api/tds/deadletter", Some(TOKEN), json!({})).await;
    assert_eq!(dl["messages"][0]["reason"], "not an inbox message");
    let (_, health) = call(&base, "get", "/api/tds/health", Some(TOKEN), json!({})).await;
    assert_eq!(health["status"], "degraded", "{health}");
    let (_, moved) = call(
        &base,
        "post",
        "/api/tds/deadletter/retry",
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert_eq!(moved["moved"], 1);
}
