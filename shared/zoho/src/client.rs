//! The Zoho client every function uses: authenticated GETs through the shared budget and token, with
//! Zoho's error model (401 code 57 → refresh once; 404 code 1002 → not found; 429 → back off and retry;
//! 5xx and timeouts → jittered exponential backoff; non-zero `code` on HTTP 200 → error), pagination as
//! a pull stream of pages, and bulk item details in chunks of 100, parsed with `tds-core`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use sqlx::PgPool;
use tds_core::metrics::{Dim, Metric, Metrics};
use tds_core::{parse_entity, AnyEntity, EntityKind, Item};

use crate::budget::{rand_u32, BudgetSettings, Priority, RateBudget};
use crate::config::{OrgConfig, Product};
use crate::secret::CredentialSource;
use crate::token::{TokenManager, TokenSettings};
use crate::ZohoError;

/// Retry policy for 5xx, timeouts and 429s.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles each attempt, with jitter.
    pub base_delay: Duration,
    /// Longest backoff.
    pub max_delay: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything the client is built from.
#[derive(Default)]
pub struct ClientSettings {
    /// Token refresh behaviour.
    pub tokens: TokenSettings,
    /// Rate budget.
    pub budget: BudgetSettings,
    /// Retries.
    pub retry: RetryPolicy,
    /// Where calls, 429s, budget waits, token refreshes and the daily quota are counted.
    pub metrics: Metrics,
}

pub use tds_core::kind::Endpoint;

/// The endpoint of a kind that Zoho serves directly (derived kinds have none), from the kind table.
pub fn endpoint(kind: EntityKind) -> Option<Endpoint> {
    kind.spec().endpoint
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// Page number (1-based).
    pub number: u32,
    /// The records, as Zoho sent them.
    pub records: Vec<Value>,
    /// `page_context.has_more_page`.
    pub has_more: bool,
}

impl Page {
    /// Parses every record as `kind`.
    pub fn parse(&self, kind: EntityKind) -> Result<Vec<AnyEntity>, ZohoError> {
        self.records
            .iter()
            .map(|r| parse_entity(kind, r.clone()).map_err(ZohoError::from))
            .collect()
    }
}

/// The Zoho client (cheap to share behind an `Arc`).
pub struct ZohoClient {
    http: reqwest::Client,
    orgs: std::sync::RwLock<HashMap<String, OrgConfig>>,
    /// Where the organisations come from when they can change (a secret), if anywhere.
    directory: Option<Arc<crate::secret::SecretDirectory>>,
    tokens: TokenManager,
    budget: RateBudget,
    retry: RetryPolicy,
    metrics: Metrics,
}

/// A request's outcome before retries.
enum Attempt {
    Done(Value),
    Bytes(String, Vec<u8>),
    RetryAfter(Duration),
    Refresh(i64, String),
    Fail(ZohoError),
}

impl ZohoClient {
    /// A client for `orgs`, sharing token cache and rate budget through `pool`.
    pub fn new(
        orgs: Vec<OrgConfig>,
        credentials: Arc<dyn CredentialSource>,
        pool: PgPool,
        settings: ClientSettings,
    ) -> Result<ZohoClient, ZohoError> {
        let http = reqwest::Client::builder()
            .timeout(settings.retry.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("tds/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ZohoError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(ZohoClient {
            tokens: TokenManager::new(http.clone(), pool.clone(), credentials, settings.tokens)
                .with_metrics(settings.metrics.clone()),
            budget: RateBudget::new(pool, settings.budget),
            http,
            orgs: std::sync::RwLock::new(orgs.into_iter().map(|o| (o.org_id.clone(), o)).collect()),
            directory: None,
            retry: settings.retry,
            metrics: settings.metrics,
        })
    }

    /// A client for the organisations and credentials of `directory`, following its changes (see
    /// [`ZohoClient::ensure_org`], [`ZohoClient::refresh_orgs`]).
    pub fn with_directory(
        directory: Arc<crate::secret::SecretDirectory>,
        pool: PgPool,
        settings: ClientSettings,
    ) -> Result<ZohoClient, ZohoError> {
        let mut client =
            ZohoClient::new(directory.organizations(), directory.clone(), pool, settings)?;
        client.directory = Some(directory);
        Ok(client)
    }

    fn set_orgs(&self, orgs: Vec<OrgConfig>) {
        *self.orgs.write().unwrap_or_else(|p| p.into_inner()) =
            orgs.into_iter().map(|o| (o.org_id.clone(), o)).collect();
    }

    /// Makes sure `org_id` is configured: if it is not, the credentials document is read again
    /// (at most once per [`crate::secret::SecretDirectory::MIN_RELOAD`]) before it is refused.
    pub async fn ensure_org(&self, org_id: &str) -> Result<(), ZohoError> {
        if self.org(org_id).is_ok() {
            return Ok(());
        }
        if let Some(dir) = &self.directory {
            if dir.reload_on_miss().await? {
                self.set_orgs(dir.organizations());
            }
        }
        self.org(org_id).map(|_| ())
    }

