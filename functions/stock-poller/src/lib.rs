//! stock-poller: the thin edge between an EventBridge schedule (or a manual invocation) and the stock
//! poller core (`tds_sync::stock`). The input selects the mode; a bad input is refused with the reason
//! and the modes it accepts, before any call to Zoho.

use serde_json::{json, Value};
use tds_sync::stock::{StockPoller, StockRequest};
use tds_sync::Failure;

/// Handles one invocation: the report of each organisation polled, or an error that says what was wrong.
pub async fn handle(poller: &StockPoller, input: Value) -> Result<Value, String> {
    let request = StockRequest::parse(&input)?;
    match poller.poll(&request).await {
        Ok(reports) => {
            for r in &reports {
                tracing::info!(org = %r.org_id, run_id = r.run_id, mode = request.mode.as_str(),
                    items = r.items_checked, changed = r.rows_changed, low = r.low_stock,
                    api_calls = r.api_calls, "stock poll done");
            }
            Ok(json!({ "mode": request.mode, "reports": reports }))
        }
        Err(Failure::Retry(reason)) => Err(format!("stock poll failed (retriable): {reason}")),
        Err(Failure::Permanent(reason)) => Err(format!("stock poll failed: {reason}")),
    }
}
