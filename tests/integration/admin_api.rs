//! The admin API over real HTTP against PostgreSQL, the simulator and the local queue twins: every
//! route refuses unauthenticated calls with 401, answers with the token, and its shapes are those the
//! OpenAPI document names; the document and the router list the same routes. On AWS, the admin-api
//! Lambda lets through the callers API Gateway's IAM or JWT authorizer verified, and no one else
//! without a token (driven with the sample events in events/admin-api).

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tds_admin::{documented_routes, router, Admin};
use tds_local::LocalRedrive;
use tds_store::AlertSeverity;
use tds_sync::SyncMode;

use crate::harness::{harness, small_spec, Harness, ORG};

pub(crate) const TOKEN: &str = "test-admin-token-0123456789";

fn admin(h: &Harness) -> Arc<Admin> {
    Arc::new(Admin {
        store: h.store.clone(),
        runner: h.processor().runner().clone(),
        comparator: h.comparator(),
        poller: h.app().poller(),
        inbox: h.inbox.clone(),
        dead_letters: h.dlq.clone(),
        redrive: Arc::new(LocalRedrive {
            source: h.inbox.clone(),
            dead_letter: h.dlq.clone(),
        }),
        tokens: vec![TOKEN.into()],
        dashboard: Default::default(),
    })
}

pub(crate) async fn serve(h: &Harness) -> String {
    let admin = admin(h);
    assert!(!format!("{admin:?}").contains(TOKEN));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(admin)).await.unwrap() });
    format!("http://{addr}")
}

fn concrete(path: &str) -> String {
    path.replace("{kind}", "item")
        .replace("{id}", "1")
        .replace("{group}", "items")
}

pub(crate) async fn call(
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

/// The committed document: `TDS_UPDATE_OPENAPI=1 cargo test -p tds-tests --test integration --
/// admin_api::the_openapi` writes it from the code.
const OPENAPI_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/admin/openapi.json");

#[test]
fn the_openapi_document_is_generated_from_the_routes_and_committed() {
    let generated = serde_json::to_string_pretty(&tds_admin::openapi()).unwrap() + "\n";
    if std::env::var_os("TDS_UPDATE_OPENAPI").is_some() {
        std::fs::write(OPENAPI_PATH, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(OPENAPI_PATH).unwrap();
    assert!(
        committed == generated,
        "shared/admin/openapi.json is not what the code generates: run \
         TDS_UPDATE_OPENAPI=1 cargo test -p tds-tests --test integration -- admin_api::the_openapi"
    );
    let doc: Value = serde_json::from_str(&committed).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k == "get" || *k == "post")
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    let listed: BTreeSet<(String, String)> = documented_routes().into_iter().collect();
    assert_eq!(documented, listed);
    assert!(documented.len() >= 22, "{documented:?}");
    for (_, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if method != "get" && method != "post" {
                continue;
            }
            assert!(op["responses"]["401"].is_object(), "{op}");
            // Every success answer has a real schema, not a bare object.
            let ok = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(code, _)| code.starts_with('2'))
                .map(|(_, r)| r["content"]["application/json"]["schema"].clone())
                .unwrap_or(Value::Null);
            assert!(ok["$ref"].is_string(), "{method} {op}: {ok}");
        }
    }
}

/// The schema of `method path`'s answer with `status`, from the generated document, resolvable on
/// its own (the document's components ride along).
fn answer_schema(doc: &Value, method: &str, path: &str, status: StatusCode) -> Option<Value> {
    let schema = doc["paths"][path][method]["responses"][status.as_str()]["content"]
        ["application/json"]["schema"]
        .clone();
    if schema.is_null() {
        return None;
    }
    Some(json!({"$ref": schema["$ref"], "components": doc["components"]}))
}

