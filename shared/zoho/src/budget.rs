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

impl Priority {
    /// The priority's name (`compare`, `poll`, `webhook`; the `Priority` of the `ZohoCalls` metric).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Compare => "compare",
            Priority::Poll => "poll",
            Priority::Webhook => "webhook",
        }
    }
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
    /// How long after its slot frees a waiting webhook re-fetch still holds back lower priorities
    /// (the claim lasts from its first wait until then).
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

#[derive(Debug, PartialEq)]
enum Decision {
    Granted,
    Wait(Duration),
}

/// An organisation's budget row, read under its lock, with the database's time.
#[derive(Debug, Clone)]
struct BudgetState {
    now: DateTime<Utc>,
    grants: Vec<DateTime<Utc>>,
    limit: i32,
    window_ms: i32,
    blocked_until: Option<DateTime<Utc>>,
    daily_remaining: Option<i32>,
    daily_reset_at: Option<DateTime<Utc>>,
    claim_until: Option<DateTime<Utc>>,
}

/// A decision and what it writes back to the row.
#[derive(Debug)]
struct Verdict {
    decision: Decision,
    /// The grants still inside the window (plus this one when granted).
    kept: Vec<DateTime<Utc>>,
    claim_until: Option<DateTime<Utc>>,
    daily_remaining: Option<i32>,
}

