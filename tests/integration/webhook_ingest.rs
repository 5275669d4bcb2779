//! webhook-ingest's handler: API Gateway requests in, inbox messages out. With the local twins for
//! every answer it can give, and end to end with the simulator's webhooks over HTTP, Secrets Manager
//! and SQS in moto.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Request};
use serde_json::{json, Value};
use tds_core::ingest::{SecretWebhookAuth, WebhookIngest};
use tds_core::ports::{
    CachedSecrets, PortError, PortFuture, Queue, QueueStats, ReceivedMessage, SecretStore,
};
use tds_core::webhook::{Action, InboxMessage};
use tds_core::EntityKind;
use tds_local::{LocalQueue, MemorySecrets};
use tds_tests::Moto;
use tds_zoho_sim::{Collection, DemoSpec, Simulator, WebhookConfig};

const ORG: &str = "60001234567";
/// path, headers, body, expected status, words the error must contain.
type Refusal<'a> = (String, Vec<(&'a str, &'a str)>, String, u16, &'a str);

pub(crate) fn credentials_doc() -> String {
    json!({"organizations": [{
        "organization_id": ORG, "client_id": "1000.X", "client_secret": "cs", "refresh_token": "rt",
        "webhook": {"header": "X-TDS-Webhook-Secret", "secret": "wh-secret-123", "signing_secret": "SignKey123456"}
    }]})
    .to_string()
}

pub(crate) fn request(path: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut b = lambda_http::http::Request::builder()
        .method("POST")
        .uri(format!("https://api.example{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::Text(body.to_string())).unwrap()
}

pub(crate) fn sign(body: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"SignKey123456").unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) async fn call(ingest: &WebhookIngest, req: Request) -> (u16, Value) {
    let resp = webhook_ingest::handle(ingest, req).await;
    let status = resp.status().as_u16();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("{other:?}"),
    };
    (status, body)
}

struct FailingQueue;

impl Queue for FailingQueue {
    fn send(&self, _body: String) -> PortFuture<'_, String> {
        Box::pin(async {
            Err(PortError::Unavailable {
                port: "SQS",
                message: "connection refused".into(),
            })
        })
    }
    fn send_batch(&self, _b: Vec<String>) -> PortFuture<'_, Vec<Result<String, PortError>>> {
        Box::pin(async {
            Err(PortError::Unavailable {
                port: "SQS",
                message: "down".into(),
            })
        })
    }
    fn receive(&self, _max: usize) -> PortFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn peek(&self, _max: usize) -> PortFuture<'_, Vec<ReceivedMessage>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn delete<'a>(&'a self, _r: &'a str) -> PortFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn release<'a>(&'a self, _r: &'a str, _d: Duration) -> PortFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn stats(&self) -> PortFuture<'_, QueueStats> {
        Box::pin(async { Ok(QueueStats::default()) })
    }
}

struct DownSecrets;

impl SecretStore for DownSecrets {
    fn secret<'a>(&'a self, _name: &'a str) -> PortFuture<'a, String> {
        Box::pin(async {
            Err(PortError::Unavailable {
                port: "Secrets Manager",
                message: "timeout".into(),
            })
        })
    }
}

