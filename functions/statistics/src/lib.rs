//! statistics: the thin edge between EventBridge schedules (or a manual invocation) and the comparison
//! engine (`tds_sync::compare`). The input is a comparison request (`{}` compares every kind and heals;
//! `{"heal": false}` only measures; `{"dry_run": true}` reports what healing would do); a bad input is
//! refused with the reason before any call to Zoho. The answer is a summary per organisation; the full
//! report is in `tds_comparison_reports`.

use serde_json::{json, Value};
use tds_sync::compare::{severity, CompareRequest, KindDiff};
use tds_sync::{Comparator, Failure};

/// Handles one invocation.
pub async fn handle(comparator: &Comparator, input: Value) -> Result<Value, String> {
    let request = CompareRequest::parse(&input)?;
    let reports = comparator.compare(&request).await.map_err(|f| match f {
        Failure::Retry(r) => format!("comparison failed (retriable): {r}"),
        Failure::Permanent(r) => format!("comparison failed: {r}"),
    })?;
    let summaries: Vec<Value> = reports
        .iter()
        .map(|r| {
            tracing::info!(org = %r.org_id, report_id = r.report_id, match_pct = r.match_pct,
                severity = %r.severity, api_calls = r.api_calls, "comparison done");
            json!({
                "org_id": r.org_id,
                "report_id": r.report_id,
                "match_pct": r.match_pct,
                "health_score": r.health_score,
                "severity": r.severity,
                "dry_run": r.dry_run,
                "api_calls": r.api_calls,
                "kinds": r.kinds.iter().map(|d: &KindDiff| json!({
                    "kind": d.kind, "match_pct": d.match_pct(), "severity": severity(d.match_pct()),
                    "missing_locally": d.missing_locally.len(), "deleted_in_zoho": d.deleted_in_zoho.len(),
                    "stale": d.stale.len(), "mismatched": d.mismatched.len(),
                })).collect::<Vec<_>>(),
                "heal": r.heal,
                "recommendations": r.recommendations,
            })
        })
        .collect();
    Ok(json!({ "reports": summaries }))
}
