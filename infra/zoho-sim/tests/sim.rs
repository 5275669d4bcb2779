//! The simulator over real HTTP: OAuth, authentication errors, lists and pagination, both stock shapes,
//! filters, limits with their headers, faults, and the control API.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{json, Value};
use tds_zoho_sim::{
    ClientCredentials, DemoSpec, RunningSimulator, SimConfig, Simulator, StockShape,
};

const ORG: &str = "60001234567";

fn small_spec(items: usize, shape: StockShape) -> DemoSpec {
    DemoSpec {
        items,
        stock_shape: shape,
        customers: 20,
        vendors: 5,
        invoices: 30,
        sales_orders: 10,
        bills: 10,
        customer_payments: 12,
        credit_notes: 3,
        vendor_payments: 4,
        purchase_orders: 4,
        ..DemoSpec::default()
    }
}

async fn start(items: usize, shape: StockShape) -> RunningSimulator {
    Simulator::demo(&small_spec(items, shape))
        .serve_local()
        .await
        .unwrap()
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

async fn refresh(http: &reqwest::Client, base: &str) -> (reqwest::StatusCode, Value) {
    let c = ClientCredentials::default();
    let resp = http
        .post(format!("{base}/oauth/v2/token"))
        .query(&[
            ("refresh_token", c.refresh_token.as_str()),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("grant_type", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

impl Api {
    async fn new(sim: &RunningSimulator) -> Api {
        let http = reqwest::Client::new();
        let (_, body) = refresh(&http, &sim.base_url).await;
        Api {
            token: body["access_token"].as_str().unwrap().to_string(),
            http,
            base: sim.base_url.clone(),
        }
    }

    async fn get_raw(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Zoho-oauthtoken {}", self.token))
            .query(query)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let mut q = vec![("organization_id", ORG)];
        q.extend_from_slice(query);
        let resp = self.get_raw(path, &q).await;
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
        )
    }
}

#[tokio::test]
async fn token_endpoint_behaves_like_zoho_accounts() {
    let sim = start(10, StockShape::Locations).await;
    let http = reqwest::Client::new();
    let c = ClientCredentials::default();

    let (status, body) = refresh(&http, &sim.base_url).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["api_domain"], sim.base_url.as_str());
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().unwrap().starts_with("1000."));

    // Form body instead of query parameters.
    let body: Value = http
        .post(format!("{}/oauth/v2/token", sim.base_url))
        .form(&[
            ("refresh_token", c.refresh_token.as_str()),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("grant_type", "refresh_token"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["access_token"].is_string(), "{body}");

    // Errors arrive with HTTP 200.
    for (field, value, error) in [
        ("client_id", "nope", "invalid_client"),
        ("client_secret", "nope", "invalid_client_secret"),
        ("refresh_token", "nope", "invalid_code"),
    ] {
        let mut params = vec![
            ("refresh_token", c.refresh_token.as_str()),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("grant_type", "refresh_token"),
        ];
        for p in params.iter_mut() {
            if p.0 == field {
                p.1 = value;
            }
        }
        let resp = http
            .post(format!("{}/oauth/v2/token", sim.base_url))
            .query(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"error": error}));
    }

    // The 11th refresh within ten minutes is refused with 400 Access Denied.
    for _ in 0..8 {
        assert_eq!(refresh(&http, &sim.base_url).await.0, 200);
    }
    let (status, body) = refresh(&http, &sim.base_url).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Access Denied");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("too many requests"));
    let stats = sim.sim.stats();
    assert_eq!(stats.token_refreshes, 10);
    assert_eq!(stats.token_refreshes_denied, 1);
}

#[tokio::test]
async fn authentication_and_organisation_errors() {
    let sim = start(10, StockShape::Locations).await;
    let api = Api::new(&sim).await;
    let http = reqwest::Client::new();
    let url = format!("{}/inventory/v1/items?organization_id={ORG}", sim.base_url);

    for auth in [None, Some("Bearer abc"), Some("Zoho-oauthtoken ")] {
        let mut req = http.get(&url);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], 14, "{auth:?}");
    }
    let resp = http
        .get(&url)
        .header("Authorization", "Zoho-oauthtoken 1000.unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 57);

    assert_eq!(api.get("/inventory/v1/items", &[]).await.0, 200);
    sim.sim.expire_tokens();
    let (status, body) = api.get("/inventory/v1/items", &[]).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(57)));

    let api = Api::new(&sim).await;
    let resp = api.get_raw("/inventory/v1/items", &[]).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_ne!(body["code"], 0);
    let (status, body) = api.get("/inventory/v1/items/999", &[]).await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(1002)));
    assert_eq!(body["message"], "Item does not exist.");
    let (status, body) = api.get("/inventory/v1/invoices/999", &[]).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("Invoice does not exist."))
    );

    let resp = api.get_raw("/books/v3/organizations", &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["organizations"][0]["organization_id"], ORG);
}

