//! HTTP routes: Zoho Accounts' token endpoint, the Books v3 / Inventory v1 read API, and the `/__sim`
//! control API for tests (statistics, configuration, token expiry, record mutations).
// An early-return `Err(Response)` is the handler idiom here; responses are not on a hot path.
#![allow(clippy::result_large_err)]

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::data::{location_as_warehouse, Collection, Org};
use crate::json::to_zoho_json;
use crate::state::{Refusal, SimConfig};
use crate::Simulator;
use tds_core::webhook::parse_urlencoded;

/// The simulator's routes.
pub fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/oauth/v2/token", post(token))
        .route("/books/v3/{*rest}", any(books))
        .route("/inventory/v1/{*rest}", any(inventory))
        .route("/__sim/stats", get(control_stats))
        .route("/__sim/stats/reset", post(control_reset_stats))
        .route(
            "/__sim/config",
            get(control_get_config).post(control_set_config),
        )
        .route("/__sim/tokens/expire", post(control_expire_tokens))
        .route("/__sim/orgs/{org}/{collection}", post(control_upsert))
        .route(
            "/__sim/orgs/{org}/{collection}/{id}",
            axum::routing::delete(control_delete),
        )
        .route("/__sim/orgs/{org}/items/{id}/stock", post(control_stock))
        .route(
            "/__sim/webhooks",
            get(control_get_webhooks).post(control_set_webhooks),
        )
        .with_state(sim)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, to_zoho_json(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    resp
}

fn zoho_error(status: StatusCode, code: i64, message: &str) -> Response {
    json_response(status, &json!({"code": code, "message": message}))
}

fn success(mut body: Map<String, Value>) -> Response {
    let mut out = Map::new();
    out.insert("code".into(), json!(0));
    out.insert("message".into(), json!("success"));
    out.append(&mut body);
    json_response(StatusCode::OK, &Value::Object(out))
}

struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

// ---------------------------------------------------------------- Zoho Accounts

async fn token(
    AxState(sim): AxState<Simulator>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params = parse_urlencoded(query.as_deref().unwrap_or(""));
    params.extend(parse_urlencoded(&String::from_utf8_lossy(&body)));
    let params = Params(params);
    let now = Instant::now();
    sim.with_state(|s| {
        let client = s.client.clone();
        match params.get("grant_type") {
            Some("refresh_token") => {}
            Some("authorization_code") => return json_response(StatusCode::OK, &json!({"error": "invalid_code"})),
            _ => return json_response(StatusCode::OK, &json!({"error": "unsupported_grant_type"})),
        }
        if params.get("client_id") != Some(client.client_id.as_str()) {
            return json_response(StatusCode::OK, &json!({"error": "invalid_client"}));
        }
        if params.get("client_secret") != Some(client.client_secret.as_str()) {
            return json_response(StatusCode::OK, &json!({"error": "invalid_client_secret"}));
        }
        if params.get("refresh_token") != Some(client.refresh_token.as_str()) {
            return json_response(StatusCode::OK, &json!({"error": "invalid_code"}));
        }
        let window = s.config.refresh_window;
        while s.refreshes.front().is_some_and(|t| now.duration_since(*t) >= window) {
            s.refreshes.pop_front();
        }
        if s.refreshes.len() >= s.config.refresh_limit as usize {
            s.stats.token_refreshes_denied += 1;
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error_description": "You have made too many requests continuously. Please try again after some time.",
                        "error": "Access Denied", "status": "failure"}),
            );
        }
        s.refreshes.push_back(now);
        s.stats.token_refreshes += 1;
        let access_token = s.issue_token(now);
        json_response(
            StatusCode::OK,
            &json!({"access_token": access_token, "expires_in": s.config.token_ttl_secs,
                    "api_domain": s.api_domain, "token_type": "Bearer",
                    "scope": "ZohoInventory.fullaccess.all ZohoBooks.fullaccess.all"}),
        )
    })
}

// ---------------------------------------------------------------- Books / Inventory API

#[derive(Clone, Copy, PartialEq, Eq)]
enum Product {
    Books,
    Inventory,
}

