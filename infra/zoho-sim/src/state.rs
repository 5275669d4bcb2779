//! The simulator's mutable state: configuration, organisations, OAuth clients and issued tokens,
//! per-organisation limit windows, and the statistics tests read (call counts per endpoint, refreshes).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::data::Org;
use crate::demo::Rng;

/// Limits and faults; every field can be changed at run time (`Simulator::configure`, `POST /__sim/config`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Requests per organisation per window (Zoho: 100 per minute).
    pub per_minute_limit: u32,
    /// Length of that window (60 s; a benchmark may scale it down).
    #[serde(with = "millis")]
    pub window: Duration,
    /// Requests in flight per organisation at once (Zoho: 5 free, 10 paid).
    pub max_in_flight: u32,
    /// Requests per organisation per day (reported in `X-Rate-Limit-*`).
    pub daily_limit: u32,
    /// Length of the "day" for the daily quota (a test may shorten it).
    #[serde(with = "millis")]
    pub daily_window: Duration,
    /// Whether 429 responses carry `Retry-After` (Zoho's behaviour is disputed).
    pub retry_after: bool,
    /// Access-token lifetime (`expires_in`).
    pub token_ttl_secs: u64,
    /// Refreshes allowed per refresh token per refresh window (Zoho: 10 per 10 minutes).
    pub refresh_limit: u32,
    /// The refresh window.
    #[serde(with = "millis")]
    pub refresh_window: Duration,
    /// Fraction of API calls answered 500 `{"code":1000}`.
    pub error_rate: f64,
    /// Fraction of API calls answered HTTP 200 with a non-zero `code`.
    pub http200_error_rate: f64,
    /// Latency added to every API call.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Quirk: ignore `last_modified_time` on lists (Zoho silently ignores some filters).
    pub ignore_modified_filter: bool,
    /// Whether changing an item's stock through the control API bumps its `last_modified_time`.
    pub stock_bumps_modified_time: bool,
    /// A revoked grant or a token without the needed scope: every API call answers 401 code 57,
    /// however fresh the token (refreshes still succeed, as they do at Zoho).
    pub deny_tokens: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            per_minute_limit: 100,
            window: Duration::from_secs(60),
            max_in_flight: 10,
            daily_limit: 10_000,
            daily_window: Duration::from_secs(86_400),
            retry_after: false,
            token_ttl_secs: 3600,
            refresh_limit: 10,
            refresh_window: Duration::from_secs(600),
            error_rate: 0.0,
            http200_error_rate: 0.0,
            latency: Duration::ZERO,
            ignore_modified_filter: false,
            stock_bumps_modified_time: true,
            deny_tokens: false,
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// The OAuth client the simulator accepts.
#[derive(Clone, serde::Deserialize)]
pub struct ClientCredentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// The refresh token.
    pub refresh_token: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("refresh_token", &"***")
            .finish()
    }
}

impl Default for ClientCredentials {
    fn default() -> Self {
        ClientCredentials {
            client_id: "1000.SIMULATORCLIENT".into(),
            client_secret: "simulator-client-secret".into(),
            refresh_token: "1000.simulator.refresh.token".into(),
        }
    }
}

/// Counters for one organisation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrgStats {
    /// API calls served (past authentication and limits).
    pub calls: u64,
    /// Calls by `METHOD /path` with ids replaced by `{id}`.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Calls refused with 429 (per-minute, concurrency or daily limit).
    pub rate_limited: u64,
    /// Highest number of requests in flight at once.
    pub max_in_flight_seen: u32,
}

/// Everything the simulator counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Per organisation.
    pub orgs: BTreeMap<String, OrgStats>,
    /// Successful token refreshes.
    pub token_refreshes: u64,
    /// Refreshes refused by the 10-per-10-minutes limit.
    pub token_refreshes_denied: u64,
    /// Calls refused for authentication (401).
    pub unauthorized: u64,
    /// Webhook deliveries answered 2xx.
    pub webhooks_sent: u64,
    /// Webhook deliveries dropped on purpose (`drop_rate`).
    pub webhooks_dropped: u64,
    /// Webhook deliveries that failed every attempt.
    pub webhooks_failed: u64,
    /// Deliveries queued and not yet sent, dropped or failed (late ones included): 0 once every
    /// change made so far has been delivered or given up on.
    pub webhooks_pending: u64,
}