#[tokio::test]
async fn lists_paginate_with_full_page_context_and_real_quirks() {
    let sim = start(450, StockShape::Locations).await;
    let api = Api::new(&sim).await;
    let mut seen = Vec::new();
    for page in 1..=3 {
        let p = page.to_string();
        let (status, body) = api
            .get(
                "/inventory/v1/items",
                &[
                    ("page", &p),
                    ("per_page", "200"),
                    ("filter_by", "Status.All"),
                ],
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["code"], 0);
        assert_eq!(body["message"], "success");
        let ctx = &body["page_context"];
        assert_eq!(ctx["page"], page);
        assert_eq!(ctx["per_page"], 200);
        assert_eq!(ctx["has_more_page"], page < 3);
        assert_eq!(ctx["report_name"], "Items");
        assert_eq!(ctx["sort_column"], "name");
        assert_eq!(ctx["sort_order"], "A");
        assert!(ctx["custom_fields"].is_array());
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), if page < 3 { 200 } else { 50 });
        for item in items {
            assert!(item["item_id"].is_string(), "ids are strings");
            assert!(
                item.get("locations").is_none(),
                "lists carry no per-location stock"
            );
            assert!(item["last_modified_time"]
                .as_str()
                .unwrap()
                .ends_with("+0530"));
            if item["product_type"] == "service" {
                assert!(
                    item.get("stock_on_hand").is_none(),
                    "services omit stock fields"
                );
            }
            seen.push(item["item_id"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 450);
    assert_eq!(
        sim.sim.stats().orgs[ORG].by_endpoint["GET /inventory/v1/items"],
        3
    );

    // per_page above 200 is capped; six-decimal numbers and "" numbers on the wire.
    let resp = api
        .get_raw(
            "/inventory/v1/items",
            &[("organization_id", ORG), ("per_page", "500")],
        )
        .await;
    let raw = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 200);
    assert!(
        raw.contains(".000000"),
        "floats are written with six decimals"
    );
    assert!(
        raw.contains(r#""reorder_level":"""#),
        "unset numbers are \"\""
    );

    // Sorting by last_modified_time, descending.
    let (_, body) = api
        .get(
            "/inventory/v1/items",
            &[
                ("sort_column", "last_modified_time"),
                ("sort_order", "D"),
                ("per_page", "50"),
            ],
        )
        .await;
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            chrono::DateTime::parse_from_str(
                i["last_modified_time"].as_str().unwrap(),
                "%Y-%m-%dT%H:%M:%S%z",
            )
            .unwrap()
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));
}