async fn books(
    sim: AxState<Simulator>,
    path: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    method: axum::http::Method,
) -> Response {
    api(sim, Product::Books, path, query, headers, method).await
}

async fn inventory(
    sim: AxState<Simulator>,
    path: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    method: axum::http::Method,
) -> Response {
    api(sim, Product::Inventory, path, query, headers, method).await
}

/// Decrements the organisation's in-flight count however the call ends.
struct InFlight {
    sim: Simulator,
    org: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.sim.with_state(|s| s.release(&self.org));
    }
}

async fn api(
    AxState(sim): AxState<Simulator>,
    product: Product,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    method: axum::http::Method,
) -> Response {
    let params = Params(parse_urlencoded(query.as_deref().unwrap_or("")));
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let now = Instant::now();

    // Authentication first, as Zoho does.
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = auth
        .strip_prefix("Zoho-oauthtoken ")
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let auth_result = sim.with_state(|s| match token {
        None => {
            s.stats.unauthorized += 1;
            Err(zoho_error(StatusCode::UNAUTHORIZED, 14, "The request could not be authenticated as the authentication value you entered is invalid. Enter a valid authentication value and try again."))
        }
        Some(t) => match s.tokens.get(t) {
            Some(expiry) if *expiry > now && !s.config.deny_tokens => Ok(()),
            _ => {
                s.stats.unauthorized += 1;
                Err(zoho_error(StatusCode::UNAUTHORIZED, 57, "You are not authorized to perform this operation"))
            }
        },
    });
    if let Err(resp) = auth_result {
        return resp;
    }
    if method != axum::http::Method::GET {
        return zoho_error(
            StatusCode::METHOD_NOT_ALLOWED,
            5,
            "The simulator serves read requests only; use /__sim to change records.",
        );
    }

    if segments.first().map(String::as_str) == Some("organizations") {
        let orgs = sim.with_state(|s| s.orgs.values().map(organization_json).collect::<Vec<_>>());
        return success(Map::from_iter([(
            "organizations".to_string(),
            Value::Array(orgs),
        )]));
    }

    let Some(org_id) = params.get("organization_id").map(str::to_string) else {
        return zoho_error(
            StatusCode::BAD_REQUEST,
            4029,
            "Organization ID is missing or invalid. Pass organization_id.",
        );
    };
    // Limits, then faults.
    let admitted = sim.with_state(|s| {
        if !s.orgs.contains_key(&org_id) {
            return Err(zoho_error(StatusCode::BAD_REQUEST, 4029, "Organization ID is missing or invalid. Pass organization_id."));
        }
        match s.admit(&org_id, now) {
            Ok(()) => Ok((s.config.clone(), s.rng.unit(), s.rng.unit())),
            Err(refusal) => {
                s.stats.orgs.entry(org_id.clone()).or_default().rate_limited += 1;
                let (limit, remaining, reset) = s.daily_headers(&org_id, now);
                let (message, retry) = match refusal {
                    Refusal::PerMinute { retry_after } => ("You have exceeded the maximum number of API requests allowed per minute. Please try again after some time.", retry_after),
                    Refusal::InFlight => ("You have exceeded the maximum number of concurrent API requests allowed. Please try again after some time.", Duration::from_secs(1)),
                    Refusal::Daily { reset_in } => ("You have exceeded the maximum number of API requests allowed per day.", reset_in),
                };
                let mut resp = zoho_error(StatusCode::TOO_MANY_REQUESTS, 45, message);
                rate_headers(&mut resp, limit, remaining, reset);
                if s.config.retry_after {
                    let secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
                    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                        resp.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                }
                Err(resp)
            }
        }
    });
    let (config, fault_roll, fault_roll_200) = match admitted {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let _in_flight = InFlight {
        sim: sim.clone(),
        org: org_id.clone(),
    };
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    let endpoint = format!(
        "GET /{}/{}",
        if product == Product::Books {
            "books/v3"
        } else {
            "inventory/v1"
        },
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| if i > 0 && s.chars().all(|c| c.is_ascii_digit()) {
                "{id}"
            } else {
                s.as_str()
            })
            .collect::<Vec<_>>()
            .join("/")
    );
    let mut resp = if fault_roll < config.error_rate {
        zoho_error(StatusCode::INTERNAL_SERVER_ERROR, 1000, "Internal error")
    } else if fault_roll_200 < config.http200_error_rate {
        zoho_error(
            StatusCode::OK,
            2,
            "Invalid value passed for the request. Please try again.",
        )
    } else {
        sim.with_state(|s| match s.orgs.get(&org_id) {
            Some(org) => dispatch(org, &config, product, &segments, &params),
            None => zoho_error(
                StatusCode::BAD_REQUEST,
                4029,
                "Organization ID is missing or invalid.",
            ),
        })
    };
    sim.with_state(|s| {
        let stats = s.stats.orgs.entry(org_id.clone()).or_default();
        stats.calls += 1;
        *stats.by_endpoint.entry(endpoint).or_default() += 1;
        let (limit, remaining, reset) = s.daily_headers(&org_id, Instant::now());
        rate_headers(&mut resp, limit, remaining, reset);
    });
    resp
}

