//! Webhook ingest: authenticate a delivery with its organisation's webhook secrets, normalise it, and
//! put it on the inbox queue. Answers 2xx only once the queue accepted the message, 4xx (with nothing
//! enqueued) for bad input, 5xx only when the queue or the secret store failed, so Zoho retries.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::metrics::{Dim, Metric, Metrics};
use crate::ports::{PortError, PortFuture, Queue, SecretStore};
use crate::webhook::{normalize, verify, SecretPlace, WebhookAuth, WebhookError, WebhookRequest};

/// Where each organisation's webhook authentication comes from.
pub trait WebhookAuthSource: Send + Sync {
    /// The authentication configured for `org_id`; `PortError::NotFound` when there is none.
    fn auth<'a>(&'a self, org_id: &'a str) -> PortFuture<'a, WebhookAuth>;
}

#[derive(Deserialize)]
struct WebhookEntry {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    signing_secret: Option<String>,
}

#[derive(Deserialize)]
struct OrgEntry {
    organization_id: String,
    #[serde(default)]
    webhook: Option<WebhookEntry>,
}

#[derive(Deserialize)]
struct Document {
    organizations: Vec<OrgEntry>,
}

/// Webhook settings per organisation id, as parsed from the credentials document.
type OrgAuths = Vec<(String, WebhookAuth)>;

/// Webhook authentication read from the credentials document in a secret store:
/// `{"organizations": [{"organization_id": "...", "webhook": {"header": "X-TDS-Webhook-Secret"
/// | "query": "token", "secret": "...", "signing_secret": "..."}}]}` (other fields are ignored).
pub struct SecretWebhookAuth {
    secrets: Arc<dyn SecretStore>,
    secret_name: String,
    /// The last document text and its parsed settings, so a warm Lambda parses it once per rotation,
    /// not once per request.
    parsed: std::sync::Mutex<Option<(String, Arc<OrgAuths>)>>,
}

impl SecretWebhookAuth {
    /// Reads `secret_name` from `secrets` (wrap the store in `CachedSecrets` for warm Lambdas).
    pub fn new(secrets: Arc<dyn SecretStore>, secret_name: impl Into<String>) -> SecretWebhookAuth {
        SecretWebhookAuth {
            secrets,
            secret_name: secret_name.into(),
            parsed: std::sync::Mutex::new(None),
        }
    }

    fn parse(&self, text: &str) -> Result<OrgAuths, PortError> {
        let doc: Document = serde_json::from_str(text).map_err(|e| PortError::Rejected {
            port: "secret store",
            message: format!(
                "secret {} is not a valid credentials document (line {}, column {})",
                self.secret_name,
                e.line(),
                e.column()
            ),
        })?;
        Ok(doc
            .organizations
            .into_iter()
            .filter_map(|o| {
                let entry = o.webhook?;
                let static_secret = match (entry.header, entry.query, entry.secret) {
                    (Some(h), _, Some(s)) => Some((SecretPlace::Header(h.to_ascii_lowercase()), s)),
                    (None, Some(q), Some(s)) => Some((SecretPlace::Query(q), s)),
                    _ => None,
                };
                Some((
                    o.organization_id,
                    WebhookAuth {
                        static_secret,
                        signing_secret: entry.signing_secret,
                    },
                ))
            })
            .collect())
    }
}

impl WebhookAuthSource for SecretWebhookAuth {
    fn auth<'a>(&'a self, org_id: &'a str) -> PortFuture<'a, WebhookAuth> {
        Box::pin(async move {
            let text = self.secrets.secret(&self.secret_name).await?;
            let cached = {
                let guard = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
                guard
                    .as_ref()
                    .filter(|(t, _)| *t == text)
                    .map(|(_, p)| p.clone())
            };
            let settings = match cached {
                Some(p) => p,
                None => {
                    let p = Arc::new(self.parse(&text)?);
                    *self.parsed.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((text, p.clone()));
                    p
                }
            };
            settings
                .iter()
                .find(|(org, _)| org == org_id)
                .map(|(_, auth)| auth.clone())
                .ok_or_else(|| PortError::NotFound {
                    port: "secret store",
                    what: format!("webhook settings for organisation {org_id}"),
                })
        })
    }
}