#[tokio::test]
async fn both_stock_shapes_bulk_details_images_and_location_filters() {
    for shape in [StockShape::Locations, StockShape::Warehouses] {
        let sim = start(40, shape).await;
        let api = Api::new(&sim).await;
        let (_, list) = api.get("/inventory/v1/items", &[]).await;
        let goods: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["product_type"] == "goods")
            .map(|i| i["item_id"].as_str().unwrap().to_string())
            .collect();
        let (_, detail) = api
            .get(&format!("/inventory/v1/items/{}", goods[0]), &[])
            .await;
        let item = &detail["item"];
        let (key, prefix) = match shape {
            StockShape::Locations => ("locations", "location"),
            StockShape::Warehouses => ("warehouses", "warehouse"),
        };
        let stock = item[key]
            .as_array()
            .unwrap_or_else(|| panic!("{shape:?}: {item}"));
        assert_eq!(stock.len(), 3);
        assert!(stock[0][format!("{prefix}_id")].is_string());
        assert!(stock[0][format!("{prefix}_stock_on_hand")]
            .as_str()
            .unwrap()
            .ends_with(".000000"));
        let other = if key == "locations" {
            "warehouses"
        } else {
            "locations"
        };
        assert!(item.get(other).is_none());

        let ids = goods[..5].join(",");
        let (status, bulk) = api
            .get("/inventory/v1/itemdetails", &[("item_ids", &ids)])
            .await;
        assert_eq!(status, 200);
        assert_eq!(bulk["items"].as_array().unwrap().len(), 5);
        assert!(bulk["items"][0][key].is_array());
    }

    let sim = start(40, StockShape::Locations).await;
    let api = Api::new(&sim).await;
    let too_many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let (status, body) = api
        .get(
            "/inventory/v1/itemdetails",
            &[("item_ids", &too_many.join(","))],
        )
        .await;
    assert_eq!(status, 400);
    assert_ne!(body["code"], 0);

    let (_, list) = api.get("/inventory/v1/items", &[]).await;
    let with_image = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image_id"] != "")
        .unwrap()
        .clone();
    let resp = api
        .get_raw(
            &format!(
                "/inventory/v1/items/{}/image",
                with_image["item_id"].as_str().unwrap()
            ),
            &[("organization_id", ORG)],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type == "image/jpeg" || content_type == "image/png",
        "{content_type}"
    );
    assert!(resp.bytes().await.unwrap().len() > 500);

    // location_id narrows the aggregate stock fields to that location.
    let (_, detail) = api
        .get(
            &format!(
                "/inventory/v1/items/{}",
                with_image["item_id"].as_str().unwrap()
            ),
            &[],
        )
        .await;
    let loc = &detail["item"]["locations"][1];
    let (_, narrowed) = api
        .get(
            "/inventory/v1/items",
            &[("location_id", loc["location_id"].as_str().unwrap())],
        )
        .await;
    let same = narrowed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item_id"] == with_image["item_id"])
        .unwrap();
    assert_eq!(
        same["stock_on_hand"].as_f64().unwrap(),
        loc["location_stock_on_hand"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    );

    let (_, locations) = api.get("/inventory/v1/locations", &[]).await;
    assert_eq!(locations["locations"].as_array().unwrap().len(), 3);
    let (_, warehouses) = api.get("/inventory/v1/settings/warehouses", &[]).await;
    assert!(warehouses["warehouses"][0]["warehouse_id"].is_string());
}