fn rate_headers(resp: &mut Response, limit: u32, remaining: u32, reset: u64) {
    for (name, value) in [
        ("x-rate-limit-limit", limit as u64),
        ("x-rate-limit-remaining", remaining as u64),
        ("x-rate-limit-reset", reset),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            resp.headers_mut().insert(name, v);
        }
    }
}

fn organization_json(org: &Org) -> Value {
    json!({"organization_id": org.id, "name": org.name, "contact_name": "Demo Admin", "email": "admin@demo.example",
           "is_default_org": true, "plan_type": 1, "plan_name": "PROFESSIONAL", "plan_period": "yearly",
           "language_code": "en", "fiscal_year_start_month": 3, "account_created_date": "2024-04-01",
           "time_zone": "Asia/Calcutta", "is_org_active": true, "currency_id": "4815000000000097",
           "currency_code": org.currency_code, "currency_symbol": "₹", "currency_format": "###,##0.00",
           "price_precision": 2})
}

fn not_found(noun: &str) -> Response {
    zoho_error(
        StatusCode::NOT_FOUND,
        1002,
        &format!("{noun} does not exist."),
    )
}

fn invalid(field: &str) -> Response {
    zoho_error(
        StatusCode::BAD_REQUEST,
        2,
        &format!("Invalid value passed for {field}"),
    )
}

fn dispatch(
    org: &Org,
    config: &SimConfig,
    product: Product,
    segments: &[String],
    params: &Params,
) -> Response {
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["itemdetails"] => item_details(org, params),
        ["items", "pricebookrate"] => pricebook_rates(org, params),
        ["items", id, "image"] => image(org, id),
        ["settings", "warehouses"] => {
            let warehouses: Vec<Value> = org
                .collection(Collection::Locations)
                .map(location_as_warehouse)
                .collect();
            success(Map::from_iter([(
                "warehouses".to_string(),
                Value::Array(warehouses),
            )]))
        }
        [path] => match Collection::from_path(path) {
            Some(c) => list(org, config, product, c, params),
            None => zoho_error(StatusCode::NOT_FOUND, 5, "Invalid URL Passed"),
        },
        [path, id] => match Collection::from_path(path) {
            Some(c) => match org.get(c, id) {
                Some(record) => success(Map::from_iter([(
                    c.spec().single_key.to_string(),
                    org.render_detail(c, record),
                )])),
                None => not_found(c.spec().noun),
            },
            None => zoho_error(StatusCode::NOT_FOUND, 5, "Invalid URL Passed"),
        },
        _ => zoho_error(StatusCode::NOT_FOUND, 5, "Invalid URL Passed"),
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s.trim()))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn field_text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn sort_key(v: &Value, column: &str) -> (f64, String) {
    match v.get(column) {
        Some(Value::Number(n)) => (n.as_f64().unwrap_or(0.0), String::new()),
        _ if column.ends_with("_time") => (
            parse_time(&field_text(v, column))
                .map(|t| t.timestamp() as f64)
                .unwrap_or(0.0),
            String::new(),
        ),
        _ => match field_text(v, column).parse::<f64>() {
            Ok(n)
                if matches!(
                    column,
                    "rate" | "purchase_rate" | "stock_on_hand" | "total" | "balance" | "amount"
                ) =>
            {
                (n, String::new())
            }
            _ => (0.0, field_text(v, column).to_lowercase()),
        },
    }
}

