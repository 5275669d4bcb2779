//! What can go wrong talking to Zoho, split into retriable and permanent. Messages carry Zoho's code
//! and message and say what to do; they never carry tokens or client secrets.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A failed Zoho call.
#[derive(Debug, thiserror::Error)]
pub enum ZohoError {
    /// Configuration or credentials document is unusable.
    #[error("Zoho configuration error: {0}")]
    Config(String),
    /// The organisation is not configured.
    #[error("organisation {0} is not configured for Zoho")]
    UnknownOrganization(String),
    /// The request could not be sent or answered (connection, timeout), after retries.
    #[error("Zoho request {what} failed: {message}")]
    Transport {
        /// Which request.
        what: String,
        /// The transport error (no URL query, no headers).
        message: String,
    },
    /// Zoho Accounts refused the refresh token or client (`invalid_code`, `invalid_client_secret`, ...).
    #[error("Zoho token refresh for credential {credential} refused: {error}; check the client id, client secret and refresh token in the credentials secret")]
    TokenRefused {
        /// The credential id.
        credential: String,
        /// Zoho's `error` value.
        error: String,
    },
    /// Too many token refreshes (Zoho allows 10 per 10 minutes per refresh token).
    #[error("Zoho token refreshes for credential {credential} are exhausted; retry in {}s", retry_after.as_secs())]
    TokenRefreshLimited {
        /// The credential id.
        credential: String,
        /// When a refresh may be tried again.
        retry_after: Duration,
    },
    /// 401 even with a fresh token: the token was revoked or lacks the scope for this endpoint.
    #[error("Zoho refused {what} with 401 code {code} ({message}) even after a token refresh; the refresh token may be revoked or lack the scope")]
    Unauthorized {
        /// Which request.
        what: String,
        /// Zoho's code (14: bad auth header, 57: not authorised).
        code: i64,
        /// Zoho's message.
        message: String,
    },
    /// The record does not exist (404, code 1002).
    #[error("Zoho says {what} does not exist (code {code}: {message})")]
    NotFound {
        /// Which request.
        what: String,
        /// Zoho's code.
        code: i64,
        /// Zoho's message.
        message: String,
    },
    /// Rate limited (429) and still limited after the allowed waits.
    #[error("Zoho rate limit for organisation {org} persists; retry in {}s", retry_after.as_secs())]
    RateLimited {
        /// The organisation.
        org: String,
        /// Suggested wait.
        retry_after: Duration,
    },
    /// The organisation's daily API quota is used up.
    #[error("Zoho daily API quota of organisation {org} is exhausted until {reset_at}")]
    DailyQuotaExhausted {
        /// The organisation.
        org: String,
        /// When the quota resets.
        reset_at: DateTime<Utc>,
    },
    /// Zoho answered with an application error (a non-zero `code`, on HTTP 200 or 4xx).
    #[error("Zoho refused {what}: HTTP {status}, code {code}: {message}")]
    Api {
        /// Which request.
        what: String,
        /// HTTP status.
        status: u16,
        /// Zoho's code.
        code: i64,
        /// Zoho's message.
        message: String,
    },
    /// Zoho failed (5xx) on every attempt.
    #[error("Zoho failed {what} with HTTP {status} on every attempt: {message}")]
    Server {
        /// Which request.
        what: String,
        /// HTTP status.
        status: u16,
        /// Zoho's message or the body's start.
        message: String,
    },
    /// An id or path segment that is not what Zoho uses (ids are digit strings): refused before any
    /// request, so it can neither walk to another path nor add query parameters.
    #[error("not a Zoho id or path segment: {0:?} (Zoho ids are 1 to 32 digits)")]
    InvalidId(String),
    /// The response was not the JSON Zoho documents.
    #[error("Zoho response to {what} is malformed: {message}")]
    Malformed {
        /// Which request.
        what: String,
        /// What was wrong.
        message: String,
    },
    /// A record could not be parsed.
    #[error(transparent)]
    Parse(#[from] tds_core::ParseError),
    /// The shared token cache or rate budget (PostgreSQL) failed.
    #[error("Zoho client state in the database failed during {operation}: {source}")]
    Database {
        /// What was being done.
        operation: &'static str,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
}

impl ZohoError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> ZohoError {
        move |source| ZohoError::Database { operation, source }
    }

    /// Whether the same call may succeed later (rate limits, quotas, outages, timeouts).
    pub fn is_retriable(&self) -> bool {
        match self {
            ZohoError::Api { status, code, .. } => {
                code_class(*status, *code) == CodeClass::Transient
            }
            _ => matches!(
                self,
                // Auth: delayed and retried (an operator may fix the grant, a denial may pass);
                // the queue's redrive catches what never recovers.
                ZohoError::Transport { .. }
                    | ZohoError::Unauthorized { .. }
                    | ZohoError::TokenRefused { .. }
                    | ZohoError::TokenRefreshLimited { .. }
                    | ZohoError::RateLimited { .. }
                    | ZohoError::DailyQuotaExhausted { .. }
                    | ZohoError::Server { .. }
                    | ZohoError::Database { .. }
            ),
        }
    }

    /// Whether Zoho says the record does not exist (a re-fetch should tombstone it).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ZohoError::NotFound { .. })
    }
}