#[tokio::test]
async fn modified_time_filter_price_books_contacts_and_payment_list_keys() {
    let sim = start(30, StockShape::Locations).await;
    let api = Api::new(&sim).await;
    let (_, all) = api.get("/inventory/v1/items", &[]).await;
    let item_id = all["items"][0]["item_id"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let edited: Value = http
        .post(format!("{}/__sim/orgs/{ORG}/items", sim.base_url))
        .json(&json!({"item_id": item_id, "rate": 123.45}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let since = edited["last_modified_time"].as_str().unwrap().to_string();
    let (_, changed) = api
        .get("/inventory/v1/items", &[("last_modified_time", &since)])
        .await;
    let ids: Vec<&str> = changed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [item_id.as_str()],
        "only the edited item is at or after its new time"
    );
    // Books documents no such filter on items: it is ignored there.
    let (_, books) = api
        .get(
            "/books/v3/items",
            &[("last_modified_time", &since), ("filter_by", "Status.All")],
        )
        .await;
    assert_eq!(books["items"].as_array().unwrap().len(), 30);
    // Without `filter_by`, Zoho lists active items only.
    let (_, active) = api.get("/books/v3/items", &[]).await;
    let active = active["items"].as_array().unwrap();
    assert!(active.len() < 30, "the demo has inactive items");
    assert!(active.iter().all(|i| i["status"] == "active"));
    let (status, _) = api
        .get(
            "/inventory/v1/items",
            &[("last_modified_time", "yesterday")],
        )
        .await;
    assert_eq!(status, 400);

    let (_, books_list) = api.get("/inventory/v1/pricebooks", &[]).await;
    let list = books_list["pricebooks"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter().all(|b| b.get("pricebook_items").is_none()),
        "items only on the single GET"
    );
    let per_item = list
        .iter()
        .find(|b| b["pricebook_type"] == "per_item")
        .unwrap();
    let (_, single) = api
        .get(
            &format!(
                "/inventory/v1/pricebooks/{}",
                per_item["pricebook_id"].as_str().unwrap()
            ),
            &[],
        )
        .await;
    let rates = single["pricebook"]["pricebook_items"].as_array().unwrap();
    assert!(!rates.is_empty());
    let rated = rates[0]["item_id"].as_str().unwrap();
    let (_, lookup) = api
        .get(
            "/books/v3/items/pricebookrate",
            &[
                ("pricebook_id", per_item["pricebook_id"].as_str().unwrap()),
                ("item_ids", rated),
            ],
        )
        .await;
    assert_eq!(
        lookup["items"][0]["pricebook_rate"],
        rates[0]["pricebook_rate"]
    );

    let (_, vendors) = api
        .get("/books/v3/contacts", &[("contact_type", "vendor")])
        .await;
    let vendors = vendors["contacts"].as_array().unwrap();
    assert_eq!(vendors.len(), 5);
    assert!(vendors
        .iter()
        .all(|v| v["contact_type"] == "vendor" && v.get("billing_address").is_none()));

    let (_, payments) = api.get("/books/v3/customerpayments", &[]).await;
    assert_eq!(payments["customerpayments"].as_array().unwrap().len(), 12);
    sim.sim.set_profile(
        ORG,
        tds_zoho_sim::Profile {
            payments_list_key: "customer_payments".into(),
            ..Default::default()
        },
    );
    let (_, payments) = api.get("/books/v3/customerpayments", &[]).await;
    assert_eq!(payments["customer_payments"].as_array().unwrap().len(), 12);

    let (_, invoices) = api.get("/books/v3/invoices", &[]).await;
    let invoice = &invoices["invoices"][0];
    assert!(invoice.get("line_items").is_none(), "lists omit line items");
    let (_, detail) = api
        .get(
            &format!(
                "/books/v3/invoices/{}",
                invoice["invoice_id"].as_str().unwrap()
            ),
            &[],
        )
        .await;
    assert!(detail["invoice"]["line_items"].is_array());

    // Deleting through the control API: the record is gone (404 code 1002).
    let resp = http
        .delete(format!("{}/__sim/orgs/{ORG}/items/{item_id}", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = api
        .get(&format!("/inventory/v1/items/{item_id}"), &[])
        .await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(1002)));
}

#[tokio::test]
async fn per_minute_daily_and_concurrency_limits_with_headers() {
    let sim = start(5, StockShape::Locations).await;
    sim.sim.configure(|c| {
        c.per_minute_limit = 5;
        c.window = Duration::from_millis(800);
        c.retry_after = true;
    });
    let api = Api::new(&sim).await;
    for _ in 0..5 {
        let resp = api
            .get_raw("/inventory/v1/items", &[("organization_id", ORG)])
            .await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().contains_key("x-rate-limit-remaining"));
    }
    let resp = api
        .get_raw("/inventory/v1/items", &[("organization_id", ORG)])
        .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 45);
    tokio::time::sleep(Duration::from_millis(850)).await;
    assert_eq!(api.get("/inventory/v1/items", &[]).await.0, 200);
    let stats = sim.sim.stats();
    assert_eq!(stats.orgs[ORG].calls, 6);
    assert_eq!(stats.orgs[ORG].rate_limited, 1);

    // Daily quota, reported in the headers.
    sim.sim.configure(|c| {
        c.per_minute_limit = 1000;
        c.daily_limit = 8;
    });
    // 6 calls were admitted so far.
    let resp = api
        .get_raw("/inventory/v1/items", &[("organization_id", ORG)])
        .await;
    assert_eq!(resp.headers()["x-rate-limit-limit"], "8");
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "1");
    let resp = api
        .get_raw("/inventory/v1/items", &[("organization_id", ORG)])
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "0");
    let resp = api
        .get_raw("/inventory/v1/items", &[("organization_id", ORG)])
        .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "0");

    // Concurrency: with latency, the 3rd simultaneous call is refused.
    let sim = start(5, StockShape::Locations).await;
    sim.sim.configure(|c| {
        c.max_in_flight = 2;
        c.latency = Duration::from_millis(300);
    });
    let api = Api::new(&sim).await;
    let calls = (0..3).map(|_| api.get("/inventory/v1/items", &[]));
    let statuses: Vec<u16> = futures_join(calls)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(sim.sim.stats().orgs[ORG].max_in_flight_seen, 2);
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut handles = Vec::new();
    for f in futures {
        handles.push(f);
    }
    let mut out = Vec::new();
    // Poll all concurrently on this task.
    let pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut pending: Vec<_> = pinned.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