/// Fails unless `answer` is valid under `method path`'s documented schema for `status`.
fn assert_documented(doc: &Value, method: &str, path: &str, status: StatusCode, answer: &Value) {
    let schema = answer_schema(doc, method, path, status)
        .unwrap_or_else(|| panic!("{method} {path} answered {status}, which is not documented"));
    tds_tests::conforms_to(&format!("{method} {path} {status}"), &schema, answer);
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

    let routes = documented_routes();
    for (method, path) in &routes {
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
    let doc = serde_json::to_value(tds_admin::openapi()).unwrap();
    for (method, documented) in &routes {
        let path = concrete(documented);
        let body = match path.as_str() {
            "/api/tds/stock/sync" => {
                json!({"mode": "items", "item_ids": [crate::harness::id_of(tds_zoho_sim::Collection::Items, &crate::harness::goods(&h)[0])]})
            }
            "/api/tds/statistics/sync-differences" => json!({"dry_run": true}),
            "/api/tds/sync" => json!({"entity": "location", "mode": "full"}),
            _ => json!({}),
        };
        let (status, answer) = call(&base, method, &path, Some(TOKEN), body).await;
        // Routed (the fallback's 404 says "no such route"), and answered as documented.
        assert_ne!(answer["error"], "no such route", "{method} {path}");
        assert!(
            status.is_success() || status == StatusCode::NOT_FOUND,
            "{method} {path}: {status} {answer}"
        );
        assert_documented(&doc, method, documented, status, &answer);
    }

    // Shapes and behaviour of the main routes.
    // The comparison above found the kinds this test never synced missing: its open critical drift
    // alert makes TDS unhealthy (the parts themselves answer), and health says why.
    let (s, health) = call(&base, "get", "/api/tds/health", Some(TOKEN), json!({})).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["status"], "unhealthy", "{health}");
    assert_eq!(health["database"]["ok"], true, "{health}");
    assert!(
        health["reasons"]
            .to_string()
            .contains("critical drift alert"),
        "{health}"
    );
    // Dealt with (resolved), TDS is healthy again.
    h.store.resolve_alert(ORG, "drift").await.unwrap();
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
    assert!(started.get("reason").is_none(), "{started}");
    // The same again while that run is in progress: nothing starts, and the answer says why.
    let (s, again) = call(
        &base,
        "post",
        "/api/tds/sync",
        Some(TOKEN),
        json!({"entity": "invoice", "mode": "full"}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(again["run_ids"], json!([]));
    assert!(
        again["reason"]
            .as_str()
            .unwrap()
            .contains("already in progress"),
        "{again}"
    );
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
        ("get", "/api/tds/sync-runs?offset=-1", json!({}), "offset"),
        // Malformed numbers: the extractor's rejection, as JSON like every other error.
        ("get", "/api/tds/sync-runs?limit=ten", json!({}), "limit"),
        (
            "get",
            "/api/tds/sync-runs?offset=99999999999999999999",
            json!({}),
            "offset",
        ),
        // PostgreSQL text cannot hold a NUL byte: refused before any query.
        ("get", "/api/tds/sync-runs?org_id=6%00", json!({}), "NUL"),
        ("get", "/api/tds/status?org_id=%00", json!({}), "NUL"),
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
    // The largest offset is a page past the end, not an overflow.
    let (s, answer) = call(
        &base,
        "get",
        &format!("/api/tds/sync-runs?offset={}", i64::MAX),
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    assert_eq!(answer["runs"], json!([]));

    // Zoho refuses every call (HTTP 200 with an error code, after the client's retries): the
    // comparison fails upstream (502), not as the caller's mistake (400); and an unknown
    // organisation is the caller's (400).
    h.sim.sim.configure(|c| c.http200_error_rate = 1.0);
    let (s, answer) = call(
        &base,
        "post",
        "/api/tds/statistics/sync-differences",
        Some(TOKEN),
        json!({"heal": false, "entities": ["item"]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{answer}");
    h.sim.sim.configure(|c| c.http200_error_rate = 0.0);
    let (s, answer) = call(
        &base,
        "post",
        "/api/tds/statistics/sync-differences",
        Some(TOKEN),
        json!({"org_id": "999"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("unknown organisation"),
        "{answer}"
    );

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

/// An HTTP API event from events/admin-api, as lambda_http hands it to the router.
fn gateway_event(name: &str) -> lambda_http::Request {
    let path = format!("{}/../events/admin-api/{name}", env!("CARGO_MANIFEST_DIR"));
    lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn through_lambda(app: &axum::Router, request: lambda_http::Request) -> (StatusCode, Value) {
    use lambda_http::tower::ServiceExt;
    let response = app.clone().oneshot(request).await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let bytes = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn the_lambda_accepts_callers_the_gateway_authorizer_verified_and_no_one_else(pool: PgPool) {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let h = harness(pool, &small_spec(5), None).await;
    let app = admin_api::app(admin(&h));

    // Who the authorizer says called.
    let caller = |name: &str| {
        gateway_event(name)
            .request_context_ref()
            .and_then(admin_api::gateway_caller)
    };
    assert_eq!(
        caller("health-iam.json").as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/tds-operators/operator")
    );
    assert_eq!(
        caller("sync-items-jwt.json").as_deref(),
        Some("jwt:8c1e0f2a-5d1b-4c55-9d41-0c6c1e7d2b11")
    );
    assert_eq!(caller("bff-status-no-authorizer.json"), None);
    // An authorizer block with nothing verified in it is no identity.
    let mut empty = gateway_event("health-iam.json");
    if let Some(RequestContext::ApiGatewayV2(ctx)) =
        empty.extensions_mut().get_mut::<RequestContext>()
    {
        let iam = ctx.authorizer.as_mut().unwrap().iam.as_mut().unwrap();
        iam.user_arn = None;
        iam.caller_id = Some(String::new());
    } else {
        panic!("no HTTP API request context");
    }
    assert_eq!(
        empty
            .request_context_ref()
            .and_then(admin_api::gateway_caller),
        None
    );
    let (status, _) = through_lambda(&app, empty).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // IAM: health and the run list answer without any bearer token.
    let (status, health) = through_lambda(&app, gateway_event("health-iam.json")).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert!(health["status"].is_string(), "{health}");
    let (status, runs) = through_lambda(&app, gateway_event("sync-runs-iam.json")).await;
    assert_eq!(status, StatusCode::OK, "{runs}");

    // JWT: the sync starts (a run row and a job on the inbox).
    let (status, started) = through_lambda(&app, gateway_event("sync-items-jwt.json")).await;
    assert!(status.is_success(), "{status} {started}");
    let depth = tds_core::ports::Queue::stats(h.inbox.as_ref())
        .await
        .unwrap();
    assert!(depth.visible >= 1, "{depth:?}");

    // No authorizer: 401 without a token or with a wrong one, the route with the right one.
    let (status, body) = through_lambda(&app, gateway_event("bff-status-no-authorizer.json")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("bearer"), "{body}");
    for (token, want) in [
        ("wrong-token-0123456789", StatusCode::UNAUTHORIZED),
        (TOKEN, StatusCode::OK),
    ] {
        let mut request = gateway_event("bff-status-no-authorizer.json");
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (status, body) = through_lambda(&app, request).await;
        assert_eq!(status, want, "{body}");
    }

    // A client cannot claim an identity with a header: only the authorizer's context counts.
    let mut forged = gateway_event("bff-status-no-authorizer.json");
    forged.headers_mut().insert(
        "x-amzn-oidc-identity",
        "arn:aws:iam::123456789012:root".parse().unwrap(),
    );
    let (status, _) = through_lambda(&app, forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn admin_token_secrets_hold_one_token_or_a_rotation_list() {
    assert_eq!(
        admin_api::tokens("  a-single-token-of-32-characters  ").unwrap(),
        vec!["a-single-token-of-32-characters"]
    );
    assert_eq!(
        admin_api::tokens(
            r#"{"tokens": ["new-token-0123456789", "short", "old-token-0123456789"]}"#
        )
        .unwrap(),
        vec!["new-token-0123456789", "old-token-0123456789"]
    );
    for bad in [
        "short",
        r#"{"tokens": []}"#,
        r#"{"token": "misnamed-0123456789"}"#,
    ] {
        let e = admin_api::tokens(bad).unwrap_err();
        assert!(e.contains("at least 16 characters"), "{e}");
        assert!(!e.contains("misnamed"), "{e}");
    }
}

/// Health folds in TDS's own verdict about the data: an open critical drift alert is unhealthy, a
/// warning degraded, and resolving it brings health back; each says why.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn health_reflects_open_drift_alerts_both_ways(pool: PgPool) {
    let h = harness(pool, &small_spec(10), None).await;
    let base = serve(&h).await;
    let health = || async {
        let (status, body) = call(&base, "get", "/api/tds/health", Some(TOKEN), json!({})).await;
        (
            status,
            body["status"].as_str().unwrap_or_default().to_string(),
            body,
        )
    };
    let (status, level, body) = health().await;
    assert_eq!(
        (status, level.as_str()),
        (StatusCode::OK, "healthy"),
        "{body}"
    );

    let drift = |severity: AlertSeverity, message: &'static str| {
        let store = h.store.clone();
        async move {
            let details = json!({"report_id": 1});
            store
                .raise_alert(ORG, severity, "drift", message, &details, "drift")
                .await
                .unwrap();
        }
    };
    drift(AlertSeverity::Critical, "PostgreSQL matches Zoho at 47.0 %").await;
    let (status, level, body) = health().await;
    assert_eq!(
        (status, level.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy"),
        "{body}"
    );
    let reasons = body["reasons"].to_string();
    assert!(
        reasons.contains("critical drift alert") && reasons.contains("47.0 %"),
        "{reasons}"
    );

    // The same open alert lowered to a warning: degraded.
    drift(AlertSeverity::Warning, "PostgreSQL matches Zoho at 93.0 %").await;
    let (status, level, body) = health().await;
    assert_eq!(
        (status, level.as_str()),
        (StatusCode::OK, "degraded"),
        "{body}"
    );

    h.store.resolve_alert(ORG, "drift").await.unwrap();
    let (status, level, body) = health().await;
    assert_eq!(
        (status, level.as_str()),
        (StatusCode::OK, "healthy"),
        "{body}"
    );
}

/// More of the bad-input corpus, route by route: each answer is JSON with the status a client can act
/// on and a reason that names what was wrong.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn a_corpus_of_bad_admin_requests_gets_clear_json_answers(pool: PgPool) {
    let h = harness(pool, &small_spec(10), None).await;
    let base = serve(&h).await;
    let cases: [(&str, &str, &str, u16, &str); 32] = [
        (
            "post",
            "/api/tds/sync",
            r#""not json""#,
            400,
            "invalid JSON body",
        ),
        (
            "post",
            "/api/tds/sync",
            r#"{"entities": "item"}"#,
            400,
            "expected a sequence",
        ),
        (
            "post",
            "/api/tds/sync",
            r#"{"mode": 5}"#,
            400,
            "invalid JSON body",
        ),
        (
            "post",
            "/api/tds/sync",
            r#"{"entity": "item", "org_id": "999"}"#,
            400,
            "unknown organisation 999",
        ),
        (
            "post",
            "/api/tds/sync",
            r#"{"entity": "item", "extra": true}"#,
            400,
            "unknown field `extra`",
        ),
        (
            "post",
            "/api/tds/sync",
            r#"{"entities": ["item", "gadget"]}"#,
            400,
            "gadget",
        ),
        (
            "get",
            "/api/tds/sync-runs?limit=501",
            "null",
            400,
            "between 1 and 500",
        ),
        (
            "get",
            "/api/tds/sync-runs?limit=-5",
            "null",
            400,
            "between 1 and 500",
        ),
        (
            "get",
            "/api/tds/sync-runs?status=",
            "null",
            400,
            "status must be",
        ),
        (
            "get",
            "/api/tds/sync-runs?entity=x%00",
            "null",
            400,
            "NUL byte",
        ),
        (
            "get",
            "/api/tds/sync-runs/99999999999999999999",
            "null",
            400,
            "must be a number",
        ),
        (
            "get",
            "/api/tds/sync-runs/-",
            "null",
            400,
            "must be a number",
        ),
        ("get", "/api/tds/deadletter?limit=abc", "null", 400, "limit"),
        (
            "post",
            "/api/tds/deadletter/retry",
            r#"{"max": -1}"#,
            400,
            "expected usize",
        ),
        (
            "post",
            "/api/tds/deadletter/retry",
            r#""junk""#,
            400,
            "invalid JSON body",
        ),
        (
            "post",
            "/api/tds/stock/sync",
            r#"{"mode": "warehouse"}"#,
            400,
            "warehouse_id",
        ),
        (
            "post",
            "/api/tds/stock/sync",
            r#"{"mode": "items"}"#,
            400,
            "item_ids",
        ),
        (
            "post",
            "/api/tds/stock/sync",
            r#"{"mode": "sideways"}"#,
            400,
            "sideways",
        ),
        (
            "post",
            "/api/tds/stock/sync",
            r#"{"mode": "full", "threshold": "x"}"#,
            400,
            "expected f64",
        ),
        (
            "post",
            "/api/tds/stock/sync",
            r#"{"mode": "full", "org_id": "999"}"#,
            400,
            "unknown organisation",
        ),
        (
            "get",
            "/api/tds/statistics/widgets",
            "null",
            404,
            "no statistics group widgets",
        ),
        (
            "get",
            "/api/tds/statistics/history?entity=%00",
            "null",
            400,
            "NUL byte",
        ),
        (
            "get",
            "/api/tds/statistics/history?limit=many",
            "null",
            400,
            "limit",
        ),
        (
            "post",
            "/api/tds/statistics/sync-differences",
            r#"{"entities": ["widgets"]}"#,
            400,
            "widgets",
        ),
        (
            "post",
            "/api/tds/statistics/sync-differences",
            r#"{"thresholds": {"gizmo": 1}}"#,
            400,
            "gizmo",
        ),
        (
            "post",
            "/api/tds/statistics/sync-differences",
            r#"{"heal": "yes"}"#,
            400,
            "expected a boolean",
        ),
        (
            "post",
            "/api/tds/statistics/sync-differences",
            "[1, 2]",
            400,
            "invalid statistics input",
        ),
        (
            "get",
            "/api/tds/alerts?org_id=999",
            "null",
            400,
            "unknown organisation",
        ),
        (
            "get",
            "/api/tds/cursors?org_id=999",
            "null",
            400,
            "unknown organisation",
        ),
        (
            "get",
            "/api/tds/entities/item/1%00",
            "null",
            400,
            "NUL byte",
        ),
        (
            "get",
            "/api/tds/status?org_id=1%27%3B",
            "null",
            400,
            "unknown organisation",
        ),
        (
            "get",
            "/api/tds/statistics/overview?org_id=999",
            "null",
            400,
            "unknown organisation",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let body: Value = serde_json::from_str(body).unwrap();
        let (s, answer) = call(&base, method, path, Some(TOKEN), body).await;
        assert_eq!(s.as_u16(), status, "{method} {path}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains(needle)),
            "{method} {path}: {answer}"
        );
    }
}

/// `/api/tds/metrics`: the seeds' monitoring figures from what the database recorded.
#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn metrics_report_throughput_sync_time_errors_and_api_calls_from_the_database(pool: PgPool) {
    let h = harness(pool, &small_spec(10), None).await;
    let processor = h.processor();
    h.start(&["contact", "invoice"], SyncMode::Full).await;
    h.drain(&processor).await;
    let base = serve(&h).await;
    let (status, m) = call(
        &base,
        "get",
        "/api/tds/metrics?hours=2",
        Some(TOKEN),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    let runs = h.store.recent_runs(None, 10).await.unwrap();
    assert_eq!(m["runs_finished"], runs.len() as i64, "{m}");
    assert_eq!(m["runs_failed"], 0);
    assert_eq!(m["error_rate"], 0.0);
    let fetched: i64 = runs.iter().map(|r| r.counts.fetched).sum();
    let calls: i64 = runs.iter().map(|r| r.counts.api_calls).sum();
    assert!(fetched > 0 && calls > 0, "{runs:?}");
    assert_eq!(m["records_synced"], fetched);
    assert_eq!(m["api_calls"], calls);
    assert_eq!(m["api_calls_per_hour"], calls as f64 / 2.0);
    assert_eq!(m["throughput_per_minute"], fetched as f64 / 120.0);
    assert!(m["average_sync_ms"].as_f64().unwrap() >= 0.0);
    let series = m["series"].as_array().unwrap();
    assert!(
        (2..=3).contains(&series.len()),
        "one entry per hour: {series:?}"
    );
    let in_series: i64 = series
        .iter()
        .map(|s| s["records_synced"].as_i64().unwrap())
        .sum();
    assert_eq!(in_series, fetched);
    for bad in ["0", "721", "soon"] {
        let (status, e) = call(
            &base,
            "get",
            &format!("/api/tds/metrics?hours={bad}"),
            Some(TOKEN),
            json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {e}");
        assert!(e["error"].is_string(), "{e}");
    }
}
