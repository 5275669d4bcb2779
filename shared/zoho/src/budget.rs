//! One Zoho API budget per organisation, shared by every process through `tds_rate_budget`.
//!
//! The budget is an exact sliding window: the row keeps the grant times of the last `per_minute_limit`
//! requests, and a request is granted only if fewer than that many were granted within the window
//! (60 s plus a guard for the time between a grant and its arrival at Zoho). The row is locked for the
//! decision, so concurrent processes can never overspend. On top of it:
//! * priorities: webhook re-fetches first; a webhook re-fetch that has to wait claims the next slots
//!   for a moment, and polls and comparisons step aside; comparisons never take the last 20 %;
//! * a 429 blocks the organisation until `Retry-After` (or a full window when Zoho sends none);
//! * the daily quota Zoho reports in `X-Rate-Limit-*` is tracked; when it is used up callers fail fast
//!   with the reset time instead of burning requests;
//! * in-flight requests are capped per process and organisation.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ZohoError;

/// Who is asking, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Statistics and comparison: may use at most `low_priority_share` of the budget.
    Compare,
    /// Scheduled syncs and the stock poller.
    Poll,
    /// Re-fetches for webhooks: first in line.
    Webhook,
}

/// Budget settings (the first process to touch an organisation writes them to its row).
#[derive(Debug, Clone)]
pub struct BudgetSettings {
    /// Requests per window (Zoho: 100 per minute per organisation).
    pub per_minute_limit: u32,
    /// Window length: 60 s plus a guard (default 61 s).
    pub window: Duration,
    /// Requests in flight per process and organisation (Zoho allows 5 on free plans, 10 paid).
    pub max_in_flight: u32,
    /// Share of the window comparisons may use.
    pub low_priority_share: f64,
    /// How long a waiting webhook re-fetch holds back lower priorities.
    pub priority_claim: Duration,
    /// Longest a caller waits for the budget before failing with `RateLimited`.
    pub max_wait: Duration,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            per_minute_limit: 100,
            window: Duration::from_secs(61),
            max_in_flight: 5,
            low_priority_share: 0.8,
            priority_claim: Duration::from_secs(2),
            max_wait: Duration::from_secs(180),
        }
    }
}

/// Permission to send one request; holding it keeps one in-flight slot.
pub struct Permit {
    _slot: OwnedSemaphorePermit,
}

/// The shared budget (see the module docs).
pub struct RateBudget {
    pool: PgPool,
    settings: BudgetSettings,
    ensured: Mutex<HashSet<String>>,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

enum Decision {
    Granted,
    Wait(Duration),
}

fn to_std(d: chrono::Duration) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}