#[tokio::test]
async fn injected_faults_look_like_zoho_errors() {
    let sim = start(5, StockShape::Locations).await;
    let api = Api::new(&sim).await;
    sim.sim.configure(|c| c.error_rate = 1.0);
    let (status, body) = api.get("/inventory/v1/items", &[]).await;
    assert_eq!((status, body["code"].as_i64()), (500, Some(1000)));
    sim.sim.configure(|c| {
        c.error_rate = 0.0;
        c.http200_error_rate = 1.0;
    });
    let (status, body) = api.get("/inventory/v1/items", &[]).await;
    assert_eq!(status, 200);
    assert_ne!(body["code"], 0, "a non-zero code on HTTP 200");

    // The control API changes config over HTTP too, and refuses unknown fields.
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/__sim/config", sim.base_url))
        .json(&json!({"http200_error_rate": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(api.get("/inventory/v1/items", &[]).await.1["code"], 0);
    let resp = http
        .post(format!("{}/__sim/config", sim.base_url))
        .json(&json!({"bogus": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let stats: Value = http
        .get(format!("{}/__sim/stats", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["orgs"][ORG]["calls"].as_u64().unwrap() >= 3);
}

#[tokio::test]
async fn a_ten_thousand_item_organisation_lists_in_fifty_pages() {
    let config = SimConfig {
        per_minute_limit: 10_000,
        ..SimConfig::default()
    };
    let sim = Simulator::new(
        config,
        vec![tds_zoho_sim::generate(&small_spec(
            10_000,
            StockShape::Locations,
        ))],
        ClientCredentials::default(),
    )
    .serve_local()
    .await
    .unwrap();
    let api = Api::new(&sim).await;
    let mut page = 1;
    let mut total = 0;
    loop {
        let p = page.to_string();
        let (_, body) = api
            .get(
                "/inventory/v1/items",
                &[
                    ("page", &p),
                    ("per_page", "200"),
                    ("filter_by", "Status.All"),
                ],
            )
            .await;
        total += body["items"].as_array().unwrap().len();
        if body["page_context"]["has_more_page"] != true {
            break;
        }
        page += 1;
    }
    assert_eq!(total, 10_000);
    assert_eq!(
        sim.sim.stats().orgs[ORG].by_endpoint["GET /inventory/v1/items"],
        50
    );
}

#[test]
fn demo_generation_is_deterministic() {
    let a = tds_zoho_sim::generate(&small_spec(200, StockShape::Locations));
    let b = tds_zoho_sim::generate(&small_spec(200, StockShape::Locations));
    assert_eq!(a.records, b.records);
    let c = tds_zoho_sim::generate(&DemoSpec {
        seed: 2,
        ..small_spec(200, StockShape::Locations)
    });
    assert_ne!(a.records, c.records);
    let default = tds_zoho_sim::generate(&DemoSpec::default());
    assert_eq!(
        default.collection(tds_zoho_sim::Collection::Items).count(),
        3000
    );
    assert_eq!(
        default
            .collection(tds_zoho_sim::Collection::Locations)
            .count(),
        3
    );
    assert_eq!(
        default
            .collection(tds_zoho_sim::Collection::PriceBooks)
            .count(),
        2
    );
    assert_eq!(
        default
            .collection(tds_zoho_sim::Collection::Contacts)
            .count(),
        300
    );
    let services = default
        .collection(tds_zoho_sim::Collection::Items)
        .filter(|i| i["product_type"] == "service")
        .count();
    assert!(services > 100 && services < 400, "{services}");
}

/// A webhook receiver: records (uri, headers, body) of every POST.
async fn receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap, String)>>>,
) {
    use axum::routing::post;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push((uri.to_string(), headers, body));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Waits until `seen` holds `n` deliveries; fails after 10 s.
async fn wait_for<T>(seen: &std::sync::Mutex<Vec<T>>, n: usize) {
    wait_until(|| seen.lock().unwrap().len() >= n, "deliveries").await
}

/// Waits until `done()`; fails naming `what` after 10 s.
async fn wait_until(done: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn changes_are_delivered_as_zoho_webhooks() {
    use hmac::Mac;
    let sim = start(10, StockShape::Locations).await;
    let (url, seen) = receiver().await;
    let http = reqwest::Client::new();
    let config = json!({
        "url": url, "include_action": true, "header_secret": ["X-TDS-Secret", "hunter2hunter2"],
        "signing_secret": "abcdefghijkl12", "signature_scheme": "raw"
    });
    assert_eq!(
        http.post(format!("{}/__sim/webhooks", sim.base_url))
            .json(&config)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let api = Api::new(&sim).await;
    let (_, list) = api.get("/inventory/v1/items", &[]).await;
    let item_id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image_id"] != "")
        .unwrap()["item_id"]
        .as_str()
        .unwrap()
        .to_string();
    http.post(format!("{}/__sim/orgs/{ORG}/items", sim.base_url))
        .json(&json!({"item_id": item_id, "rate": 99.5}))
        .send()
        .await
        .unwrap();
    http.post(format!("{}/__sim/orgs/{ORG}/invoices", sim.base_url))
        .json(&json!({"invoice_number": "INV-NEW", "total": 10}))
        .send()
        .await
        .unwrap();
    http.delete(format!("{}/__sim/orgs/{ORG}/items/{item_id}", sim.base_url))
        .send()
        .await
        .unwrap();
    wait_for(&seen, 3).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{:?}", sim.sim.stats());

    let (uri, headers, body) = &got[0];
    assert!(uri.ends_with("?action=edited"), "{uri}");
    assert_eq!(headers["x-tds-secret"], "hunter2hunter2");
    assert_eq!(headers["content-type"], "application/json");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"abcdefghijkl12").unwrap();
    mac.update(body.as_bytes());
    assert_eq!(
        headers["x-zoho-webhook-signature"].to_str().unwrap(),
        hex::encode(mac.finalize().into_bytes())
    );
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["item"]["item_id"], item_id.as_str());
    assert_eq!(payload["item"]["rate"], 99.5);
    assert!(
        payload["item"].get("image_id").is_none(),
        "item webhooks omit image details"
    );
    assert!(payload["item"].get("locations").is_none());
    assert!(
        payload.get("event_type").is_none() && !headers.contains_key("x-zoho-event"),
        "no event type"
    );

    let (uri, _, body) = &got[1];
    assert!(uri.ends_with("?action=created"), "{uri}");
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["invoice"]["invoice_number"], "INV-NEW");
    assert!(payload["invoice"]["invoice_id"].is_string());
    assert!(got[2].0.ends_with("?action=deleted"));
    wait_until(|| sim.sim.stats().webhooks_sent == 3, "3 webhooks sent").await;

    // Form bodies, duplicates, drops, reordering.
    sim.sim
        .configure_webhooks(Some(tds_zoho_sim::WebhookConfig {
            url: url.clone(),
            format: "form".into(),
            duplicate_rate: 1.0,
            ..Default::default()
        }));
    seen.lock().unwrap().clear();
    let items: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .filter(|i| *i != item_id)
        .collect();
    sim.sim
        .upsert(
            ORG,
            tds_zoho_sim::Collection::Items,
            serde_json::from_value(json!({"item_id": items[0], "rate": 1})).unwrap(),
        )
        .unwrap();
    wait_for(&seen, 2).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "duplicated");
    assert_eq!(
        got[0].1["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert!(got[0].2.starts_with("item="), "{}", got[0].2);

    sim.sim
        .configure_webhooks(Some(tds_zoho_sim::WebhookConfig {
            url: url.clone(),
            reorder: true,
            ..Default::default()
        }));
    seen.lock().unwrap().clear();
    for id in &items[1..3] {
        sim.sim
            .upsert(
                ORG,
                tds_zoho_sim::Collection::Items,
                serde_json::from_value(json!({"item_id": id, "rate": 2})).unwrap(),
            )
            .unwrap();
    }
    wait_for(&seen, 2).await;
    let order: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, b)| {
            serde_json::from_str::<Value>(b).unwrap()["item"]["item_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        order,
        [items[2].clone(), items[1].clone()],
        "delivered in reverse order"
    );

    sim.sim
        .configure_webhooks(Some(tds_zoho_sim::WebhookConfig {
            url: url.clone(),
            drop_rate: 1.0,
            ..Default::default()
        }));
    seen.lock().unwrap().clear();
    sim.sim
        .upsert(
            ORG,
            tds_zoho_sim::Collection::Items,
            serde_json::from_value(json!({"item_id": items[3], "rate": 3})).unwrap(),
        )
        .unwrap();
    wait_until(|| sim.sim.stats().webhooks_dropped == 1, "the drop").await;
    assert!(seen.lock().unwrap().is_empty(), "dropped, not delivered");

    sim.sim
        .configure_webhooks(Some(tds_zoho_sim::WebhookConfig {
            url: url.clone(),
            delay_ms: 400,
            ..Default::default()
        }));
    seen.lock().unwrap().clear();
    let changed = std::time::Instant::now();
    sim.sim
        .upsert(
            ORG,
            tds_zoho_sim::Collection::Items,
            serde_json::from_value(json!({"item_id": items[4], "rate": 4})).unwrap(),
        )
        .unwrap();
    wait_for(&seen, 1).await;
    assert!(
        changed.elapsed() >= Duration::from_millis(400),
        "delivered no earlier than the delay"
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "delivered once");
}

/// A client that sends its request headers too slowly (a slowloris) is cut off after the header-read
/// timeout; a client that sends them at once is answered on the same server.
#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    tokio::spawn(tds_zoho_sim::http::serve(
        listener,
        app,
        Duration::from_millis(300),
    ));

    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never the blank line that ends the headers: the server closes the connection (EOF, or a 408
    // before it), well before this deadline.
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut seen)).await;
    assert!(closed.is_ok(), "the slow connection was never closed");
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.is_empty() || seen.starts_with("HTTP/1.1 408"),
        "{seen}"
    );

    let answer = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "ok");
}
