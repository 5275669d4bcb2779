//! One shared access token per credential across every caller and process.
//!
//! A token is served from memory while it has more than five minutes left; otherwise the process takes
//! its per-credential lock (single flight inside the process), then the credential's row of
//! `tds_token_cache` `FOR UPDATE` (single flight across processes). Whoever holds the row re-checks it:
//! a token another process refreshed meanwhile is used as is; only a missing or expiring token is
//! refreshed, once. Refreshes are counted per 10-minute window and refused locally before Zoho's own
//! limit (10) would lock the refresh token out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Row};

use crate::config::OrgConfig;
use crate::secret::{CredentialSource, SecretString};
use crate::ZohoError;

/// Token refresh settings.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Refresh a token this long before it expires.
    pub refresh_early: Duration,
    /// Refreshes allowed per window (Zoho: 10 per 10 minutes; refuse before Zoho does).
    pub refresh_limit: i32,
    /// The refresh window.
    pub refresh_window: Duration,
    /// How long to wait for another process's refresh.
    pub lock_timeout: Duration,
    /// After Zoho refused a just-refreshed token, callers fail at once for a cool-down before one
    /// may refresh again (the operator may have re-authorised, or Zoho's denial passed): the first
    /// refusal waits `refused_backoff`, each further one twice as long, at most this.
    pub refused_cooldown: Duration,
    /// The first cool-down after a refusal (see `refused_cooldown`).
    pub refused_backoff: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            refresh_early: Duration::from_secs(300),
            refresh_limit: 10,
            refresh_window: Duration::from_secs(600),
            lock_timeout: Duration::from_secs(20),
            refused_cooldown: Duration::from_secs(600),
            refused_backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
struct Cached {
    token: SecretString,
    expires_at: DateTime<Utc>,
}

/// Hands out access tokens (see the module docs).
pub struct TokenManager {
    http: reqwest::Client,
    pool: PgPool,
    credentials: Arc<dyn CredentialSource>,
    settings: TokenSettings,
    local: Mutex<HashMap<String, Cached>>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// This process met a refused token since its last successful call.
    refusals_seen: std::sync::atomic::AtomicBool,
    /// Where refreshes are counted (`TokenRefreshes`).
    metrics: tds_core::metrics::Metrics,
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl TokenManager {
    /// A manager using `pool` for the shared cache and `credentials` for refresh tokens.
    pub fn new(
        http: reqwest::Client,
        pool: PgPool,
        credentials: Arc<dyn CredentialSource>,
        settings: TokenSettings,
    ) -> TokenManager {
        TokenManager {
            http,
            pool,
            credentials,
            settings,
            local: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            refusals_seen: std::sync::atomic::AtomicBool::new(false),
            metrics: tds_core::metrics::Metrics::disabled(),
        }
    }

    /// Counts this manager's token refreshes in `metrics`.
    pub fn with_metrics(mut self, metrics: tds_core::metrics::Metrics) -> TokenManager {
        self.metrics = metrics;
        self
    }

    fn cached(&self, credential: &str) -> Option<SecretString> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let c = local.get(credential)?;
        (c.expires_at - chrono_dur(self.settings.refresh_early) > Utc::now())
            .then(|| c.token.clone())
    }

