//! Webhook authentication and normalisation (`tds_core::webhook`), fed by the simulator's outbound
//! webhooks over real HTTP in every shape Zoho sends, and by hand-made bad deliveries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::HeaderMap;
use chrono::Utc;
use serde_json::{json, Map, Value};
use tds_core::webhook::{
    normalize, parse_urlencoded, verify, Action, InboxMessage, SecretPlace, WebhookAuth,
    WebhookError, WebhookRequest, MAX_BODY_BYTES,
};
use tds_core::EntityKind;
use tds_zoho_sim::{Collection, DemoSpec, Simulator, WebhookConfig};

const ORG: &str = "60001234567";
type Seen = Arc<Mutex<Vec<Result<InboxMessage, WebhookError>>>>;
/// headers, query, body, expected status, expected words in the message.
type BadCase = (
    Vec<(String, String)>,
    Vec<(String, String)>,
    &'static [u8],
    u16,
    &'static str,
);

/// An HTTP receiver that authenticates and normalises every delivery, as webhook-ingest will.
async fn ingest(auth: WebhookAuth) -> (String, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/webhooks/zoho/{org}",
        axum::routing::post(
            move |axum::extract::Path(org): axum::extract::Path<String>,
                  RawQuery(q): RawQuery,
                  headers: HeaderMap,
                  body: Bytes| {
                let (store, auth) = (store.clone(), auth.clone());
                async move {
                    let query = parse_urlencoded(q.as_deref().unwrap_or(""));
                    let headers: Vec<(String, String)> = headers
                        .iter()
                        .map(|(k, v)| {
                            (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                        })
                        .collect();
                    let content_type = headers
                        .iter()
                        .find(|(k, _)| k == "content-type")
                        .map(|(_, v)| v.clone());
                    let req = WebhookRequest {
                        org_id: &org,
                        route_action: None,
                        content_type: content_type.as_deref(),
                        query: &query,
                        headers: &headers,
                        body: &body,
                    };
                    let result = verify(&auth, &req).and_then(|()| normalize(&req, Utc::now()));
                    let status = result.as_ref().err().map_or(200, WebhookError::status);
                    store.lock().unwrap().push(result);
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/zoho/{ORG}",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn wait_for(seen: &Seen, n: usize) -> Vec<Result<InboxMessage, WebhookError>> {
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::mem::take(&mut *seen.lock().unwrap())
}

fn fields(v: Value) -> Map<String, Value> {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn simulator_webhooks_in_every_shape_authenticate_and_normalise() {
    let sim = Simulator::demo(&DemoSpec {
        items: 20,
        ..DemoSpec::default()
    });
    let item_id = sim.with_state(|s| {
        s.orgs[ORG].collection(Collection::Items).next().unwrap()["item_id"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let running = sim.clone().serve_local().await.unwrap();
    let _keep = running;

    // JSON body, header secret, raw-body signature, action in the URL, every delivery duplicated.
    let auth = WebhookAuth {
        static_secret: Some((
            SecretPlace::Header("x-tds-secret".into()),
            "s3cret-header-value".into(),
        )),
        signing_secret: Some("SigningKey12345".into()),
    };
    let (url, seen) = ingest(auth).await;
    sim.configure_webhooks(Some(WebhookConfig {
        url: url.clone(),
        include_action: true,
        header_secret: Some(("X-TDS-Secret".into(), "s3cret-header-value".into())),
        signing_secret: Some("SigningKey12345".into()),
        duplicate_rate: 1.0,
        ..WebhookConfig::default()
    }));
    let edited = sim
        .upsert(
            ORG,
            Collection::Items,
            fields(json!({"item_id": item_id, "rate": 42.5})),
        )
        .unwrap();
    let got = wait_for(&seen, 2).await;
    assert_eq!(got.len(), 2);
    let (a, b) = (got[0].clone().unwrap(), got[1].clone().unwrap());
    assert_eq!(a.kind, EntityKind::Item);
    assert_eq!(a.zoho_id, item_id);
    assert_eq!(a.action, Action::Edited);
    assert_eq!(a.org_id, ORG);
    assert_eq!(a.payload["rate"], 42.5);
    assert_eq!(
        a.last_modified_time,
        tds_core::fields::parse_zoho_timestamp(edited["last_modified_time"].as_str().unwrap())
    );
    assert_eq!(
        a.dedupe_key, b.dedupe_key,
        "a duplicate delivery has the same dedupe key"
    );

    // Form body, query secret, Billing's canonical signature; a created invoice, then a deletion.
    let auth = WebhookAuth {
        static_secret: Some((SecretPlace::Query("token".into()), "q-secret-123".into())),
        signing_secret: Some("OtherKey9876543".into()),
    };
    let (url, seen) = ingest(auth).await;
    sim.configure_webhooks(Some(WebhookConfig {
        url,
        format: "form".into(),
        include_action: true,
        query_secret: Some(("token".into(), "q-secret-123".into())),
        signing_secret: Some("OtherKey9876543".into()),
        signature_scheme: "canonical".into(),
        ..WebhookConfig::default()
    }));
    let invoice = sim
        .upsert(
            ORG,
            Collection::Invoices,
            fields(json!({"invoice_number": "INV-WH-1", "total": 12})),
        )
        .unwrap();
    sim.delete(ORG, Collection::Items, &item_id).unwrap();
    let got = wait_for(&seen, 2).await;
    let created = got[0].clone().unwrap();
    assert_eq!(created.kind, EntityKind::Invoice);
    assert_eq!(created.action, Action::Created);
    assert_eq!(created.zoho_id, invoice["invoice_id"].as_str().unwrap());
    assert!(
        created.payload.get("line_items").is_none(),
        "webhooks omit line items: the processor re-fetches"
    );
    let deleted = got[1].clone().unwrap();
    assert_eq!(
        (deleted.kind, deleted.action),
        (EntityKind::Item, Action::Deleted)
    );
    assert_ne!(deleted.dedupe_key, created.dedupe_key);

    // A receiver with another key refuses the signature with 401, and says why.
    let (url, seen) = ingest(WebhookAuth {
        static_secret: None,
        signing_secret: Some("NotTheKey000000".into()),
    })
    .await;
    sim.configure_webhooks(Some(WebhookConfig {
        url,
        signing_secret: Some("OtherKey9876543".into()),
        attempts: 1,
        ..WebhookConfig::default()
    }));
    sim.upsert(
        ORG,
        Collection::Invoices,
        fields(json!({"invoice_id": invoice["invoice_id"], "total": 13})),
    )
    .unwrap();
    let got = wait_for(&seen, 1).await;
    let err = got[0].clone().unwrap_err();
    assert_eq!(err.status(), 401);
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn bad_deliveries_are_refused_with_the_reason_and_status() {
    let auth = WebhookAuth {
        static_secret: Some((
            SecretPlace::Header("x-tds-secret".into()),
            "right-secret".into(),
        )),
        signing_secret: None,
    };
    let good_headers = vec![("x-tds-secret".to_string(), "right-secret".to_string())];
    let check = |headers: &[(String, String)],
                 query: &[(String, String)],
                 content_type: Option<&str>,
                 body: &[u8]| {
        let req = WebhookRequest {
            org_id: ORG,
            route_action: None,
            content_type,
            query,
            headers,
            body,
        };
        verify(&auth, &req).and_then(|()| normalize(&req, Utc::now()))
    };
    let json_type = Some("application/json");
    let body = br#"{"item": {"item_id": "4815000000044208", "last_modified_time": "2024-02-01T10:54:54+0200"}}"#;

    let ok = check(&good_headers, &[], json_type, body).unwrap();
    assert_eq!(
        ok.action,
        Action::Upserted,
        "no action in route or query: re-fetch and upsert"
    );

    let cases: Vec<BadCase> = vec![
        (
            vec![],
            vec![],
            body,
            401,
            "missing secret in header x-tds-secret",
        ),
        (
            vec![("x-tds-secret".into(), "wrong".into())],
            vec![],
            body,
            401,
            "wrong secret",
        ),
        (good_headers.clone(), vec![], b"", 400, "empty"),
        (good_headers.clone(), vec![], b"  \n", 400, "empty"),
        (good_headers.clone(), vec![], b"{not json", 400, "not JSON"),
        (good_headers.clone(), vec![], b"[1,2]", 400, "JSON object"),
        (
            good_headers.clone(),
            vec![],
            br#"{"gadget": {"id": "1"}}"#,
            422,
            "expected one of: item",
        ),
        (
            good_headers.clone(),
            vec![],
            br#"{"item": {"name": "no id"}}"#,
            422,
            "no item_id",
        ),
        (
            good_headers.clone(),
            vec![("action".into(), "exploded".into())],
            body,
            422,
            "unknown action",
        ),
    ];
    for (headers, query, body, status, message) in cases {
        let err = check(&headers, &query, json_type, body).unwrap_err();
        assert_eq!(err.status(), status, "{err}");
        assert!(
            err.to_string().contains(message),
            "{err} should say {message}"
        );
    }
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    assert_eq!(
        check(&good_headers, &[], json_type, &big)
            .unwrap_err()
            .status(),
        413
    );

    // Numeric ids and the legacy JSONString form field are accepted.
    let msg = check(
        &good_headers,
        &[],
        json_type,
        br#"{"salesorder": {"salesorder_id": 4815000000090001}}"#,
    )
    .unwrap();
    assert_eq!(
        (msg.kind, msg.zoho_id.as_str()),
        (EntityKind::SalesOrder, "4815000000090001")
    );
    let form = b"JSONString=%7B%22payment%22%3A%7B%22payment_id%22%3A%229030000079467%22%7D%7D";
    let msg = check(
        &good_headers,
        &[],
        Some("application/x-www-form-urlencoded"),
        form,
    )
    .unwrap();
    assert_eq!(msg.kind, EntityKind::CustomerPayment);

    // No secret configured at all: refuse rather than accept anything.
    let open = WebhookAuth {
        static_secret: None,
        signing_secret: None,
    };
    let req = WebhookRequest {
        org_id: ORG,
        route_action: None,
        content_type: json_type,
        query: &[],
        headers: &[],
        body,
    };
    assert_eq!(verify(&open, &req).unwrap_err().status(), 401);
    // Blank secrets count as none: an empty HMAC key would let anyone sign.
    let blank = WebhookAuth {
        static_secret: Some((SecretPlace::Query("token".into()), "".into())),
        signing_secret: Some("  ".into()),
    };
    let err = verify(&blank, &req).unwrap_err();
    assert_eq!(err.status(), 401);
    assert!(err.to_string().contains("empty"), "{err}");

    let shown = format!("{auth:?}");
    assert!(!shown.contains("right-secret"), "{shown}");

    // A request's Debug names its headers and query parameters but never shows their values.
    let headers = [(
        "x-tds-webhook-secret".to_string(),
        "right-secret-in-a-header".to_string(),
    )];
    let query = [("token".to_string(), "right-secret-in-the-query".to_string())];
    let req = WebhookRequest {
        org_id: ORG,
        route_action: None,
        content_type: json_type,
        query: &query,
        headers: &headers,
        body,
    };
    let shown = format!("{req:?}");
    assert!(
        shown.contains("x-tds-webhook-secret") && shown.contains("token"),
        "{shown}"
    );
    assert!(!shown.contains("right-secret"), "{shown}");
}

#[test]
fn two_edits_in_one_second_are_two_messages_and_a_retry_is_one() {
    let at = |rate: f64| {
        serde_json::to_vec(
            &json!({"item": {"item_id": "4815000000044208", "name": "Bag", "rate": rate,
            "last_modified_time": "2024-02-01T10:54:54+0200"}}),
        )
        .unwrap()
    };
    let key = |body: &[u8]| {
        let req = WebhookRequest {
            org_id: ORG,
            route_action: Some("edited"),
            content_type: Some("application/json"),
            query: &[],
            headers: &[],
            body,
        };
        normalize(&req, chrono::Utc::now()).unwrap().dedupe_key
    };
    let (first, second) = (at(6.0), at(7.0));
    assert_eq!(key(&first), key(&first), "Zoho's retry of a delivery");
    assert_ne!(
        key(&first),
        key(&second),
        "a second edit within the same second is not a duplicate"
    );
}
