//! admin-api Lambda entry point: reads configuration once at cold start (a missing or bad variable
//! fails the start, naming it), wires PostgreSQL, the Zoho client, the queues, EventBridge and the
//! admin tokens (from Secrets Manager) into the admin router, then serves HTTP API events. The routes
//! are `tds_admin`'s; this file only wires them.

use std::sync::Arc;

use lambda_http::Error;
use rust_decimal::Decimal;
use tds_admin::{router, Admin};
use tds_aws::bootstrap::{self, optional, required};
use tds_aws::{EventBridgeBus, SecretsManagerStore, SqsQueue, SqsRedrive};
use tds_core::ports::SecretStore;
use tds_sync::stock::StockPoller;
use tds_sync::Processor;

/// The admin tokens: the secret is a token, or `{"tokens": ["...", ...]}` (rotation: add, deploy, drop).
fn tokens(secret: &str) -> Result<Vec<String>, Error> {
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

#[tokio::main]
async fn main() -> Result<(), Error> {
    tds_aws::bootstrap::init_tracing();
    let inbox_url = required("TDS_INBOX_QUEUE_URL")?;
    let dlq_url = required("TDS_DLQ_URL")?;
    let bus = required("TDS_EVENT_BUS_NAME")?;
    let zoho_secret = required("TDS_ZOHO_SECRET_ARN")?;
    let token_secret = required("TDS_ADMIN_TOKEN_SECRET_ARN")?;
    let dc = bootstrap::data_centre()?;
    let threshold: Decimal = optional("TDS_LOW_STOCK_THRESHOLD")?.unwrap_or(Decimal::from(5));
    let config = tds_aws::load_config().await;
    let secrets = SecretsManagerStore::new(&config);
    let tokens = tokens(&secrets.secret(&token_secret).await?)?;
    let store = bootstrap::store(&secrets).await?;
    let zoho = Arc::new(bootstrap::zoho(&secrets, &zoho_secret, dc, &store).await?);
    let orgs = zoho.org_ids();
    let events = Arc::new(EventBridgeBus::new(&config, bus));
    let inbox = SqsQueue::new(&config, inbox_url);
    let dlq = SqsQueue::new(&config, dlq_url);
    let processor = Processor::new(
        store.clone(),
        zoho.clone(),
        events.clone(),
        Arc::new(dlq.clone()),
    )
    .with_inbox(Arc::new(inbox.clone()));
    let admin = Arc::new(Admin {
        store: store.clone(),
        processor: Arc::new(processor),
        poller: Arc::new(StockPoller::new(store, zoho, events, threshold)),
        inbox: Arc::new(inbox.clone()),
        dead_letters: Arc::new(dlq.clone()),
        redrive: Arc::new(SqsRedrive {
            source: inbox,
            dead_letter: dlq,
        }),
        tokens,
        orgs,
    });
    lambda_http::run(router(admin)).await
}