    /// Reads the credentials document again when its copy is older than
    /// [`crate::secret::SecretDirectory::TTL`] (before listing every organisation).
    pub async fn refresh_orgs(&self) -> Result<(), ZohoError> {
        if let Some(dir) = &self.directory {
            if dir
                .reload_if_older(crate::secret::SecretDirectory::TTL)
                .await?
            {
                self.set_orgs(dir.organizations());
            }
        }
        Ok(())
    }

    /// The organisation's configuration.
    pub fn org(&self, org_id: &str) -> Result<OrgConfig, ZohoError> {
        self.orgs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(org_id)
            .cloned()
            .ok_or_else(|| ZohoError::UnknownOrganization(org_id.to_string()))
    }

    /// The configured organisations' ids, sorted.
    pub fn org_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .orgs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// The shared rate budget.
    pub fn budget(&self) -> &RateBudget {
        &self.budget
    }

    /// GET `{api_domain}{product root}/{path}?organization_id=...&query` as JSON.
    pub async fn get_json(
        &self,
        org_id: &str,
        product: Product,
        path: &str,
        query: &[(&str, &str)],
        priority: Priority,
    ) -> Result<Value, ZohoError> {
        match self
            .send(org_id, product, path, query, priority, false)
            .await?
        {
            Attempt::Done(v) => Ok(v),
            _ => Err(ZohoError::Malformed {
                what: path.to_string(),
                message: "unexpected response kind".into(),
            }),
        }
    }

    /// GET a binary resource (an item image): `(content type, bytes)`.
    pub async fn get_bytes(
        &self,
        org_id: &str,
        product: Product,
        path: &str,
        priority: Priority,
    ) -> Result<(String, Vec<u8>), ZohoError> {
        match self
            .send(org_id, product, path, &[], priority, true)
            .await?
        {
            Attempt::Bytes(t, b) => Ok((t, b)),
            _ => Err(ZohoError::Malformed {
                what: path.to_string(),
                message: "expected bytes".into(),
            }),
        }
    }

