//! admin-api's adapter code: who the API Gateway authorizer says the caller is, and the admin tokens
//! read from Secrets Manager. The routes are `tds_admin`'s; `main.rs` wires them to the AWS ports.
//!
//! On AWS the admin HTTP API has an IAM authorizer (or a JWT one, see README): API Gateway checks the
//! caller before the Lambda runs and puts the identity it verified in the request context.
//! [`app`] turns that identity into a [`VerifiedCaller`], which the admin router accepts in place of a
//! bearer token. A request without it (an API with no authorizer, say) must carry a configured token,
//! so a stage wired without authorization still refuses everyone without one.

use std::sync::Arc;

use axum::extract::Request;
use axum::Router;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use tds_admin::{router, Admin, VerifiedCaller};
use tds_aws::bootstrap::{lambda, optional, BootError, Part};
use tds_aws::SqsRedrive;
use tds_core::ports::SecretStore;

/// The admin router of this function's configuration (read once at cold start): the application
/// built by `tds_aws::bootstrap::lambda` with both queues, and, with `TDS_ADMIN_TOKEN_SECRET_ARN`
/// set, the bearer tokens of that secret.
pub async fn from_env() -> Result<Router, BootError> {
    let wired = lambda(&[Part::Inbox, Part::DeadLetters]).await?;
    let tokens = match optional::<String>("TDS_ADMIN_TOKEN_SECRET_ARN")? {
        Some(arn) => tokens(&wired.secrets.secret(&arn).await?)?,
        None => Vec::new(),
    };
    let (Some(inbox), Some(dlq)) = (wired.inbox, wired.dead_letters) else {
        return Err("the admin API needs the inbox and its dead-letter queue".into());
    };
    let (app, emf) = (wired.app, wired.emf);
    let admin = Admin {
        store: app.store().clone(),
        runner: app.runner()?,
        comparator: app.comparator()?,
        poller: app.poller(),
        // `/api/tds/queue` reads each queue's oldest message age from CloudWatch.
        inbox: Arc::new(inbox.clone().with_age_from_cloudwatch(&wired.config)),
        dead_letters: Arc::new(dlq.clone().with_age_from_cloudwatch(&wired.config)),
        redrive: Arc::new(SqsRedrive {
            source: inbox,
            dead_letter: dlq,
        }),
        tokens,
        dashboard: tds_admin::api::DashboardConfig::from_env()?,
    };
    Ok(tds_aws::emf::flush_after_each_response(
        self::app(Arc::new(admin)),
        emf,
    ))
}

/// The principal the API Gateway authorizer verified: the IAM caller's ARN (or account and caller
/// id), a JWT's `sub` (or `client_id` for machine tokens), the Cognito identity; `None` when the
/// request went through no authorizer.
pub fn gateway_caller(context: &RequestContext) -> Option<String> {
    let RequestContext::ApiGatewayV2(context) = context else {
        return None;
    };
    let authorizer = context.authorizer.as_ref()?;
    let non_empty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(iam) = &authorizer.iam {
        let caller = non_empty(&iam.user_arn)
            .or_else(|| {
                iam.cognito_identity
                    .as_ref()
                    .and_then(|c| non_empty(&c.identity_id))
                    .map(|id| format!("cognito:{id}"))
            })
            .or_else(|| {
                let account = non_empty(&iam.account_id)?;
                let caller = non_empty(&iam.caller_id)?;
                Some(format!("{account}:{caller}"))
            });
        if caller.is_some() {
            return caller;
        }
    }
    let jwt = authorizer.jwt.as_ref()?;
    ["sub", "client_id", "username"]
        .iter()
        .find_map(|claim| jwt.claims.get(*claim).filter(|v| !v.is_empty()))
        .map(|v| format!("jwt:{v}"))
}

/// The admin router with the authorizer's identity attached to each request that has one.
pub fn app(admin: Arc<Admin>) -> Router {
    router(admin).layer(axum::middleware::map_request(
        |mut request: Request| async move {
            let caller = request.request_context_ref().and_then(gateway_caller);
            if let Some(caller) = caller {
                request.extensions_mut().insert(VerifiedCaller(caller));
            }
            request
        },
    ))
}

/// The admin tokens from their secret: a token, or `{"tokens": ["...", ...]}` (rotation: add,
/// deploy, drop). Tokens shorter than 16 characters are ignored; a secret with none is an error.
pub fn tokens(secret: &str) -> Result<Vec<String>, String> {
    let tokens: Vec<String> = match serde_json::from_str::<serde_json::Value>(secret) {
        Ok(v) => v["tokens"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => vec![secret.trim().to_string()],
    };
    let tokens: Vec<String> = tokens.into_iter().filter(|t| t.len() >= 16).collect();
    if tokens.is_empty() {
        return Err("the admin token secret holds no token of at least 16 characters".into());
    }
    Ok(tokens)
}