fn list(
    org: &Org,
    config: &SimConfig,
    product: Product,
    c: Collection,
    params: &Params,
) -> Response {
    let spec = c.spec();
    let page: usize = match params.get("page").map(str::parse) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => return invalid("page"),
    };
    let per_page: usize = match params.get("per_page").map(str::parse::<usize>) {
        None => 200,
        Some(Ok(p)) if p >= 1 => p.min(200),
        Some(_) => return invalid("per_page"),
    };
    // Zoho's items list shows active items unless `filter_by=Status.All` ("Get the list of all
    // active items", ZOHO.md 5.1).
    let filter_by = params.get("filter_by").unwrap_or(
        if c == Collection::Items && !org.profile.items_all_by_default {
            "Status.Active"
        } else {
            "Status.All"
        },
    );
    if let (Some(column), Some(allowed)) = (params.get("sort_column"), sort_columns(c)) {
        if !allowed.contains(&column) {
            return invalid("sort_column");
        }
    }
    let status_filter = match filter_by {
        "Status.Active" => Some("active"),
        "Status.Inactive" => Some("inactive"),
        _ => params.get("status"),
    };
    // Books documents no last_modified_time filter for items: it is silently ignored there.
    let honours_lmt = spec.lmt_filter
        && !config.ignore_modified_filter
        && !(product == Product::Books && c == Collection::Items);
    let modified_after = match params.get("last_modified_time") {
        Some(t) if honours_lmt => match parse_time(t) {
            Some(t) => Some(t),
            None => return invalid("last_modified_time"),
        },
        _ => None,
    };
    let contact_type = params
        .get("contact_type")
        .filter(|_| c == Collection::Contacts);
    let search = params.get("search_text").map(str::to_lowercase);
    let location = params.get("location_id").or(params.get("warehouse_id"));

    let name_field = match c {
        Collection::Items | Collection::PriceBooks => "name",
        Collection::Locations => "location_name",
        Collection::Contacts => "contact_name",
        _ => spec.id_field,
    };
    let mut rows: Vec<&Value> = org
        .collection(c)
        .filter(|r| status_filter.is_none_or(|s| field_text(r, "status") == s))
        .filter(|r| contact_type.is_none_or(|t| field_text(r, "contact_type") == t))
        .filter(|r| {
            modified_after.is_none_or(|after| {
                parse_time(&field_text(r, "last_modified_time")).is_some_and(|t| t >= after)
            })
        })
        .filter(|r| {
            search.as_ref().is_none_or(|q| {
                field_text(r, name_field)
                    .to_lowercase()
                    .contains(q.as_str())
            })
        })
        .collect();
    let sort_column = params.get("sort_column").unwrap_or(spec.default_sort);
    let descending = params.get("sort_order") == Some("D");
    rows.sort_by(|a, b| {
        let ord = sort_key(a, sort_column)
            .partial_cmp(&sort_key(b, sort_column))
            .unwrap_or(std::cmp::Ordering::Equal);
        let ord = if descending { ord.reverse() } else { ord };
        ord.then_with(|| field_text(a, spec.id_field).cmp(&field_text(b, spec.id_field)))
    });
    let total = rows.len();
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = (start + per_page).min(total);
    let records: Vec<Value> = rows[start..end]
        .iter()
        .map(|r| {
            let mut out = org.render_list(c, r);
            if let (Some(loc), Collection::Items, true) =
                (location, c, org.profile.narrows_location_filter)
            {
                narrow_stock_to(&mut out, r, loc);
            }
            out
        })
        .collect();
    let list_key = if c == Collection::CustomerPayments {
        org.profile.payments_list_key.as_str()
    } else {
        spec.list_key
    };
    let page_context = json!({
        "page": page, "per_page": per_page, "has_more_page": end < total,
        "report_name": spec.report_name, "applied_filter": filter_by, "custom_fields": [],
        "sort_column": sort_column, "sort_order": if descending { "D" } else { "A" }
    });
    success(Map::from_iter([
        (list_key.to_string(), Value::Array(records)),
        ("page_context".to_string(), page_context),
    ]))
}