    async fn send(
        &self,
        org_id: &str,
        product: Product,
        path: &str,
        query: &[(&str, &str)],
        priority: Priority,
        binary: bool,
    ) -> Result<Attempt, ZohoError> {
        let org = &self.org(org_id)?;
        // Every segment is a plain name or id: nothing can climb to another path or add a query.
        if let Some(bad) = path.split('/').find(|segment| {
            segment.is_empty()
                || !segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }) {
            return Err(ZohoError::InvalidId(tds_core::fields::truncate(bad, 40)));
        }
        let what = format!("GET {}/{path}", product.root());
        let url = format!("{}{}/{path}", org.api_domain, product.root());
        let mut refreshed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let asked = std::time::Instant::now();
            let permit = self.budget.acquire(org_id, priority).await?;
            self.metrics.record(
                Metric::ZohoBudgetWaitMs,
                asked.elapsed().as_secs_f64() * 1000.0,
            );
            let token = self.tokens.access_token(org).await?;
            self.metrics
                .count_by(Metric::ZohoCalls, Dim::Priority, priority.as_str(), 1);
            let result = self
                .http
                .get(&url)
                .header(
                    "Authorization",
                    format!("Zoho-oauthtoken {}", token.expose()),
                )
                .query(&[("organization_id", org_id)])
                .query(query)
                .send()
                .await;
            drop(permit);
            let outcome = match result {
                Err(e) => {
                    let message = e.without_url().to_string();
                    if attempt >= self.retry.max_attempts {
                        return Err(ZohoError::Transport { what, message });
                    }
                    tracing::warn!(org = org_id, %what, attempt, %message, "Zoho request failed; retrying");
                    Attempt::RetryAfter(self.backoff(attempt))
                }
                Ok(resp) => self.classify(org_id, &what, resp, binary, attempt).await?,
            };
            match outcome {
                Attempt::Refresh(code, message) => {
                    // Refresh once; a token refused right after its refresh (or already known to be
                    // refused) means a revoked grant or a missing scope: fail, and let other callers
                    // fail at once rather than burn Zoho's few refreshes.
                    if refreshed {
                        self.tokens.mark_refused(org, &token).await?;
                    }
                    if refreshed || !self.tokens.invalidate(org, &token).await? {
                        return Err(ZohoError::Unauthorized {
                            what,
                            code,
                            message,
                        });
                    }
                    refreshed = true;
                }
                Attempt::RetryAfter(wait) => tokio::time::sleep(wait).await,
                Attempt::Fail(e) => return Err(e),
                done => {
                    self.tokens.accepted(org, &token).await?;
                    return Ok(done);
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .base_delay
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let capped = exp.min(self.retry.max_delay);
        // Full jitter between half and all of the backoff.
        let half = capped / 2;
        half + Duration::from_millis(u64::from(rand_u32()) % (half.as_millis() as u64 + 1))
    }

    async fn classify(
        &self,
        org_id: &str,
        what: &str,
        resp: reqwest::Response,
        binary: bool,
        attempt: u32,
    ) -> Result<Attempt, ZohoError> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.record_quota(org_id, &headers).await?;
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = resp.bytes().await.map_err(|e| ZohoError::Transport {
            what: what.to_string(),
            message: e.without_url().to_string(),
        })?;
        if binary && status == 200 && !content_type.starts_with("application/json") {
            return Ok(Attempt::Bytes(content_type, bytes.to_vec()));
        }
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let code = body
            .as_ref()
            .and_then(|b| b.get("code"))
            .and_then(Value::as_i64);
        let message = body
            .as_ref()
            .and_then(|b| b.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
            });
        let what = what.to_string();
        // "Does not exist" is Zoho's code 1002, at whatever status; a 404 with another code ("Invalid
        // URL", 5) is a request TDS got wrong, never evidence that a record was deleted. A binary
        // download's 404 carries no JSON.
        if code == Some(1002) || (status == 404 && code.is_none() && binary) {
            return Ok(Attempt::Fail(ZohoError::NotFound {
                what,
                code: code.unwrap_or(0),
                message,
            }));
        }
        Ok(match status {
            200..=299 => match (body, code) {
                (Some(body), Some(0)) => Attempt::Done(body),
                (Some(_), Some(code))
                    if crate::error::code_class(status, code).retried()
                        && attempt < self.retry.max_attempts =>
                {
                    tracing::warn!(org = org_id, %what, status, code, attempt, reason = crate::error::code_class(status, code).reason(), "Zoho error code; retrying");
                    Attempt::RetryAfter(self.backoff(attempt))
                }
                (Some(_), Some(code)) => Attempt::Fail(ZohoError::Api {
                    what,
                    status,
                    code,
                    message,
                }),
                (Some(body), None) => Attempt::Done(body),
                (None, _) => Attempt::Fail(ZohoError::Malformed {
                    what,
                    message: "body is not JSON".into(),
                }),
            },
            401 => Attempt::Refresh(code.unwrap_or(0), message),
            404 => Attempt::Fail(ZohoError::Api {
                what,
                status,
                code: code.unwrap_or(0),
                message,
            }),
            429 => {
                self.metrics.count(Metric::ZohoThrottled, 1);
                let remaining = header_i64(&headers, "x-rate-limit-remaining");
                if remaining == Some(0) {
                    let reset = header_i64(&headers, "x-rate-limit-reset").unwrap_or(3600);
                    return Ok(Attempt::Fail(ZohoError::DailyQuotaExhausted {
                        org: org_id.to_string(),
                        reset_at: chrono::Utc::now() + chrono::Duration::seconds(reset),
                    }));
                }
                let retry_after = header_i64(&headers, "retry-after")
                    .map(|s| Duration::from_secs(s.max(0) as u64));
                let wait = self.budget.report_rate_limited(org_id, retry_after).await?;
                if attempt >= self.retry.max_attempts {
                    return Ok(Attempt::Fail(ZohoError::RateLimited {
                        org: org_id.to_string(),
                        retry_after: wait,
                    }));
                }
                // The budget now blocks the organisation; the next acquire waits it out.
                Attempt::RetryAfter(Duration::ZERO)
            }
            500..=599 => {
                if attempt >= self.retry.max_attempts {
                    Attempt::Fail(ZohoError::Server {
                        what,
                        status,
                        message,
                    })
                } else {
                    tracing::warn!(org = org_id, %what, status, attempt, "Zoho server error; retrying");
                    Attempt::RetryAfter(self.backoff(attempt))
                }
            }
            _ => Attempt::Fail(ZohoError::Api {
                what,
                status,
                code: code.unwrap_or(0),
                message,
            }),
        })
    }

    async fn record_quota(&self, org_id: &str, headers: &HeaderMap) -> Result<(), ZohoError> {
        if let (Some(remaining), Some(reset)) = (
            header_i64(headers, "x-rate-limit-remaining"),
            header_i64(headers, "x-rate-limit-reset"),
        ) {
            let limit =
                header_i64(headers, "x-rate-limit-limit").and_then(|l| i32::try_from(l).ok());
            if let Some(l) = limit.filter(|l| *l > 0) {
                let used = (f64::from(l) - remaining as f64).clamp(0.0, f64::from(l));
                self.metrics.record(
                    Metric::ZohoDailyQuotaUsedPercent,
                    used * 100.0 / f64::from(l),
                );
            }
            self.budget
                .report_quota(
                    org_id,
                    limit,
                    i32::try_from(remaining).unwrap_or(i32::MAX),
                    reset,
                )
                .await?;
        }
        Ok(())
    }

