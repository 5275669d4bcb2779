//! The dashboard's files: one page, its script and its style sheet, built into the binary (nothing
//! is fetched from elsewhere), and `config.json`, which tells the page how to sign in. They need no
//! caller: the page holds no data until it signs in and calls `/api` with a token.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::api::{DashboardConfig, OidcConfig};

/// The page.
pub const INDEX_HTML: &str = include_str!("../dashboard/index.html");
/// Its script.
pub const APP_JS: &str = include_str!("../dashboard/app.js");
/// Its style sheet.
pub const STYLE_CSS: &str = include_str!("../dashboard/style.css");

/// Only this origin's script and style; API calls to this origin, and to an OpenID provider
/// (discovery and token exchange) over HTTPS.
const POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self' https:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CONTENT_SECURITY_POLICY, POLICY),
        ],
        body,
    )
        .into_response()
}

/// `/dashboard/` and its files, with `config`.
pub fn router<S: Clone + Send + Sync + 'static>(config: DashboardConfig) -> Router<S> {
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent("/dashboard/") }),
        )
        .route(
            "/dashboard/",
            get(|| async { file("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { file("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/dashboard/style.css",
            get(|| async { file("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/dashboard/config.json",
            get(move || {
                let config = config.clone();
                async move { Json(config) }
            }),
        )
}

impl DashboardConfig {
    /// From `TDS_DASHBOARD_OIDC_ISSUER` and `TDS_DASHBOARD_OIDC_CLIENT_ID` (both, or neither:
    /// token sign-in only) and `TDS_DASHBOARD_OIDC_SCOPES` (default `openid email`).
    pub fn from_env() -> Result<DashboardConfig, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (
            var("TDS_DASHBOARD_OIDC_ISSUER"),
            var("TDS_DASHBOARD_OIDC_CLIENT_ID"),
        ) {
            (None, None) => Ok(DashboardConfig::default()),
            (Some(issuer), Some(client_id)) => {
                if !issuer.starts_with("https://") {
                    return Err(format!(
                        "TDS_DASHBOARD_OIDC_ISSUER must be an https:// URL, not {issuer:?}"
                    ));
                }
                Ok(DashboardConfig {
                    oidc: Some(OidcConfig {
                        issuer: issuer.trim_end_matches('/').to_string(),
                        client_id,
                        scopes: var("TDS_DASHBOARD_OIDC_SCOPES")
                            .unwrap_or_else(|| "openid email".into()),
                    }),
                })
            }
            _ => Err(
                "set both TDS_DASHBOARD_OIDC_ISSUER and TDS_DASHBOARD_OIDC_CLIENT_ID, or neither"
                    .into(),
            ),
        }
    }
}
