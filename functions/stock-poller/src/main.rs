//! stock-poller Lambda entry point: reads configuration once at cold start (a missing or bad variable
//! fails the start, naming it), wires PostgreSQL, the Zoho client and EventBridge into the poller, then
//! serves scheduled invocations.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use rust_decimal::Decimal;
use tds_aws::bootstrap::{self, optional, required};
use tds_aws::{EventBridgeBus, SecretsManagerStore};
use tds_sync::stock::StockPoller;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tds_aws::bootstrap::init_tracing();
    let bus = required("TDS_EVENT_BUS_NAME")?;
    let zoho_secret = required("TDS_ZOHO_SECRET_ARN")?;
    let dc = bootstrap::data_centre()?;
    let threshold: Decimal = optional("TDS_LOW_STOCK_THRESHOLD")?.unwrap_or(Decimal::from(5));
    let config = tds_aws::load_config().await;
    let secrets = SecretsManagerStore::new(&config);
    let store = bootstrap::store(&secrets).await?;
    let zoho = bootstrap::zoho(&secrets, &zoho_secret, dc, &store).await?;
    let poller = Arc::new(StockPoller::new(
        store,
        Arc::new(zoho),
        Arc::new(EventBridgeBus::new(&config, bus)),
        threshold,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let poller = poller.clone();
        async move {
            stock_poller::handle(&poller, event.payload)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