    /// A valid access token for `org`'s credential.
    pub async fn access_token(&self, org: &OrgConfig) -> Result<SecretString, ZohoError> {
        let credential = org.credential_id.as_str();
        if let Some(t) = self.cached(credential) {
            return Ok(t);
        }
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            flights.entry(credential.to_string()).or_default().clone()
        };
        let _guard = flight.lock().await;
        if let Some(t) = self.cached(credential) {
            return Ok(t);
        }
        let fresh = self.shared_or_refresh(org).await?;
        let token = fresh.token.clone();
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(credential.to_string(), fresh);
        Ok(token)
    }

    /// Marks `token` as dead (Zoho answered 401 code 57 with it), unless it was already replaced, so
    /// that the next [`TokenManager::access_token`] refreshes exactly once for all callers. Returns
    /// false, changing nothing, when Zoho refused this very token right after its refresh (see
    /// [`TokenManager::mark_refused`]) less than `refused_cooldown` ago: refreshing would not help.
    pub async fn invalidate(
        &self,
        org: &OrgConfig,
        token: &SecretString,
    ) -> Result<bool, ZohoError> {
        let credential = org.credential_id.as_str();
        // Not a token that was refused right after its refresh (unless the cool-down has passed).
        let invalidated = sqlx::query(
            "UPDATE tds_token_cache SET expires_at = clock_timestamp(), updated_at = clock_timestamp()
             WHERE credential_id = $1 AND access_token = $2
               AND (refused_at IS NULL OR refused_at < clock_timestamp()
                    - make_interval(secs => least($3, $4 * power(2, greatest(refusals, 1) - 1))))",
        )
        .bind(credential)
        .bind(token.expose())
        .bind(self.settings.refused_cooldown.as_secs_f64())
        .bind(self.settings.refused_backoff.as_secs_f64())
        .execute(&self.pool)
        .await
        .map_err(ZohoError::db("token invalidation"))?
        .rows_affected()
            > 0;
        let refused = !invalidated
            && sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM tds_token_cache
                 WHERE credential_id = $1 AND access_token = $2 AND refused_at IS NOT NULL)",
            )
            .bind(credential)
            .bind(token.expose())
            .fetch_one(&self.pool)
            .await
            .map_err(ZohoError::db("token invalidation"))?;
        if refused {
            self.refusals_seen
                .store(true, std::sync::atomic::Ordering::Relaxed);
        } else {
            let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
            if local.get(credential).is_some_and(|c| &c.token == token) {
                local.remove(credential);
            }
        }
        Ok(!refused)
    }

    /// Records that Zoho refused `token` although it had just been refreshed: the grant is revoked
    /// or lacks a scope, and refreshing again would not help (see [`TokenManager::invalidate`]).
    pub async fn mark_refused(
        &self,
        org: &OrgConfig,
        token: &SecretString,
    ) -> Result<(), ZohoError> {
        sqlx::query(
            "UPDATE tds_token_cache SET refused_at = clock_timestamp(), refusals = refusals + 1,
                    updated_at = clock_timestamp()
             WHERE credential_id = $1 AND access_token = $2",
        )
        .bind(org.credential_id.as_str())
        .bind(token.expose())
        .execute(&self.pool)
        .await
        .map_err(ZohoError::db("token refusal"))?;
        self.refusals_seen
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Zoho accepted `token`: refusals recorded for this credential are over (one statement, only
    /// after this process saw a refusal).
    pub async fn accepted(&self, org: &OrgConfig, token: &SecretString) -> Result<(), ZohoError> {
        if !self
            .refusals_seen
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        sqlx::query(
            "UPDATE tds_token_cache SET refusals = 0, refused_at = NULL, updated_at = clock_timestamp()
             WHERE credential_id = $1 AND access_token = $2 AND (refusals > 0 OR refused_at IS NOT NULL)",
        )
        .bind(org.credential_id.as_str())
        .bind(token.expose())
        .execute(&self.pool)
        .await
        .map_err(ZohoError::db("token refusal"))?;
        Ok(())
    }

    async fn shared_or_refresh(&self, org: &OrgConfig) -> Result<Cached, ZohoError> {
        let credential = org.credential_id.as_str();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ZohoError::db("token cache"))?;
        sqlx::query(&format!(
            "SET LOCAL lock_timeout = '{}ms'",
            self.settings.lock_timeout.as_millis()
        ))
        .execute(&mut *tx)
        .await
        .map_err(ZohoError::db("token cache"))?;
        sqlx::query(
            "INSERT INTO tds_token_cache (credential_id) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(credential)
        .execute(&mut *tx)
        .await
        .map_err(ZohoError::db("token cache"))?;
        let row = sqlx::query(
            "SELECT access_token, expires_at, refresh_window_start, refresh_window_count, clock_timestamp() AS now
             FROM tds_token_cache WHERE credential_id = $1 FOR UPDATE",
        )
        .bind(credential)
        .fetch_one(&mut *tx)
        .await
        .map_err(ZohoError::db("token cache"))?;
        let read = |e| ZohoError::db("token cache")(e);
        let token: Option<String> = row.try_get("access_token").map_err(read)?;
        let expires_at: Option<DateTime<Utc>> = row.try_get("expires_at").map_err(read)?;
        let window_start: Option<DateTime<Utc>> =
            row.try_get("refresh_window_start").map_err(read)?;
        let window_count: i32 = row.try_get("refresh_window_count").map_err(read)?;
        let now: DateTime<Utc> = row.try_get("now").map_err(read)?;

        if let (Some(token), Some(expires_at)) = (token, expires_at) {
            if expires_at - chrono_dur(self.settings.refresh_early) > now {
                tx.commit().await.map_err(ZohoError::db("token cache"))?;
                return Ok(Cached {
                    token: SecretString::new(token),
                    expires_at,
                });
            }
        }

        let window = chrono_dur(self.settings.refresh_window);
        let (window_start, window_count) = match window_start {
            Some(start) if now - start < window => (start, window_count),
            _ => (now, 0),
        };
        if window_count >= self.settings.refresh_limit {
            tx.commit().await.map_err(ZohoError::db("token cache"))?;
            let retry_after = (window_start + window - now)
                .to_std()
                .unwrap_or(Duration::ZERO);
            return Err(ZohoError::TokenRefreshLimited {
                credential: credential.to_string(),
                retry_after,
            });
        }

        let result = self.refresh(org).await;
        self.metrics
            .count(tds_core::metrics::Metric::TokenRefreshes, 1);
        let (token, expires_at, error, count) = match &result {
            Ok((token, ttl)) => (
                Some(token.expose().to_string()),
                Some(now + chrono_dur(*ttl)),
                None,
                window_count + 1,
            ),
            // Zoho's own lockout: record it as a full window so no process tries again before it ends.
            Err(ZohoError::TokenRefreshLimited { .. }) => (
                None,
                None,
                Some(result_message(&result)),
                self.settings.refresh_limit,
            ),
            Err(_) => (None, None, Some(result_message(&result)), window_count + 1),
        };
        sqlx::query(
            "UPDATE tds_token_cache SET
                access_token = COALESCE($2, access_token),
                expires_at = CASE WHEN $2 IS NULL THEN expires_at ELSE $3 END,
                refreshed_at = CASE WHEN $2 IS NULL THEN refreshed_at ELSE clock_timestamp() END,
                refused_at = CASE WHEN $2 IS NULL THEN refused_at ELSE NULL END,
                refresh_window_start = $4, refresh_window_count = $5, last_error = $6,
                updated_at = clock_timestamp()
             WHERE credential_id = $1",
        )
        .bind(credential)
        .bind(&token)
        .bind(expires_at)
        .bind(window_start)
        .bind(count)
        .bind(&error)
        .execute(&mut *tx)
        .await
        .map_err(ZohoError::db("token cache"))?;
        tx.commit().await.map_err(ZohoError::db("token cache"))?;
        let (token, ttl) = result?;
        Ok(Cached {
            token,
            expires_at: now + chrono_dur(ttl),
        })
    }

    /// One refresh-token grant against Zoho Accounts. Parameters go in the form body (Zoho accepts
    /// both; the body keeps secrets out of URLs and access logs).
    async fn refresh(&self, org: &OrgConfig) -> Result<(SecretString, Duration), ZohoError> {
        let credential = org.credential_id.as_str();
        let creds = self.credentials.credentials(credential).await?;
        let what = format!("token refresh for credential {credential}");
        let resp = self
            .http
            .post(format!("{}/oauth/v2/token", org.accounts_url))
            .form(&[
                ("refresh_token", creds.refresh_token.expose()),
                ("client_id", creds.client_id.as_str()),
                ("client_secret", creds.client_secret.expose()),
                ("grant_type", "refresh_token"),
            ])
            .send()
            .await
            .map_err(|e| ZohoError::Transport {
                what: what.clone(),
                message: e.without_url().to_string(),
            })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| ZohoError::Transport {
            what: what.clone(),
            message: e.without_url().to_string(),
        })?;
        let body: Value = serde_json::from_str(&text).map_err(|_| ZohoError::Malformed {
            what: what.clone(),
            message: format!("HTTP {status}, body is not JSON"),
        })?;
        // Errors come with HTTP 200 too: look at the body, not the status.
        if let Some(token) = body.get("access_token").and_then(Value::as_str) {
            let ttl = body
                .get("expires_in")
                .and_then(Value::as_u64)
                .unwrap_or(3600);
            tracing::info!(credential, expires_in = ttl, "Zoho access token refreshed");
            return Ok((SecretString::new(token), Duration::from_secs(ttl)));
        }
        let error = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error")
            .to_string();
        let description = body
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("");
        if status == 400 && (error == "Access Denied" || description.contains("too many requests"))
        {
            return Err(ZohoError::TokenRefreshLimited {
                credential: credential.to_string(),
                retry_after: self.settings.refresh_window,
            });
        }
        Err(ZohoError::TokenRefused {
            credential: credential.to_string(),
            error,
        })
    }
}

fn result_message<T>(r: &Result<T, ZohoError>) -> String {
    match r {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}