#[tokio::test]
async fn every_answer_the_ingest_gives() {
    let queue = LocalQueue::new("inbox", Duration::from_secs(30));
    let secrets = Arc::new(MemorySecrets::new([(
        "zoho".to_string(),
        credentials_doc(),
    )]));
    let ingest = WebhookIngest::new(
        queue.clone(),
        Arc::new(SecretWebhookAuth::new(secrets, "zoho")),
    );
    let body = r#"{"item": {"item_id": "4815000000044208", "rate": 6.000000, "last_modified_time": "2024-02-01T10:54:54+0200"}}"#;
    let sig = sign(body);
    let good = [
        ("X-TDS-Webhook-Secret", "wh-secret-123"),
        ("Content-Type", "application/json"),
        ("X-Zoho-Webhook-Signature", sig.as_str()),
    ];

    let (status, answer) = call(
        &ingest,
        request(&format!("/webhooks/zoho/{ORG}"), &good, body),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["kind"], "item");
    let queued = queue.peek_all();
    assert_eq!(queued.len(), 1);
    let message: InboxMessage = serde_json::from_str(&queued[0].0).unwrap();
    assert_eq!(
        (message.kind, message.zoho_id.as_str(), message.action),
        (EntityKind::Item, "4815000000044208", Action::Upserted)
    );
    assert_eq!(message.dedupe_key, answer["dedupe_key"].as_str().unwrap());

    let (status, _) = call(
        &ingest,
        request(&format!("/webhooks/zoho/{ORG}/deleted"), &good, body),
    )
    .await;
    assert_eq!(status, 202);
    let deleted: InboxMessage = serde_json::from_str(&queue.peek_all()[1].0).unwrap();
    assert_eq!(deleted.action, Action::Deleted);

    // Refusals: nothing is enqueued, the body says why.
    let no_secret = [
        ("Content-Type", "application/json"),
        ("X-Zoho-Webhook-Signature", sig.as_str()),
    ];
    let wrong_sig = [
        ("X-TDS-Webhook-Secret", "wh-secret-123"),
        ("Content-Type", "application/json"),
        ("X-Zoho-Webhook-Signature", "00ff"),
    ];
    let big = format!(
        r#"{{"item": {{"item_id": "1", "description": "{}"}}}}"#,
        "x".repeat(210 * 1024)
    );
    let big_sig = sign(&big);
    let bad_body_sig = sign("{oops");
    let unknown_sig = sign(r#"{"gizmo": {"id": 1}}"#);
    let cases: Vec<Refusal> = vec![
        (
            format!("/webhooks/zoho/{ORG}"),
            no_secret.to_vec(),
            body.to_string(),
            401,
            "missing secret",
        ),
        (
            format!("/webhooks/zoho/{ORG}"),
            wrong_sig.to_vec(),
            body.to_string(),
            401,
            "does not match",
        ),
        (
            "/webhooks/zoho/999".to_string(),
            good.to_vec(),
            body.to_string(),
            401,
            "no webhook secret is configured for organisation 999",
        ),
        (
            format!("/webhooks/zoho/{ORG}"),
            vec![
                ("X-TDS-Webhook-Secret", "wh-secret-123"),
                ("X-Zoho-Webhook-Signature", bad_body_sig.as_str()),
            ],
            "{oops".to_string(),
            400,
            "not JSON",
        ),
        (
            format!("/webhooks/zoho/{ORG}"),
            vec![
                ("X-TDS-Webhook-Secret", "wh-secret-123"),
                ("X-Zoho-Webhook-Signature", unknown_sig.as_str()),
            ],
            r#"{"gizmo": {"id": 1}}"#.to_string(),
            422,
            "expected one of",
        ),
        (
            format!("/webhooks/zoho/{ORG}"),
            vec![
                ("X-TDS-Webhook-Secret", "wh-secret-123"),
                ("X-Zoho-Webhook-Signature", big_sig.as_str()),
            ],
            big.clone(),
            413,
            "exceeds the limit",
        ),
        (
            "/other".to_string(),
            good.to_vec(),
            body.to_string(),
            404,
            "unknown route",
        ),
    ];
    for (path, headers, body, status, words) in cases {
        let (got, answer) = call(&ingest, request(&path, &headers, &body)).await;
        assert_eq!(got, status, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(words),
            "{answer} should say {words}"
        );
    }
    assert_eq!(
        queue.peek_all().len(),
        2,
        "nothing enqueued for refused deliveries"
    );

    // Dependencies down: 503, so Zoho retries.
    let secrets = Arc::new(MemorySecrets::new([(
        "zoho".to_string(),
        credentials_doc(),
    )]));
    let broken_queue = WebhookIngest::new(
        Arc::new(FailingQueue),
        Arc::new(SecretWebhookAuth::new(secrets, "zoho")),
    );
    let (status, answer) = call(
        &broken_queue,
        request(&format!("/webhooks/zoho/{ORG}"), &good, body),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    let broken_secrets = WebhookIngest::new(
        queue.clone(),
        Arc::new(SecretWebhookAuth::new(Arc::new(DownSecrets), "zoho")),
    );
    let (status, _) = call(
        &broken_secrets,
        request(&format!("/webhooks/zoho/{ORG}"), &good, body),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(queue.peek_all().len(), 2);
}

/// Serves the Lambda handler over HTTP, translating requests the way API Gateway does.
pub(crate) async fn serve_handler(ingest: Arc<WebhookIngest>) -> String {
    let app = axum::Router::new().route(
        "/webhooks/zoho/{*rest}",
        axum::routing::post(move |req: axum::extract::Request| {
            let ingest = ingest.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let mut lreq = lambda_http::http::Request::builder()
                    .method("POST")
                    .uri(parts.uri.to_string());
                for (k, v) in parts.headers.iter() {
                    lreq = lreq.header(k.as_str(), v.as_bytes());
                }
                let resp = webhook_ingest::handle(
                    &ingest,
                    lreq.body(Body::Binary(bytes.to_vec())).unwrap(),
                )
                .await;
                let status = resp.status().as_u16();
                let text = match resp.into_body() {
                    Body::Text(t) => t,
                    _ => String::new(),
                };
                (axum::http::StatusCode::from_u16(status).unwrap(), text)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/zoho", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn simulator_webhooks_reach_sqs_through_the_handler() {
    let moto = Moto::start().await;
    let config = moto.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    sm.create_secret()
        .name("tds/zoho")
        .secret_string(credentials_doc())
        .send()
        .await
        .unwrap();
    let url = aws_sdk_sqs::Client::new(&config)
        .create_queue()
        .queue_name("tds-inbox")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let inbox = Arc::new(tds_aws::SqsQueue::new(&config, url));
    let secrets = CachedSecrets::new(
        tds_aws::SecretsManagerStore::new(&config),
        Duration::from_secs(300),
    );
    let ingest = Arc::new(WebhookIngest::new(
        inbox.clone(),
        Arc::new(SecretWebhookAuth::new(Arc::new(secrets), "tds/zoho")),
    ));
    let base = serve_handler(ingest).await;

    let sim = Simulator::demo(&DemoSpec {
        items: 10,
        ..DemoSpec::default()
    });
    let _running = sim.clone().serve_local().await.unwrap();
    sim.configure_webhooks(Some(WebhookConfig {
        url: format!("{base}/{ORG}"),
        include_action: true,
        header_secret: Some(("X-TDS-Webhook-Secret".into(), "wh-secret-123".into())),
        signing_secret: Some("SignKey123456".into()),
        ..WebhookConfig::default()
    }));
    let item_id = sim.with_state(|s| {
        s.orgs[ORG].collection(Collection::Items).next().unwrap()["item_id"]
            .as_str()
            .unwrap()
            .to_string()
    });
    sim.upsert(
        ORG,
        Collection::Items,
        serde_json::from_value(json!({"item_id": item_id, "rate": 77})).unwrap(),
    )
    .unwrap();
    sim.upsert(
        ORG,
        Collection::Contacts,
        serde_json::from_value(json!({"contact_name": "New Customer", "contact_type": "customer"}))
            .unwrap(),
    )
    .unwrap();
    sim.delete(ORG, Collection::Items, &item_id).unwrap();

    let mut got: Vec<InboxMessage> = Vec::new();
    for _ in 0..40 {
        for m in inbox.receive(10).await.unwrap() {
            got.push(serde_json::from_str(&m.body).unwrap());
            inbox.delete(&m.receipt_handle).await.unwrap();
        }
        if got.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    got.sort_by_key(|m| (m.kind.as_str(), m.received_at));
    let summary: Vec<(EntityKind, Action)> = got.iter().map(|m| (m.kind, m.action)).collect();
    assert_eq!(
        summary,
        [
            (EntityKind::Contact, Action::Created),
            (EntityKind::Item, Action::Edited),
            (EntityKind::Item, Action::Deleted)
        ]
    );
    assert_eq!(sim.stats().webhooks_sent, 3, "every delivery answered 2xx");
}

#[tokio::test]
async fn the_sample_events_in_events_are_valid_invocations() {
    let doc = json!({"organizations": [{"organization_id": ORG, "webhook": {
        "header": "X-TDS-Webhook-Secret", "secret": "ReplaceWithWebhookSecret", "signing_secret": "ReplaceWithSigningSecret"}}]})
    .to_string();
    let queue = LocalQueue::new("inbox", Duration::from_secs(30));
    let ingest = WebhookIngest::new(
        queue.clone(),
        Arc::new(SecretWebhookAuth::new(
            Arc::new(MemorySecrets::new([("zoho".to_string(), doc)])),
            "zoho",
        )),
    );
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/webhook-ingest");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    for file in files {
        let event: lambda_http::request::LambdaRequest =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let (status, answer) = call(&ingest, Request::from(event)).await;
        assert_eq!(status, 202, "{}: {answer}", file.display());
    }
    let actions: Vec<Action> = queue
        .peek_all()
        .iter()
        .map(|(b, _)| serde_json::from_str::<InboxMessage>(b).unwrap().action)
        .collect();
    assert_eq!(actions, [Action::Deleted, Action::Edited]);

    // The published schema lists exactly the fields an inbox message has.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/schemas/inbox-message.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let message =
        serde_json::to_value(serde_json::from_str::<InboxMessage>(&queue.peek_all()[0].0).unwrap())
            .unwrap();
    let mut fields: Vec<&String> = message.as_object().unwrap().keys().collect();
    let mut documented: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    fields.sort();
    documented.sort();
    assert_eq!(fields, documented);
}

/// One bad delivery: method, path, content type, body, whether to sign it, extra/override headers,
/// expected status, words the error must contain.
struct Bad {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    sign: bool,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    words: &'static str,
}

fn bad(path: &str, body: &[u8], status: u16, words: &'static str) -> Bad {
    Bad {
        method: "POST",
        path: path.to_string(),
        content_type: Some("application/json"),
        body: body.to_vec(),
        sign: true,
        headers: vec![("X-TDS-Webhook-Secret", "wh-secret-123")],
        status,
        words,
    }
}

#[tokio::test]
async fn a_corpus_of_bad_requests_gets_clear_4xx_answers_and_enqueues_nothing() {
    let queue = LocalQueue::new("inbox", Duration::from_secs(30));
    let secrets = Arc::new(MemorySecrets::new([(
        "zoho".to_string(),
        credentials_doc(),
    )]));
    let ingest = Arc::new(WebhookIngest::new(
        queue.clone(),
        Arc::new(SecretWebhookAuth::new(secrets, "zoho")),
    ));
    let router = webhook_ingest::router(ingest.clone());
    let org = format!("/webhooks/zoho/{ORG}");
    let item = br#"{"item": {"item_id": "4815000000044208"}}"#;
    let mut corpus = vec![
        Bad {
            method: "GET",
            ..bad(&org, item, 405, "not allowed")
        },
        Bad {
            method: "PUT",
            ..bad(&org, item, 405, "not allowed")
        },
        Bad {
            method: "DELETE",
            ..bad(&org, item, 405, "not allowed")
        },
        Bad {
            headers: vec![],
            ..bad(&org, item, 401, "missing secret")
        },
        Bad {
            headers: vec![("X-TDS-Webhook-Secret", "guess")],
            ..bad(&org, item, 401, "wrong secret")
        },
        Bad {
            headers: vec![("X-TDS-Webhook-Secret", "")],
            ..bad(&org, item, 401, "wrong secret")
        },
        Bad {
            sign: false,
            ..bad(&org, item, 401, "missing X-Zoho-Webhook-Signature")
        },
        Bad {
            sign: false,
            headers: vec![
                ("X-TDS-Webhook-Secret", "wh-secret-123"),
                ("X-Zoho-Webhook-Signature", "zz"),
            ],
            ..bad(&org, item, 401, "not hex")
        },
        Bad {
            sign: false,
            headers: vec![
                ("X-TDS-Webhook-Secret", "wh-secret-123"),
                ("X-Zoho-Webhook-Signature", "abcd"),
            ],
            ..bad(&org, item, 401, "does not match")
        },
        bad(
            "/webhooks/zoho/1234",
            item,
            401,
            "no webhook secret is configured",
        ),
        bad("/webhooks/zoho", item, 404, "unknown route"),
        Bad {
            content_type: Some("text/plain"),
            ..bad(&org, item, 415, "unsupported content type")
        },
        Bad {
            content_type: Some("application/xml"),
            ..bad(&org, b"<item/>", 415, "unsupported content type")
        },
        Bad {
            content_type: Some("multipart/form-data; boundary=x"),
            ..bad(&org, item, 415, "unsupported content type")
        },
        bad(&org, b"", 400, "empty"),
        bad(&org, b" \r\n\t ", 400, "empty"),
        bad(&org, br#"{"item": {"item_id": "1""#, 400, "not JSON"),
        bad(
            &org,
            b"{\"item\": {\"name\": \"\xff\xfe\"}}",
            400,
            "not UTF-8",
        ),
        bad(&org, b"[1, 2, 3]", 400, "JSON object"),
        bad(&org, br#""item""#, 400, "JSON object"),
        bad(&org, br#"{"item_id": 1e400}"#, 400, "not JSON"),
        bad(&org, br#"{"gadget": {"id": "1"}}"#, 422, "expected one of"),
        bad(
            &org,
            br#"{"item": "4815000000044208"}"#,
            422,
            "no known entity wrapper",
        ),
        bad(
            &org,
            br#"{"item_stock": {"item_id": "1"}}"#,
            422,
            "no known entity wrapper",
        ),
        bad(&org, br#"{"item": {"name": "no id"}}"#, 422, "no item_id"),
        bad(&org, br#"{"item": {"item_id": ""}}"#, 422, "no item_id"),
        bad(
            &org,
            br#"{"item": {"item_id": {"nested": 1}}}"#,
            422,
            "no item_id",
        ),
        bad(&org, br#"{"item": {"item_id": 1.5}}"#, 422, "no item_id"),
        // Ids that would walk to another Zoho path or add query parameters.
        bad(
            &org,
            br#"{"contact": {"contact_id": "../items/4815000000044208"}}"#,
            422,
            "is not a Zoho id",
        ),
        bad(
            &org,
            br#"{"item": {"item_id": "1?organization_id=999&x="}}"#,
            422,
            "is not a Zoho id",
        ),
        bad(
            &org,
            br#"{"invoice": {"invoice_id": "12%2F34"}}"#,
            422,
            "is not a Zoho id",
        ),
        bad(
            &org,
            br#"{"item": {"item_id": "123456789012345678901234567890123"}}"#,
            422,
            "is not a Zoho id",
        ),
        bad(&format!("{org}/exploded"), item, 422, "unknown action"),
        // Organisation ids are digits: anything else is refused before any secret is looked up.
        bad(
            "/webhooks/zoho/acme",
            item,
            401,
            "organisation ids are digits",
        ),
        bad(
            &format!("/webhooks/zoho/{}", "9".repeat(33)),
            item,
            401,
            "organisation ids are digits",
        ),
        Bad {
            content_type: Some("application/x-www-form-urlencoded"),
            ..bad(&org, b"name=x&rate=5", 422, "form body has no field")
        },
        Bad {
            content_type: Some("application/x-www-form-urlencoded"),
            ..bad(&org, b"item=%7Bbroken", 422, "form body has no field")
        },
    ];
    corpus.push(bad(
        &org,
        format!(
            r#"{{"item": {{"item_id": "1", "d": "{}"}}}}"#,
            "x".repeat(250 * 1024)
        )
        .as_bytes(),
        413,
        "exceeds the limit",
    ));
    assert!(corpus.len() >= 25, "{} cases", corpus.len());
    for case in corpus {
        let mut b = lambda_http::http::Request::builder()
            .method(case.method)
            .uri(format!("https://api.example{}", case.path));
        if let Some(ct) = case.content_type {
            b = b.header("Content-Type", ct);
        }
        for (k, v) in &case.headers {
            b = b.header(*k, *v);
        }
        if case.sign {
            use hmac::Mac;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"SignKey123456").unwrap();
            mac.update(&case.body);
            b = b.header(
                "X-Zoho-Webhook-Signature",
                hex::encode(mac.finalize().into_bytes()),
            );
        }
        // As an HTTP client sends it (the router refuses an oversized body by its declared size).
        b = b.header("content-length", case.body.len());
        let req = b.body(Body::Binary(case.body.clone())).unwrap();
        // The same request through the API Gateway handler and through the router the Lambda and
        // `tds up` serve: the same answer.
        let (parts, body) = req.into_parts();
        let Body::Binary(bytes) = &body else {
            unreachable!()
        };
        let routed =
            axum::http::Request::from_parts(parts.clone(), axum::body::Body::from(bytes.clone()));
        let (status, answer) =
            call(&ingest, lambda_http::http::Request::from_parts(parts, body)).await;
        let response = lambda_http::tower::ServiceExt::oneshot(router.clone(), routed)
            .await
            .unwrap();
        let routed_status = response.status().as_u16();
        let routed_body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let routed_answer: Value = serde_json::from_slice(&routed_body).unwrap();
        assert_eq!(
            (routed_status, &routed_answer),
            (status, &answer),
            "{} {}: the router and the handler disagree",
            case.method,
            case.path
        );
        assert_eq!(
            status, case.status,
            "{} {}: {answer}",
            case.method, case.path
        );
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(case.words),
            "{} {} answered {message:?}, expected it to say {:?}",
            case.method,
            case.path,
            case.words
        );
    }
    assert!(
        queue.peek_all().is_empty(),
        "nothing enqueued for any bad request"
    );
}
