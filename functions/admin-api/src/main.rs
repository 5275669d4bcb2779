//! admin-api Lambda entry point: reads configuration once at cold start (a missing or bad variable
//! fails the start, naming it), wires PostgreSQL, the Zoho client, the queues and EventBridge into the
//! admin router, then serves HTTP API events. Callers are those the API Gateway authorizer verified;
//! with `TDS_ADMIN_TOKEN_SECRET_ARN` set, bearer tokens from that secret are accepted too. The
//! routes are `tds_admin`'s; this file only wires them.

use std::sync::Arc;

use admin_api::{app, tokens};
use lambda_http::Error;
use rust_decimal::Decimal;
use tds_admin::Admin;
use tds_aws::bootstrap::{self, optional, required};
use tds_aws::{EventBridgeBus, SecretsManagerStore, SqsQueue, SqsRedrive};
use tds_core::ports::SecretStore;
use tds_sync::stock::StockPoller;
use tds_sync::Processor;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tds_aws::bootstrap::init_tracing();
    let inbox_url = required("TDS_INBOX_QUEUE_URL")?;
    let dlq_url = required("TDS_DLQ_URL")?;
    let bus = required("TDS_EVENT_BUS_NAME")?;
    let zoho_secret = required("TDS_ZOHO_SECRET_ARN")?;
    let token_secret: Option<String> = optional("TDS_ADMIN_TOKEN_SECRET_ARN")?;
    let dc = bootstrap::data_centre()?;
    let threshold: Decimal = optional("TDS_LOW_STOCK_THRESHOLD")?.unwrap_or(Decimal::from(5));
    let config = tds_aws::load_config().await;
    let secrets = SecretsManagerStore::new(&config);
    let tokens = match token_secret {
        Some(arn) => tokens(&secrets.secret(&arn).await?)?,
        None => Vec::new(),
    };
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
    lambda_http::run(app(admin)).await
}