/// What a non-zero Zoho `code` means for retrying (ZOHO.md §"Errors": Zoho's codes are documented
/// only in part, and some failures come as HTTP 200 with a code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    /// Known to pass: retried in the client, and retriable (the queue redelivers) when it persists.
    Transient,
    /// Not known: retried a few times in the client (Zoho answers some transient failures with
    /// HTTP 200 and a code, e.g. 2 "Invalid value passed ... Please try again"), then permanent.
    Unknown,
    /// A request TDS got wrong, or a refusal retrying cannot change: failed at once.
    Permanent,
}

impl CodeClass {
    /// Whether the client retries it before giving up.
    pub fn retried(self) -> bool {
        self != CodeClass::Permanent
    }

    /// Why, for logs.
    pub fn reason(self) -> &'static str {
        match self {
            CodeClass::Transient => "a transient Zoho failure",
            CodeClass::Unknown => "an undocumented code: retried a few times first",
            CodeClass::Permanent => "a refusal retrying cannot change",
        }
    }
}

/// The class of Zoho's `code` at HTTP `status`:
/// * 1000 internal error, 43/45 rate limit: transient;
/// * 1002 does not exist, 4029 organisation missing or invalid, 5 invalid URL, 14/57 not authorised,
///   and any code on a 4xx answer: permanent;
/// * any other code on a 2xx answer: unknown.
pub fn code_class(status: u16, code: i64) -> CodeClass {
    match code {
        1000 | 43 | 45 => CodeClass::Transient,
        1002 | 4029 | 5 | 14 | 57 => CodeClass::Permanent,
        _ if (200..300).contains(&status) => CodeClass::Unknown,
        _ => CodeClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_table_retries_what_may_pass_and_fails_what_cannot() {
        assert_eq!(code_class(500, 1000), CodeClass::Transient);
        assert_eq!(code_class(200, 45), CodeClass::Transient);
        assert_eq!(code_class(200, 2), CodeClass::Unknown);
        assert_eq!(code_class(200, 9999), CodeClass::Unknown);
        assert_eq!(code_class(400, 2), CodeClass::Permanent);
        assert_eq!(code_class(404, 1002), CodeClass::Permanent);
        assert_eq!(code_class(200, 4029), CodeClass::Permanent);
        let api = |status, code| ZohoError::Api {
            what: "GET items".into(),
            status,
            code,
            message: String::new(),
        };
        assert!(api(500, 1000).is_retriable());
        assert!(
            !api(200, 2).is_retriable(),
            "unknown codes fail after the client's retries"
        );
        assert!(!api(400, 2).is_retriable());
    }
}