    /// Pages of `kind`'s list (200 per page), with extra query parameters (`filter_by`,
    /// `sort_column`, `last_modified_time`, ...).
    pub fn pages<'a>(
        &'a self,
        org_id: &'a str,
        kind: EntityKind,
        query: Vec<(String, String)>,
        priority: Priority,
    ) -> Result<Pages<'a>, ZohoError> {
        let endpoint = endpoint(kind).ok_or_else(|| {
            ZohoError::Config(format!("{kind} has no Zoho list endpoint of its own"))
        })?;
        let product = self.org(org_id)?.product_for(kind);
        Ok(Pages {
            client: self,
            org_id,
            product,
            endpoint,
            query,
            priority,
            next: Some(1),
        })
    }

    /// One record by id (the detail GET, with line items, stock per location, ...).
    pub async fn get_record(
        &self,
        org_id: &str,
        kind: EntityKind,
        id: &str,
        priority: Priority,
    ) -> Result<Value, ZohoError> {
        let endpoint = endpoint(kind)
            .ok_or_else(|| ZohoError::Config(format!("{kind} has no Zoho endpoint of its own")))?;
        zoho_id(id)?;
        let product = self.org(org_id)?.product_for(kind);
        let body = self
            .get_json(
                org_id,
                product,
                &format!("{}/{id}", endpoint.path),
                &[],
                priority,
            )
            .await?;
        body.get(endpoint.single_key)
            .cloned()
            .ok_or_else(|| ZohoError::Malformed {
                what: format!("GET {}/{id}", endpoint.path),
                message: format!("no `{}` in the response", endpoint.single_key),
            })
    }

    /// Item details (stock per location included) for `ids`, 100 per `/itemdetails` call.
    pub async fn item_details(
        &self,
        org_id: &str,
        ids: &[String],
        priority: Priority,
    ) -> Result<Vec<Item>, ZohoError> {
        let product = self.org(org_id)?.product_for(EntityKind::Item);
        for id in ids {
            zoho_id(id)?;
        }
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let joined = chunk.join(",");
            let body = self
                .get_json(
                    org_id,
                    product,
                    "itemdetails",
                    &[("item_ids", joined.as_str())],
                    priority,
                )
                .await?;
            let items = body.get("items").and_then(Value::as_array).ok_or_else(|| {
                ZohoError::Malformed {
                    what: "GET itemdetails".into(),
                    message: "no `items` array".into(),
                }
            })?;
            for record in items {
                out.push(Item::parse(record.clone())?);
            }
        }
        Ok(out)
    }
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A pull stream of list pages; `next()` fetches the following page until `has_more_page` is false.
pub struct Pages<'a> {
    client: &'a ZohoClient,
    org_id: &'a str,
    product: Product,
    endpoint: Endpoint,
    query: Vec<(String, String)>,
    priority: Priority,
    next: Option<u32>,
}

impl Pages<'_> {
    /// Starts at page `n` instead of 1 (to resume).
    pub fn starting_at(mut self, n: u32) -> Self {
        self.next = Some(n.max(1));
        self
    }

    /// The next page, or `None` after the last.
    pub async fn next(&mut self) -> Option<Result<Page, ZohoError>> {
        let number = self.next?;
        let page = number.to_string();
        let mut query: Vec<(&str, &str)> = vec![("page", page.as_str()), ("per_page", "200")];
        query.extend(self.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let result = self
            .client
            .get_json(
                self.org_id,
                self.product,
                self.endpoint.path,
                &query,
                self.priority,
            )
            .await
            .and_then(|body| {
                let records = self
                    .endpoint
                    .list_keys
                    .iter()
                    .find_map(|k| body.get(*k).and_then(Value::as_array))
                    .cloned()
                    .ok_or_else(|| ZohoError::Malformed {
                        what: format!("GET {}", self.endpoint.path),
                        message: format!(
                            "none of the list keys {:?} in the response",
                            self.endpoint.list_keys
                        ),
                    })?;
                let has_more = body
                    .get("page_context")
                    .and_then(|c| c.get("has_more_page"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                Ok(Page {
                    number,
                    records,
                    has_more,
                })
            });
        self.next = match &result {
            Ok(p) if p.has_more => Some(number + 1),
            _ => None,
        };
        Some(result)
    }
}

/// `id` if it is a Zoho id, else [`ZohoError::InvalidId`] (shown truncated).
fn zoho_id(id: &str) -> Result<&str, ZohoError> {
    if tds_core::fields::is_zoho_id(id) {
        Ok(id)
    } else {
        Err(ZohoError::InvalidId(tds_core::fields::truncate(id, 40)))
    }
}