/// The budget's rule (see the module docs), as a function of the row and the time in it: `Err` with
/// the reset time when the daily quota is used up.
fn judge(
    state: BudgetState,
    priority: Priority,
    settings: &BudgetSettings,
) -> Result<Verdict, DateTime<Utc>> {
    let now = state.now;
    let window = chrono::Duration::milliseconds(i64::from(state.window_ms));
    let mut kept: Vec<DateTime<Utc>> = state
        .grants
        .into_iter()
        .filter(|g| *g > now - window)
        .collect();
    kept.sort();

    if let (Some(0), Some(reset_at)) = (state.daily_remaining, state.daily_reset_at) {
        if reset_at > now {
            return Err(reset_at);
        }
    }
    let blocked = state
        .blocked_until
        .filter(|b| *b > now)
        .map(|b| Decision::Wait(to_std(b - now)));
    let yielding = state
        .claim_until
        .filter(|c| priority < Priority::Webhook && *c > now)
        .map(|c| Decision::Wait(to_std(c - now)));
    let allowed = match priority {
        Priority::Compare => {
            ((f64::from(state.limit) * settings.low_priority_share).floor() as usize).max(1)
        }
        _ => state.limit.max(1) as usize,
    };
    let mut claim_until = state.claim_until;
    let decision = match blocked.or(yielding) {
        Some(d) => d,
        None if kept.len() < allowed => {
            kept.push(now);
            Decision::Granted
        }
        None => {
            // The slot frees when the grant `allowed` places from the end leaves the window.
            let frees_at = kept[kept.len() - allowed] + window;
            if priority == Priority::Webhook {
                // Held until a moment after the slot frees, when the waiting re-fetch asks again.
                claim_until = Some(
                    frees_at.max(now)
                        + chrono::Duration::from_std(settings.priority_claim).unwrap_or_default(),
                );
            }
            Decision::Wait(to_std(frees_at - now).max(Duration::from_millis(1)))
        }
    };
    let daily_remaining = match (&decision, state.daily_remaining) {
        (Decision::Granted, Some(r)) => Some((r - 1).max(0)),
        (_, r) => r,
    };
    Ok(Verdict {
        decision,
        kept,
        claim_until,
        daily_remaining,
    })
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
        let state = BudgetState {
            now: row.try_get("now").map_err(get)?,
            grants: row.try_get("grants").map_err(get)?,
            limit: row.try_get("per_minute_limit").map_err(get)?,
            window_ms: row.try_get("window_ms").map_err(get)?,
            blocked_until: row.try_get("blocked_until").map_err(get)?,
            daily_remaining: row.try_get("daily_remaining").map_err(get)?,
            daily_reset_at: row.try_get("daily_reset_at").map_err(get)?,
            claim_until: row.try_get("priority_claim_until").map_err(get)?,
        };
        let Verdict {
            decision,
            kept,
            claim_until: new_claim,
            daily_remaining: remaining,
        } = match judge(state, priority, &self.settings) {
            Ok(verdict) => verdict,
            Err(reset_at) => {
                tx.commit().await.map_err(ZohoError::db("rate budget"))?;
                return Err(ZohoError::DailyQuotaExhausted {
                    org: org.to_string(),
                    reset_at,
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
    }

    /// Four grants at 0, 100, 200, 300 ms of a 1 s window of four, looked at `now`.
    fn full(now: i64) -> BudgetState {
        BudgetState {
            now: at(now),
            grants: vec![at(300), at(0), at(200), at(100)],
            limit: 4,
            window_ms: 1000,
            blocked_until: None,
            daily_remaining: None,
            daily_reset_at: None,
            claim_until: None,
        }
    }

    fn settings() -> BudgetSettings {
        BudgetSettings {
            per_minute_limit: 4,
            window: Duration::from_secs(1),
            priority_claim: Duration::from_millis(500),
            ..BudgetSettings::default()
        }
    }

    #[test]
    fn a_full_window_waits_until_its_oldest_grant_leaves() {
        let v = judge(full(400), Priority::Poll, &settings()).unwrap();
        assert_eq!(v.decision, Decision::Wait(Duration::from_millis(600)));
        assert_eq!(v.claim_until, None, "a poll claims nothing");
        // Grants that left the window are dropped; a free slot is granted at once.
        let v = judge(full(1050), Priority::Poll, &settings()).unwrap();
        assert_eq!(v.decision, Decision::Granted);
        assert_eq!(v.kept, vec![at(100), at(200), at(300), at(1050)]);
    }

    #[test]
    fn a_waiting_webhook_refetch_claims_the_next_slot_ahead_of_polls() {
        let v = judge(full(400), Priority::Webhook, &settings()).unwrap();
        assert_eq!(v.decision, Decision::Wait(Duration::from_millis(600)));
        // Held past the moment the slot frees (1000), however long the wait.
        assert_eq!(v.claim_until, Some(at(1500)));
        // When the slot frees, a poll that has waited longer steps aside and the webhook re-fetch
        // takes it.
        let claimed = BudgetState {
            claim_until: Some(at(1450)),
            ..full(1000)
        };
        let poll = judge(claimed.clone(), Priority::Poll, &settings()).unwrap();
        assert_eq!(poll.decision, Decision::Wait(Duration::from_millis(450)));
        let compare = judge(claimed.clone(), Priority::Compare, &settings()).unwrap();
        assert!(matches!(compare.decision, Decision::Wait(_)));
        let hook = judge(claimed, Priority::Webhook, &settings()).unwrap();
        assert_eq!(hook.decision, Decision::Granted);
    }

    #[test]
    fn comparisons_never_take_the_last_fifth() {
        // 3 of 4 used: a poll gets the fourth, a comparison (at most floor(4 × 0.8) = 3) waits.
        let three = BudgetState {
            grants: vec![at(0), at(100), at(200)],
            ..full(300)
        };
        assert_eq!(
            judge(three.clone(), Priority::Poll, &settings())
                .unwrap()
                .decision,
            Decision::Granted
        );
        assert_eq!(
            judge(three, Priority::Compare, &settings())
                .unwrap()
                .decision,
            Decision::Wait(Duration::from_millis(700))
        );
    }

    #[test]
    fn a_429_block_and_the_daily_quota_hold_everyone() {
        let blocked = BudgetState {
            grants: vec![],
            blocked_until: Some(at(5000)),
            ..full(1000)
        };
        let v = judge(blocked, Priority::Webhook, &settings()).unwrap();
        assert_eq!(v.decision, Decision::Wait(Duration::from_secs(4)));
        let spent = BudgetState {
            grants: vec![],
            daily_remaining: Some(0),
            daily_reset_at: Some(at(60_000)),
            ..full(1000)
        };
        assert_eq!(
            judge(spent.clone(), Priority::Webhook, &settings()).unwrap_err(),
            at(60_000)
        );
        // After the reset the quota no longer holds; a grant counts down what Zoho reported.
        let after = BudgetState {
            daily_remaining: Some(1),
            ..spent
        };
        let v = judge(after, Priority::Poll, &settings()).unwrap();
        assert_eq!(
            (v.decision, v.daily_remaining),
            (Decision::Granted, Some(0))
        );
    }
}