impl RateBudget {
    /// A budget kept in `pool`'s `tds_rate_budget` table.
    pub fn new(pool: PgPool, settings: BudgetSettings) -> RateBudget {
        RateBudget {
            pool,
            settings,
            ensured: Mutex::new(HashSet::new()),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &BudgetSettings {
        &self.settings
    }

    /// Puts this budget's per-minute limit on every organisation's row, configured here or not (a
    /// local stack restarted with another limit; rows are otherwise updated on first use).
    pub async fn enforce_limit_everywhere(&self) -> Result<(), ZohoError> {
        sqlx::query("UPDATE tds_rate_budget SET per_minute_limit = $1")
            .bind(i32::try_from(self.settings.per_minute_limit).unwrap_or(i32::MAX))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(ZohoError::db("rate budget"))
    }

    async fn ensure_row(&self, org: &str) -> Result<(), ZohoError> {
        if self
            .ensured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(org)
        {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO tds_rate_budget (org_id, per_minute_limit, window_ms, max_in_flight) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org_id) DO UPDATE SET per_minute_limit = EXCLUDED.per_minute_limit,
                 window_ms = EXCLUDED.window_ms, max_in_flight = EXCLUDED.max_in_flight",
        )
        .bind(org)
        .bind(i32::try_from(self.settings.per_minute_limit).unwrap_or(i32::MAX))
        .bind(i32::try_from(self.settings.window.as_millis()).unwrap_or(i32::MAX))
        .bind(i32::try_from(self.settings.max_in_flight).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await
        .map_err(ZohoError::db("rate budget"))?;
        self.ensured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(org.to_string());
        Ok(())
    }

    /// Waits for a slot in the organisation's budget at `priority`.
    pub async fn acquire(&self, org: &str, priority: Priority) -> Result<Permit, ZohoError> {
        self.ensure_row(org).await?;
        let semaphore = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .entry(org.to_string())
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(self.settings.max_in_flight.max(1) as usize))
                })
                .clone()
        };
        let slot = semaphore
            .acquire_owned()
            .await
            .map_err(|_| ZohoError::Config("rate budget closed".into()))?;
        let started = tokio::time::Instant::now();
        loop {
            match self.decide(org, priority).await? {
                Decision::Granted => return Ok(Permit { _slot: slot }),
                Decision::Wait(wait) => {
                    if started.elapsed() + wait > self.settings.max_wait {
                        return Err(ZohoError::RateLimited {
                            org: org.to_string(),
                            retry_after: wait,
                        });
                    }
                    // A little spread so waiting processes do not all retry at the same instant.
                    let jitter = Duration::from_millis(u64::from(rand_u32() % 15));
                    tokio::time::sleep(wait + jitter).await;
                }
            }
        }
    }

    async fn decide(&self, org: &str, priority: Priority) -> Result<Decision, ZohoError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ZohoError::db("rate budget"))?;
        let row = sqlx::query(
            "SELECT clock_timestamp() AS now, grants, per_minute_limit, window_ms, blocked_until,
                    daily_remaining, daily_reset_at, priority_claim_until
             FROM tds_rate_budget WHERE org_id = $1 FOR UPDATE",
        )
        .bind(org)
        .fetch_one(&mut *tx)
        .await
        .map_err(ZohoError::db("rate budget"))?;
        let get = |e| ZohoError::db("rate budget")(e);
        let now: DateTime<Utc> = row.try_get("now").map_err(get)?;
        let grants: Vec<DateTime<Utc>> = row.try_get("grants").map_err(get)?;
        let limit: i32 = row.try_get("per_minute_limit").map_err(get)?;
        let window_ms: i32 = row.try_get("window_ms").map_err(get)?;
        let blocked_until: Option<DateTime<Utc>> = row.try_get("blocked_until").map_err(get)?;
        let daily_remaining: Option<i32> = row.try_get("daily_remaining").map_err(get)?;
        let daily_reset_at: Option<DateTime<Utc>> = row.try_get("daily_reset_at").map_err(get)?;
        let claim_until: Option<DateTime<Utc>> =
            row.try_get("priority_claim_until").map_err(get)?;

        let window = chrono::Duration::milliseconds(i64::from(window_ms));
        let mut kept: Vec<DateTime<Utc>> =
            grants.into_iter().filter(|g| *g > now - window).collect();
        kept.sort();

        if let (Some(0), Some(reset_at)) = (daily_remaining, daily_reset_at) {
            if reset_at > now {
                tx.commit().await.map_err(ZohoError::db("rate budget"))?;
                return Err(ZohoError::DailyQuotaExhausted {
                    org: org.to_string(),
                    reset_at,
                });
            }
        }
        let blocked = blocked_until
            .filter(|b| *b > now)
            .map(|b| Decision::Wait(to_std(b - now)));
        let yielding = claim_until
            .filter(|c| priority < Priority::Webhook && *c > now)
            .map(|c| Decision::Wait(to_std(c - now)));
        let decision = blocked.or(yielding);
        let allowed = match priority {
            Priority::Compare => {
                ((f64::from(limit) * self.settings.low_priority_share).floor() as usize).max(1)
            }
            _ => limit.max(1) as usize,
        };
        let mut new_claim = claim_until;
        let decision = match decision {
            Some(d) => d,
            None if kept.len() < allowed => {
                kept.push(now);
                Decision::Granted
            }
            None => {
                // The slot frees when the grant `allowed` places from the end leaves the window.
                let frees_at = kept[kept.len() - allowed] + window;
                if priority == Priority::Webhook {
                    new_claim = Some(
                        now + chrono::Duration::from_std(self.settings.priority_claim)
                            .unwrap_or_default(),
                    );
                }
                Decision::Wait(to_std(frees_at - now).max(Duration::from_millis(1)))
            }
        };
        let remaining = match (&decision, daily_remaining) {
            (Decision::Granted, Some(r)) => Some((r - 1).max(0)),
            (_, r) => r,
        };
        sqlx::query(
            "UPDATE tds_rate_budget SET grants = $2, priority_claim_until = $3, daily_remaining = $4,
                 updated_at = clock_timestamp() WHERE org_id = $1",
        )
        .bind(org)
        .bind(&kept)
        .bind(new_claim)
        .bind(remaining)
        .execute(&mut *tx)
        .await
        .map_err(ZohoError::db("rate budget"))?;
        tx.commit().await.map_err(ZohoError::db("rate budget"))?;
        Ok(decision)
    }

    /// Zoho answered 429: block the organisation for `retry_after`, or a full window without one.
    pub async fn report_rate_limited(
        &self,
        org: &str,
        retry_after: Option<Duration>,
    ) -> Result<Duration, ZohoError> {
        let wait = retry_after.unwrap_or(self.settings.window);
        sqlx::query(
            "UPDATE tds_rate_budget SET blocked_until = GREATEST(coalesce(blocked_until, clock_timestamp()),
                 clock_timestamp() + make_interval(secs => $2)), updated_at = clock_timestamp() WHERE org_id = $1",
        )
        .bind(org)
        .bind(wait.as_secs_f64())
        .execute(&self.pool)
        .await
        .map_err(ZohoError::db("rate budget"))?;
        tracing::warn!(
            org,
            wait_ms = wait.as_millis() as u64,
            "Zoho rate limit hit; organisation blocked"
        );
        Ok(wait)
    }

    /// Records the daily quota from `X-Rate-Limit-Limit/Remaining/Reset`.
    pub async fn report_quota(
        &self,
        org: &str,
        limit: Option<i32>,
        remaining: i32,
        reset_secs: i64,
    ) -> Result<(), ZohoError> {
        sqlx::query(
            "UPDATE tds_rate_budget SET daily_limit = coalesce($2, daily_limit), daily_remaining = $3,
                 daily_reset_at = clock_timestamp() + make_interval(secs => $4), updated_at = clock_timestamp()
             WHERE org_id = $1",
        )
        .bind(org)
        .bind(limit)
        .bind(remaining)
        .bind(reset_secs as f64)
        .execute(&self.pool)
        .await
        .map_err(ZohoError::db("rate budget"))?;
        Ok(())
    }
}

/// Cheap randomness for jitter (no cryptographic use).
pub(crate) fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u32
}