/// With `location_id`/`warehouse_id`, the aggregate stock fields reflect that one location.
fn narrow_stock_to(out: &mut Value, full: &Value, location_id: &str) {
    let Some(Value::Array(locations)) = full.get("locations") else {
        return;
    };
    let Some(loc) = locations
        .iter()
        .find(|l| field_text(l, "location_id") == location_id)
    else {
        return;
    };
    for (aggregate, per_location) in [
        ("stock_on_hand", "location_stock_on_hand"),
        ("available_stock", "location_available_stock"),
        ("actual_available_stock", "location_actual_available_stock"),
    ] {
        let value = field_text(loc, per_location)
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or(Value::String(String::new()));
        out[aggregate] = value;
    }
}

fn item_details(org: &Org, params: &Params) -> Response {
    let Some(ids) = params.get("item_ids") else {
        return invalid("item_ids");
    };
    let ids: Vec<&str> = ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.len() > 100 {
        return zoho_error(
            StatusCode::BAD_REQUEST,
            2,
            "Invalid value passed for item_ids: at most 100 ids per request",
        );
    }
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| org.get(Collection::Items, id))
        .map(|r| org.render_detail(Collection::Items, r))
        .collect();
    success(Map::from_iter([("items".to_string(), Value::Array(items))]))
}

fn pricebook_rates(org: &Org, params: &Params) -> Response {
    let Some(book_id) = params.get("pricebook_id") else {
        return invalid("pricebook_id");
    };
    let Some(book) = org.get(Collection::PriceBooks, book_id) else {
        return not_found("Price Book");
    };
    let ids: Vec<&str> = params
        .get("item_ids")
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    let per_item: Vec<&Value> = book
        .get("pricebook_items")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let percentage = book
        .get("percentage")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let increase = book
        .get("is_increase")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| org.get(Collection::Items, id).map(|item| (id, item)))
        .map(|(id, item)| {
            let rate = item.get("rate").and_then(Value::as_f64).unwrap_or(0.0);
            let book_rate = if book.get("pricebook_type").and_then(Value::as_str) == Some("fixed_percentage") {
                let factor = if increase { 1.0 + percentage / 100.0 } else { 1.0 - percentage / 100.0 };
                (rate * factor * 100.0).round() / 100.0
            } else {
                per_item
                    .iter()
                    .find(|p| field_text(p, "item_id") == *id)
                    .and_then(|p| p.get("pricebook_rate").and_then(Value::as_f64))
                    .unwrap_or(rate)
            };
            json!({"item_id": id, "name": item.get("name"), "rate": rate, "pricebook_rate": book_rate})
        })
        .collect();
    success(Map::from_iter([("items".to_string(), Value::Array(items))]))
}

fn image(org: &Org, id: &str) -> Response {
    let Some(item) = org.get(Collection::Items, id) else {
        return not_found("Item");
    };
    let Some(image) = org.images.get(id) else {
        return zoho_error(StatusCode::NOT_FOUND, 1002, "Image does not exist.");
    };
    let mut resp = (StatusCode::OK, image.bytes.clone()).into_response();
    if let Ok(v) = HeaderValue::from_str(&image.content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "inline; filename=\"{}\"",
        field_text(item, "image_name")
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

// ---------------------------------------------------------------- control API

async fn control_stats(AxState(sim): AxState<Simulator>) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::to_value(sim.stats()).unwrap_or(Value::Null),
    )
}

async fn control_reset_stats(AxState(sim): AxState<Simulator>) -> Response {
    sim.reset_stats();
    json_response(StatusCode::OK, &json!({"reset": true}))
}

async fn control_get_config(AxState(sim): AxState<Simulator>) -> Response {
    let config = sim.with_state(|s| s.config.clone());
    json_response(
        StatusCode::OK,
        &serde_json::to_value(config).unwrap_or(Value::Null),
    )
}