/// The answer to give Zoho.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

/// The ingest core.
pub struct WebhookIngest {
    queue: Arc<dyn Queue>,
    auth: Arc<dyn WebhookAuthSource>,
    metrics: Metrics,
}

impl WebhookIngest {
    /// Ingest onto `queue`, authenticating with `auth`.
    pub fn new(queue: Arc<dyn Queue>, auth: Arc<dyn WebhookAuthSource>) -> WebhookIngest {
        WebhookIngest {
            queue,
            auth,
            metrics: Metrics::disabled(),
        }
    }

    /// Counts accepted and refused deliveries in `metrics` (`WebhooksAccepted`, `WebhooksRejected`
    /// by `Reason`; a dependency failure is refused with reason `unavailable`).
    pub fn with_metrics(mut self, metrics: Metrics) -> WebhookIngest {
        self.metrics = metrics;
        self
    }

    /// The metrics this ingest records in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Handles one delivery, in a span naming its organisation.
    pub async fn handle(&self, req: &WebhookRequest<'_>, now: DateTime<Utc>) -> IngestResponse {
        let span = tracing::info_span!("webhook", org = %crate::fields::truncate(req.org_id, 40));
        tracing::Instrument::instrument(self.handle_inner(req, now), span).await
    }

    async fn handle_inner(&self, req: &WebhookRequest<'_>, now: DateTime<Utc>) -> IngestResponse {
        // What the caller sent is logged cut short: an id is a few digits, not 60 KB.
        let org = crate::fields::truncate(req.org_id, 40);
        let refuse = |e: WebhookError| {
            tracing::warn!(%org, status = e.status(), reason = %crate::fields::truncate(&e.to_string(), 300), "webhook refused");
            self.metrics
                .count_by(Metric::WebhooksRejected, Dim::Reason, e.reason(), 1);
            IngestResponse {
                status: e.status(),
                body: json!({"error": e.to_string()}),
            }
        };
        // The dependency's own text (a secret's ARN, an SDK error chain) stays in the logs.
        let unavailable = |e: PortError| {
            tracing::error!(%org, error = %e, "webhook not accepted: dependency failed");
            self.metrics
                .count_by(Metric::WebhooksRejected, Dim::Reason, "unavailable", 1);
            IngestResponse {
                status: 503,
                body: json!({"error": "temporarily unavailable: retry later"}),
            }
        };
        if !crate::fields::is_zoho_id(req.org_id) {
            return refuse(WebhookError::Unauthorized(
                "no webhook secret is configured for that organisation (organisation ids are digits)"
                    .into(),
            ));
        }
        let auth = match self.auth.auth(req.org_id).await {
            Ok(a) => a,
            Err(PortError::NotFound { .. }) => {
                return refuse(WebhookError::Unauthorized(format!(
                    "no webhook secret is configured for organisation {}",
                    req.org_id
                )))
            }
            Err(e) => return unavailable(e),
        };
        if let Err(e) = verify(&auth, req) {
            return refuse(e);
        }
        let message = match normalize(req, now) {
            Ok(m) => m,
            Err(e) => return refuse(e),
        };
        let body = match serde_json::to_string(&message) {
            Ok(b) => b,
            Err(e) => return refuse(WebhookError::Malformed(e.to_string())),
        };
        match self.queue.send(body).await {
            Ok(message_id) => {
                tracing::info!(%org, kind = %message.kind, zoho_id = %message.zoho_id, %message_id, "webhook accepted");
                self.metrics.count(Metric::WebhooksAccepted, 1);
                IngestResponse {
                    status: 202,
                    body: json!({"accepted": true, "message_id": message_id, "kind": message.kind,
                                 "zoho_id": message.zoho_id, "dedupe_key": message.dedupe_key}),
                }
            }
            Err(e) => unavailable(e),
        }
    }
}
