//! A Zoho simulator for TDS: Books v3 and Inventory v1 read APIs, Zoho Accounts' token endpoint, the
//! limits Zoho enforces, and a control API for tests. Faithful to `../shared/ZOHO.md`: string ids,
//! `+0530` offsets, six-decimal numbers, `""` for unset numbers, services without stock fields, both
//! stock shapes, errors as Zoho sends them (401 code 14 / 57, 404 code 1002, 429, non-zero `code` on
//! HTTP 200), per-minute, concurrency and daily limits with `X-Rate-Limit-*` headers.
//!
//! It owns simulated state only; it is used by tests, benchmarks and the local stack, never in Lambda.
#![recursion_limit = "256"]

pub mod data;
pub mod demo;
pub mod http;
mod json;
mod server;
mod state;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use data::{Collection, Org, Profile, StockShape};
pub use demo::{generate, DemoSpec, Rng};
pub use state::{ClientCredentials, OrgStats, SimConfig, Stats};
pub use webhooks::{SentDelivery, WebhookConfig};

use serde_json::{Map, Value};

use state::State;

/// A running or runnable simulator: shared state behind the HTTP API. Cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
}

/// A simulator serving on a local address.
pub struct RunningSimulator {
    /// The simulator (inspect stats, change config, mutate records).
    pub sim: Simulator,
    /// `http://127.0.0.1:PORT`: both the accounts server and the API domain.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Simulator {
    /// A simulator with `config`, the given organisations, and one OAuth client (`client`).
    pub fn new(config: SimConfig, orgs: Vec<Org>, client: ClientCredentials) -> Simulator {
        Simulator {
            state: Arc::new(Mutex::new(State::new(config, orgs, client))),
        }
    }

    /// A simulator with default limits, one demo organisation from `spec` and the default client.
    pub fn demo(spec: &DemoSpec) -> Simulator {
        Simulator::new(
            SimConfig::default(),
            vec![generate(spec)],
            ClientCredentials::default(),
        )
    }

    /// Runs `f` on the state (config, organisations, stats) under the lock.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Current statistics.
    pub fn stats(&self) -> Stats {
        self.with_state(|s| s.stats.clone())
    }

    /// Every webhook delivery a receiver answered 2xx so far, as sent, in order.
    pub fn acknowledged_deliveries(&self) -> Vec<webhooks::SentDelivery> {
        self.with_state(|s| s.acknowledged.clone())
    }

    /// Clears statistics (call counts, refreshes).
    pub fn reset_stats(&self) {
        self.with_state(|s| s.stats = Stats::default());
    }

    /// Forgets the calls the rate limits have counted (per-minute windows and daily quotas), as if a
    /// new day had begun: for a benchmark that measures from a quiet start after loading data.
    pub fn reset_limits(&self) {
        self.with_state(|s| {
            s.windows.clear();
            s.daily.clear();
        });
    }

    /// Changes the configuration.
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        self.with_state(|s| f(&mut s.config));
    }

    /// Gives organisation `org_id` another behaviour profile (its stock shape included).
    pub fn set_profile(&self, org_id: &str, profile: Profile) {
        self.with_state(|s| {
            if let Some(org) = s.orgs.get_mut(org_id) {
                org.stock_shape = profile.stock_shape;
                org.profile = profile;
            }
        })
    }

    /// Expires every access token issued so far (the next API call gets 401 code 57).
    pub fn expire_tokens(&self) {
        self.with_state(|s| s.tokens.clear());
    }

    /// Sets (or with `None` stops) outbound webhooks for changes made through the simulator.
    pub fn configure_webhooks(&self, config: Option<WebhookConfig>) {
        self.with_state(|s| s.webhooks = config);
    }

    /// Creates a record (no id or an unknown id) or merges `fields` into an existing one, bumping
    /// `last_modified_time` as Zoho does, and sends the webhook for it.
    pub fn upsert(
        &self,
        org_id: &str,
        c: Collection,
        fields: Map<String, Value>,
    ) -> Result<Value, String> {
        let (record, payload, created) = self.with_state(|s| {
            let org = s
                .orgs
                .get_mut(org_id)
                .ok_or_else(|| format!("unknown organisation {org_id:?}"))?;
            let id = fields.get(c.spec().id_field).map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            });
            let created = id.as_deref().is_none_or(|id| org.get(c, id).is_none());
            let record = server::upsert_record(org, c, fields);
            let payload = webhook_payload(org, c, &record);
            Ok::<_, String>((record, payload, created))
        })?;
        self.notify(c, if created { "created" } else { "edited" }, payload);
        Ok(record)
    }

    /// Deletes a record and sends the webhook of a Deleted rule (with the record as it was).
    pub fn delete(&self, org_id: &str, c: Collection, id: &str) -> Result<Value, String> {
        let (record, payload) = self.with_state(|s| {
            let org = s
                .orgs
                .get_mut(org_id)
                .ok_or_else(|| format!("unknown organisation {org_id:?}"))?;
            let record = org
                .records
                .get_mut(&c)
                .and_then(|m| m.remove(id))
                .ok_or_else(|| format!("no {} {id} in {org_id}", c.spec().path))?;
            let payload = webhook_payload(org, c, &record);
            Ok::<_, String>((record, payload))
        })?;
        self.notify(c, "deleted", payload);
        Ok(record)
    }

    fn notify(&self, c: Collection, action: &str, record: Value) {
        self.with_state(|s| {
            if let (Some(_), Some(tx)) = (&s.webhooks, &s.outbox) {
                let queued = tx.send(webhooks::Delivery {
                    key: c.webhook_key().to_string(),
                    action: action.to_string(),
                    record,
                });
                if queued.is_ok() {
                    s.stats.webhooks_pending += 1;
                }
            }
        });
    }

    /// Binds `addr` (port 0 for any free port) and serves until the returned handle is dropped.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<RunningSimulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        self.with_state(|s| s.api_domain = base_url.clone());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.with_state(|s| s.outbox = Some(tx));
        tokio::spawn(webhooks::deliver_loop(self.clone(), rx));
        let app = server::router(self.clone());
        let task = tokio::spawn(async move {
            http::serve(listener, app, http::HEADER_READ_TIMEOUT).await;
        });
        Ok(RunningSimulator {
            sim: self,
            base_url,
            addr,
            task,
        })
    }

    /// Serves on a free port of 127.0.0.1.
    pub async fn serve_local(self) -> std::io::Result<RunningSimulator> {
        self.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }
}

/// What a webhook carries: the record as a list returns it (Zoho's payloads omit invoice line items and
/// may omit item image details, so receivers must re-fetch).
fn webhook_payload(org: &Org, c: Collection, record: &Value) -> Value {
    let mut payload = org.render_list(c, record);
    if let (Collection::Items, Value::Object(map)) = (c, &mut payload) {
        for key in ["image_id", "image_name", "image_type", "image_document_id"] {
            map.remove(key);
        }
    }
    payload
}