/// Merges the posted JSON object into the configuration.
async fn control_set_config(AxState(sim): AxState<Simulator>, body: Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Value::Object(m),
        _ => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "body must be a JSON object of config fields"}),
            )
        }
    };
    let result = sim.with_state(|s| {
        let mut current = serde_json::to_value(&s.config).unwrap_or(Value::Null);
        if let (Value::Object(cur), Value::Object(p)) = (&mut current, patch) {
            for (k, v) in p {
                if !cur.contains_key(&k) {
                    return Err(format!("unknown config field {k:?}"));
                }
                cur.insert(k, v);
            }
        }
        let config: SimConfig = serde_json::from_value(current).map_err(|e| e.to_string())?;
        s.config = config.clone();
        Ok(config)
    });
    match result {
        Ok(config) => json_response(
            StatusCode::OK,
            &serde_json::to_value(config).unwrap_or(Value::Null),
        ),
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e})),
    }
}

async fn control_expire_tokens(AxState(sim): AxState<Simulator>) -> Response {
    sim.expire_tokens();
    json_response(StatusCode::OK, &json!({"expired": true}))
}

fn control_target(path: &str) -> Result<Collection, Response> {
    Collection::from_path(path).ok_or_else(|| {
        json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("unknown collection {path:?}")}),
        )
    })
}

/// Creates a record (no id, or an unknown id) or merges fields into an existing one; bumps
/// `last_modified_time` to now (at least one second past the previous value).
async fn control_upsert(
    AxState(sim): AxState<Simulator>,
    Path((org_id, collection)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let c = match control_target(&collection) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "body must be a JSON object"}),
        );
    };
    let result = sim.upsert(&org_id, c, fields);
    match result {
        Ok(record) => json_response(StatusCode::OK, &record),
        Err(e) => json_response(StatusCode::NOT_FOUND, &json!({"error": e})),
    }
}

/// Applies a change to one record as Zoho would (new id for new records, bumped modified time).
pub fn upsert_record(org: &mut Org, c: Collection, fields: Map<String, Value>) -> Value {
    let id_field = c.spec().id_field;
    let id = match fields.get(id_field) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => org.new_id(),
    };
    let now = Utc::now();
    let previous = org.get(c, &id).cloned();
    let mut record = previous.clone().unwrap_or_else(|| json!({}));
    if let Value::Object(map) = &mut record {
        for (k, v) in fields {
            map.insert(k, v);
        }
        map.insert(id_field.to_string(), Value::String(id.clone()));
    }
    let floor = previous
        .as_ref()
        .and_then(|p| parse_time(&field_text(p, "last_modified_time")))
        .map(|t| t + chrono::Duration::seconds(1));
    let modified = match floor {
        Some(f) if f > now => f,
        _ => now,
    };
    record["last_modified_time"] = Value::String(org.zoho_time(modified));
    if previous.is_none() && record.get("created_time").is_none() {
        record["created_time"] = Value::String(org.zoho_time(modified));
    }
    org.records.entry(c).or_default().insert(id, record.clone());
    record
}

async fn control_delete(
    AxState(sim): AxState<Simulator>,
    Path((org_id, collection, id)): Path<(String, String, String)>,
) -> Response {
    let c = match control_target(&collection) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    match sim.delete(&org_id, c, &id) {
        Ok(record) => json_response(StatusCode::OK, &json!({"deleted": record})),
        Err(e) => json_response(StatusCode::NOT_FOUND, &json!({"error": e})),
    }
}