/// Mutable simulator state (behind one lock; no handler awaits while holding it).
pub struct State {
    /// Configuration.
    pub config: SimConfig,
    /// Organisations by id.
    pub orgs: BTreeMap<String, Org>,
    /// The accepted OAuth client.
    pub client: ClientCredentials,
    /// Issued access tokens and when they expire.
    pub tokens: HashMap<String, Instant>,
    /// Refresh times per refresh token (for the refresh limit).
    pub refreshes: VecDeque<Instant>,
    /// API domain reported in token responses (the simulator's own URL).
    pub api_domain: String,
    /// Statistics.
    pub stats: Stats,
    /// Outbound webhook settings; `None` sends none.
    pub webhooks: Option<crate::webhooks::WebhookConfig>,
    /// Every delivery a receiver answered 2xx, as sent (duplicates included), in order.
    pub acknowledged: Vec<crate::webhooks::SentDelivery>,
    pub(crate) outbox: Option<tokio::sync::mpsc::UnboundedSender<crate::webhooks::Delivery>>,
    pub(crate) windows: HashMap<String, VecDeque<Instant>>,
    pub(crate) daily: HashMap<String, (Instant, u32)>,
    pub(crate) in_flight: HashMap<String, u32>,
    pub(crate) rng: Rng,
    pub(crate) token_seq: u64,
}

/// Why a call was refused by a limit.
pub(crate) enum Refusal {
    PerMinute { retry_after: Duration },
    InFlight,
    Daily { reset_in: Duration },
}

impl State {
    pub(crate) fn new(config: SimConfig, orgs: Vec<Org>, client: ClientCredentials) -> State {
        State {
            config,
            orgs: orgs.into_iter().map(|o| (o.id.clone(), o)).collect(),
            client,
            tokens: HashMap::new(),
            refreshes: VecDeque::new(),
            api_domain: String::new(),
            stats: Stats::default(),
            webhooks: None,
            acknowledged: Vec::new(),
            outbox: None,
            windows: HashMap::new(),
            daily: HashMap::new(),
            in_flight: HashMap::new(),
            rng: Rng::new(0xC0FFEE),
            token_seq: 0,
        }
    }

    /// Admits one API call for `org` against the limits, or says which limit refused it.
    pub(crate) fn admit(&mut self, org: &str, now: Instant) -> Result<(), Refusal> {
        let config = &self.config;
        let (day_start, used) = self.daily.entry(org.to_string()).or_insert((now, 0));
        if now.duration_since(*day_start) >= config.daily_window {
            *day_start = now;
            *used = 0;
        }
        if *used >= config.daily_limit {
            let reset_in = config
                .daily_window
                .saturating_sub(now.duration_since(*day_start));
            return Err(Refusal::Daily { reset_in });
        }
        let in_flight = self.in_flight.entry(org.to_string()).or_insert(0);
        if *in_flight >= config.max_in_flight {
            return Err(Refusal::InFlight);
        }
        // Sliding window: at most `per_minute_limit` arrivals in any `window`.
        let window = self.windows.entry(org.to_string()).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= config.window)
        {
            window.pop_front();
        }
        if window.len() >= config.per_minute_limit as usize {
            let oldest = window.front().copied().unwrap_or(now);
            let retry_after = config.window.saturating_sub(now.duration_since(oldest));
            return Err(Refusal::PerMinute { retry_after });
        }
        window.push_back(now);
        *used += 1;
        *in_flight += 1;
        let seen = *in_flight;
        let stats = self.stats.orgs.entry(org.to_string()).or_default();
        stats.max_in_flight_seen = stats.max_in_flight_seen.max(seen);
        Ok(())
    }

    /// Ends an admitted call.
    pub(crate) fn release(&mut self, org: &str) {
        if let Some(n) = self.in_flight.get_mut(org) {
            *n = n.saturating_sub(1);
        }
    }

    /// `(limit, remaining, reset seconds)` of the daily quota, for `X-Rate-Limit-*` headers.
    pub(crate) fn daily_headers(&self, org: &str, now: Instant) -> (u32, u32, u64) {
        let limit = self.config.daily_limit;
        match self.daily.get(org) {
            Some((start, used)) => (
                limit,
                limit.saturating_sub(*used),
                self.config
                    .daily_window
                    .saturating_sub(now.duration_since(*start))
                    .as_secs(),
            ),
            None => (limit, limit, self.config.daily_window.as_secs()),
        }
    }

    /// Issues a new access token.
    pub(crate) fn issue_token(&mut self, now: Instant) -> String {
        self.token_seq += 1;
        let token = format!(
            "1000.{:016x}{:08x}.{:016x}",
            self.rng.next_u64(),
            self.token_seq,
            self.rng.next_u64()
        );
        self.tokens.insert(
            token.clone(),
            now + Duration::from_secs(self.config.token_ttl_secs),
        );
        token
    }
}