/// Sets one location's stock of an item: `{"location_id": "...", "stock_on_hand": 12}`.
async fn control_stock(
    AxState(sim): AxState<Simulator>,
    Path((org_id, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Ok(change) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "body must be JSON"}),
        );
    };
    let location_id = field_text(&change, "location_id");
    let Some(qty) = change.get("stock_on_hand").and_then(Value::as_f64) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "stock_on_hand (number) is required"}),
        );
    };
    let prepared = sim.with_state(|s| {
        let bump = s.config.stock_bumps_modified_time;
        let org = s.orgs.get_mut(&org_id).ok_or("unknown organisation")?;
        let mut item = org
            .get(Collection::Items, &id)
            .cloned()
            .ok_or("unknown item")?;
        let locations = item
            .get_mut("locations")
            .and_then(Value::as_array_mut)
            .ok_or("item keeps no stock")?;
        let loc = locations
            .iter_mut()
            .find(|l| field_text(l, "location_id") == location_id)
            .ok_or("unknown location")?;
        let name = field_text(loc, "location_name");
        let primary = loc
            .get("is_primary")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        *loc = crate::demo::location_stock(&location_id, &name, primary, qty, 0.0);
        let total: f64 = locations
            .iter()
            .filter_map(|l| field_text(l, "location_stock_on_hand").parse::<f64>().ok())
            .sum();
        for key in ["stock_on_hand", "available_stock", "actual_available_stock"] {
            item[key] = json!(total);
        }
        if !bump {
            org.records
                .entry(Collection::Items)
                .or_default()
                .insert(id.clone(), item.clone());
        }
        Ok::<(Value, bool), &str>((item, bump))
    });
    let result = match prepared {
        Ok((item, true)) => match item {
            Value::Object(fields) => sim.upsert(&org_id, Collection::Items, fields),
            other => Ok(other),
        },
        Ok((item, false)) => Ok(item),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(record) => json_response(StatusCode::OK, &record),
        Err(e) => json_response(StatusCode::NOT_FOUND, &json!({"error": e})),
    }
}

async fn control_get_webhooks(AxState(sim): AxState<Simulator>) -> Response {
    let config = sim.with_state(|s| s.webhooks.clone());
    json_response(
        StatusCode::OK,
        &serde_json::to_value(config).unwrap_or(Value::Null),
    )
}

/// Sets outbound webhooks (`null` turns them off).
async fn control_set_webhooks(AxState(sim): AxState<Simulator>, body: Bytes) -> Response {
    match serde_json::from_slice::<Option<crate::webhooks::WebhookConfig>>(&body) {
        Ok(config) => {
            sim.configure_webhooks(config.clone());
            json_response(
                StatusCode::OK,
                &serde_json::to_value(config).unwrap_or(Value::Null),
            )
        }
        Err(e) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("invalid webhook config: {e}")}),
        ),
    }
}

/// The `sort_column` values an endpoint documents (the OAS in zoho-openapi/); `None` where it
/// documents none (anything is accepted then).
fn sort_columns(c: Collection) -> Option<&'static [&'static str]> {
    Some(match c {
        Collection::Items => &[
            "name",
            "sku",
            "rate",
            "purchase_rate",
            "created_time",
            "last_modified_time",
            "reorder_level",
            "stock_on_hand",
        ],
        Collection::Contacts => &[
            "contact_name",
            "first_name",
            "last_name",
            "email",
            "outstanding_receivable_amount",
            "created_time",
            "last_modified_time",
        ],
        Collection::Invoices => &[
            "customer_name",
            "invoice_number",
            "date",
            "due_date",
            "total",
            "balance",
            "created_time",
        ],
        Collection::SalesOrders => &[
            "customer_name",
            "salesorder_number",
            "shipment_date",
            "last_modified_time",
            "reference_number",
            "total",
            "date",
            "created_time",
        ],
        Collection::Bills => &[
            "vendor_name",
            "bill_number",
            "date",
            "due_date",
            "total",
            "balance",
            "created_time",
        ],
        Collection::CreditNotes => &[
            "customer_name",
            "creditnote_number",
            "balance",
            "total",
            "date",
            "created_time",
        ],
        Collection::VendorPayments => &[
            "vendor_name",
            "date",
            "reference_number",
            "amount",
            "balance",
        ],
        Collection::PurchaseOrders => &[
            "vendor_name",
            "purchaseorder_number",
            "date",
            "delivery_date",
            "total",
            "created_time",
        ],
        Collection::Locations | Collection::PriceBooks | Collection::CustomerPayments => {
            return None
        }
    })
}
