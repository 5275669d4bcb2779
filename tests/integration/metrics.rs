//! TDS's own metrics as CloudWatch sees them: every function's handler, driven through real work
//! (webhooks, a full sync, a stale replay, a dead letter, stock polls, a comparison, Zoho's 429s and
//! failures), prints EMF lines that satisfy the Embedded Metric Format specification, and between
//! them they carry every custom metric the template's alarms and dashboard read. The webhook-silence
//! metric rises for changes a poll found that no webhook had brought, and only for those.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use sqlx::PgPool;
use tds_aws::emf::EmfWriter;
use tds_core::ingest::{SecretWebhookAuth, WebhookIngest};
use tds_core::metrics::Metrics;
use tds_core::ports::{CachedSecrets, Queue};
use tds_core::webhook::Action;
use tds_core::EntityKind;
use tds_local::MemorySecrets;
use tds_sync::{Incoming, SyncMode};
use tds_zoho_sim::Collection;

use crate::end_to_end::drain;
use crate::entity_processor::{delivery, message};
use crate::harness::{goods, harness, id_of, set_stock, small_spec, Harness, ORG};
use crate::webhook_ingest::{call, credentials_doc, request, sign};

const NAMESPACE: &str = "TDS/test-stack";

/// CloudWatch's `StandardUnit` values.
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// An error naming the first member of `object` (`what`) that is not in `allowed`: the specification's
/// objects "MUST NOT contain any additional members".
fn only(object: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(format!("{what} has an unknown member {extra}")),
        None => Ok(()),
    }
}

/// Checks one log line against the EMF specification (root node, metadata object, metric
/// directives, dimension sets, metric definitions, target members and their limits); returns the
/// metric names it defines.
fn validate_emf(line: &str) -> Result<Vec<String>, String> {
    if line.len() > 256 * 1024 {
        return Err(format!("{} bytes: over the log event limit", line.len()));
    }
    let root: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws metadata object")?;
    only(aws, &["Timestamp", "CloudWatchMetrics"], "_aws")?;
    aws.get("Timestamp")
        .and_then(Value::as_u64)
        .ok_or("Timestamp is not a non-negative integer")?;
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("CloudWatchMetrics is not a non-empty array")?;
    let mut names = Vec::new();
    for d in directives {
        let d = d.as_object().ok_or("a metric directive is not an object")?;
        only(d, &["Namespace", "Dimensions", "Metrics"], "a directive")?;
        let ns = d
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("Namespace is not a string")?;
        if ns.is_empty() || ns.len() > 1024 || ns.starts_with("AWS/") {
            return Err(format!("Namespace {ns:?} is not allowed"));
        }
        let sets = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("Dimensions is not an array")?;
        for set in sets {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > 30 {
                return Err("a dimension set has more than 30 keys".into());
            }
            for key in set {
                let key = key.as_str().ok_or("a dimension key is not a string")?;
                match root.get(key).and_then(Value::as_str) {
                    Some(v) if !v.trim().is_empty() && v.len() <= 1024 => {}
                    _ => return Err(format!("dimension {key} has no string value on the root")),
                }
            }
        }
        let metrics = d
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("Metrics is not an array")?;
        if metrics.is_empty() || metrics.len() > 100 {
            return Err(format!(
                "{} metric definitions (1 to 100 allowed)",
                metrics.len()
            ));
        }
        for m in metrics {
            let m = m
                .as_object()
                .ok_or("a metric definition is not an object")?;
            only(
                m,
                &["Name", "Unit", "StorageResolution"],
                "a metric definition",
            )?;
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty() && n.len() <= 1024)
                .ok_or("a metric has no valid Name")?;
            if let Some(unit) = m.get("Unit") {
                if !unit.as_str().is_some_and(|u| UNITS.contains(&u)) {
                    return Err(format!("{name}: unit {unit} is not a StandardUnit"));
                }
            }
            if let Some(r) = m.get("StorageResolution") {
                if !matches!(r.as_i64(), Some(1 | 60)) {
                    return Err(format!("{name}: StorageResolution {r}"));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if !values.is_empty()
                        && values.len() <= 100
                        && values.iter().all(Value::is_number) => {}
                other => {
                    return Err(format!(
                        "{name}: value {other:?} is not a number or 1 to 100 numbers"
                    ))
                }
            }
            if names.contains(&name.to_string()) {
                return Err(format!("{name} is defined twice"));
            }
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// The custom metrics the template's alarms and dashboard read (written as the template's checks
/// require: `Namespace: !Sub "TDS/${AWS::StackName}"` then `MetricName:`, and `["${MetricsNamespace}",
/// "<name>"` or `MetricName=\"<name>\"` in the dashboard body).
fn template_metrics() -> BTreeSet<String> {
    let path = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let mut names = BTreeSet::new();
    let name_after =
        |rest: &str, end: char| -> String { rest.split(end).next().unwrap().trim().to_string() };
    let alarm = "Namespace: !Sub \"TDS/${AWS::StackName}\"";
    for (i, _) in text.match_indices(alarm) {
        let next = text[i + alarm.len()..].trim_start();
        // Only an alarm's namespace is followed by its metric name (ALARM_METRIC_RE's rule).
        if let Some(rest) = next.strip_prefix("MetricName:") {
            names.insert(name_after(rest, '\n'));
        }
    }
    for marker in ["[ \"${MetricsNamespace}\", \"", "MetricName=\\\""] {
        for (i, _) in text.match_indices(marker) {
            names.insert(name_after(
                &text[i + marker.len()..],
                if marker.ends_with("\\\"") { '\\' } else { '"' },
            ));
        }
    }
    // Words only, as the regexes of the template checks read them (a comment shows `<name>`).
    names.retain(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    names
}

/// Every line of `lines` is valid EMF in the namespace; the metric names they define.
fn names_in(function: &str, lines: &[String]) -> BTreeSet<String> {
    assert!(!lines.is_empty(), "{function} printed no metrics");
    let mut names = BTreeSet::new();
    for line in lines {
        let defined = validate_emf(line).unwrap_or_else(|e| panic!("{function}: {e}\n{line}"));
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        names.extend(defined);
    }
    names
}

#[test]
fn the_emf_validator_refuses_what_the_specification_forbids() {
    let good = json!({"_aws": {"Timestamp": 1_700_000_000_000i64, "CloudWatchMetrics": [{
        "Namespace": NAMESPACE, "Dimensions": [[], ["Kind"]],
        "Metrics": [{"Name": "EntitiesApplied", "Unit": "Count"}]}]},
        "Kind": "item", "EntitiesApplied": 3});
    assert_eq!(
        validate_emf(&good.to_string()).unwrap(),
        ["EntitiesApplied"]
    );
    type Break = Box<dyn Fn(&mut Value)>;
    let broken: Vec<(&str, Break)> = vec![
        (
            "no timestamp",
            Box::new(|v| {
                v["_aws"].as_object_mut().unwrap().remove("Timestamp");
            }),
        ),
        (
            "AWS namespace",
            Box::new(|v| v["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("AWS/Lambda")),
        ),
        (
            "dimension without value",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("Kind");
            }),
        ),
        (
            "unknown unit",
            Box::new(|v| v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Items")),
        ),
        (
            "value not a number",
            Box::new(|v| v["EntitiesApplied"] = json!("3")),
        ),
        (
            "missing value",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("EntitiesApplied");
            }),
        ),
        (
            "too many values",
            Box::new(|v| v["EntitiesApplied"] = json!(vec![1; 101])),
        ),
        (
            "extra directive member",
            Box::new(|v| v["_aws"]["CloudWatchMetrics"][0]["Unit"] = json!("Count")),
        ),
    ];
    for (what, breaks) in broken {
        let mut v = good.clone();
        breaks(&mut v);
        assert!(validate_emf(&v.to_string()).is_err(), "{what} passed");
    }
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn every_function_prints_valid_emf_and_the_metrics_the_template_reads(pool: PgPool) {
    let h = harness(pool, &small_spec(20), None).await;
    let mut printed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();

    // webhook-ingest (its own process: its own metrics), onto the inbox entity-processor reads.
    let ingest_metrics = Metrics::enabled();
    let secrets = CachedSecrets::new(
        Arc::new(MemorySecrets::new([(
            "zoho".to_string(),
            credentials_doc(),
        )])),
        Duration::from_secs(300),
    );
    let ingest = WebhookIngest::new(
        h.inbox.clone(),
        Arc::new(SecretWebhookAuth::new(Arc::new(secrets), "zoho")),
    )
    .with_metrics(ingest_metrics.clone());
    let contact = h.sim_records(Collection::Contacts).remove(0);
    let body = json!({"contact": contact}).to_string();
    let path = format!("/webhooks/zoho/{ORG}/edited");
    let signed = [
        ("X-TDS-Webhook-Secret", "wh-secret-123"),
        ("X-Zoho-Webhook-Signature", &sign(&body)),
    ];
    assert_eq!(call(&ingest, request(&path, &signed, &body)).await.0, 202);
    let forged = [
        ("X-TDS-Webhook-Secret", "wrong"),
        ("X-Zoho-Webhook-Signature", "00"),
    ];
    assert_eq!(call(&ingest, request(&path, &forged, &body)).await.0, 401);
    let lines = EmfWriter::new(ingest_metrics, NAMESPACE).lines();
    printed.insert("webhook-ingest", names_in("webhook-ingest", &lines));
    let rejected: Value = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["Reason"] == "unauthorized")
        .expect("a rejection by reason");
    assert_eq!(rejected["WebhooksRejected"], json!(1.0));

    // entity-processor: the webhook, a full sync of everything, a stale replay, a dead letter.
    let emf = EmfWriter::new(h.metrics.clone(), NAMESPACE);
    let processor = h.processor();
    h.start(&["all"], SyncMode::Full).await;
    let invoice = h.sim_records(Collection::Invoices).remove(0);
    h.inbox
        .send("{\"not\": \"an inbox message\"}".into())
        .await
        .unwrap();
    drain(&*h.inbox, &processor).await;
    let mut older = invoice.clone();
    older["last_modified_time"] = json!("2020-01-01T00:00:00+0000");
    older["total"] = json!(1.0);
    let out = processor
        .process(vec![
            delivery(EntityKind::Invoice, older, Action::Edited),
            delivery(EntityKind::Invoice, invoice, Action::Edited),
        ])
        .await;
    assert!(
        out.iter().all(|(_, d)| *d == tds_sync::Disposition::Done),
        "{out:?}"
    );
    printed.insert(
        "entity-processor",
        names_in("entity-processor", &emf.lines()),
    );

    // stock-poller: a poll that changes stock and finds low stock, then one Zoho fails throughout.
    let poller = h.app().poller();
    let item = goods(&h).remove(0);
    let location = item["locations"][0]["location_id"]
        .as_str()
        .unwrap()
        .to_string();
    set_stock(&h, &id_of(Collection::Items, &item), &location, 1).await;
    stock_poller::handle(&poller, json!({"mode": "full"}))
        .await
        .unwrap();
    h.sim.sim.configure(|c| c.error_rate = 1.0);
    assert!(stock_poller::handle(&poller, json!({"mode": "full"}))
        .await
        .is_err());
    h.sim.sim.configure(|c| c.error_rate = 0.0);
    printed.insert("stock-poller", names_in("stock-poller", &emf.lines()));

    // statistics: a comparison, with Zoho answering 429 to a burst (three calls a second).
    h.sim.sim.configure(|c| {
        c.per_minute_limit = 3;
        c.window = Duration::from_millis(1000);
        c.retry_after = true;
    });
    statistics::handle(&h.comparator(), json!({"heal": false}))
        .await
        .unwrap();
    h.sim.sim.configure(|c| c.per_minute_limit = 1_000_000);
    printed.insert("statistics", names_in("statistics", &emf.lines()));

    // admin-api: a comparison asked through the admin routes counts as the statistics one does.
    let admin = crate::admin_api::serve(&h).await;
    let (status, _) = crate::admin_api::call(
        &admin,
        "post",
        "/api/tds/statistics/sync-differences",
        Some(crate::admin_api::TOKEN),
        json!({"dry_run": true}),
    )
    .await;
    assert!(status.is_success(), "{status}");
    printed.insert("admin-api", names_in("admin-api", &emf.lines()));

    let expect: &[(&str, &[&str])] = &[
        ("webhook-ingest", &["WebhooksAccepted", "WebhooksRejected"]),
        (
            "entity-processor",
            &[
                "EntitiesApplied",
                "EntitiesUnchanged",
                "EntitiesStale",
                "DeadLetters",
                "ZohoCalls",
                "ZohoBudgetWaitMs",
                "TokenRefreshes",
                "ZohoDailyQuotaUsedPercent",
                "SyncRunDurationMs",
                "SyncRunRecords",
                "UnannouncedChanges",
            ],
        ),
        (
            "stock-poller",
            &[
                "StockChanges",
                "LowStockItems",
                "SyncRunsFailed",
                "ZohoCalls",
            ],
        ),
        (
            "statistics",
            &[
                "ComparisonMatchPercent",
                "ComparisonDifferences",
                "ZohoThrottled",
                "ZohoCalls",
            ],
        ),
        ("admin-api", &["ComparisonMatchPercent", "ZohoCalls"]),
    ];
    for (function, names) in expect {
        for name in *names {
            assert!(
                printed[function].contains(*name),
                "{function} printed no {name}: {:?}",
                printed[function]
            );
        }
    }
    let all: BTreeSet<String> = printed.values().flatten().cloned().collect();
    let watched = template_metrics();
    assert!(
        watched.len() >= 15,
        "the template's metrics were not found: {watched:?}"
    );
    let missing: Vec<&String> = watched.difference(&all).collect();
    assert!(
        missing.is_empty(),
        "metrics the template reads that no function printed: {missing:?}"
    );
    let names: BTreeSet<String> = tds_core::metrics::Metric::ALL
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    assert_eq!(
        all.difference(&names).count(),
        0,
        "every printed metric is in the contract"
    );
}

/// `UnannouncedChanges` (the webhook-silence alarm's metric) for `org`, from flushed lines.
fn unannounced(lines: &[String], org: &str) -> f64 {
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["Org"] == org)
        .filter_map(|l| l["UnannouncedChanges"].as_f64())
        .sum()
}

async fn edit_contacts(h: &Harness, n: usize, suffix: &str) -> Vec<Value> {
    let ids: Vec<String> = h
        .sim_records(Collection::Contacts)
        .iter()
        .take(n)
        .map(|c| c["contact_id"].as_str().unwrap().to_string())
        .collect();
    ids.iter()
        .map(|id| {
            let fields = json!({"contact_id": id, "company_name": format!("Renamed {suffix}")});
            h.sim
                .sim
                .upsert(
                    ORG,
                    Collection::Contacts,
                    fields.as_object().unwrap().clone(),
                )
                .unwrap()
        })
        .collect()
}

#[sqlx::test(migrator = "tds_store::MIGRATOR")]
async fn the_webhook_silence_metric_rises_only_for_changes_no_webhook_brought(pool: PgPool) {
    let h = harness(pool, &small_spec(10), None).await;
    let emf = EmfWriter::new(h.metrics.clone(), NAMESPACE);
    let processor = h.processor();
    h.start(&["contact"], SyncMode::Full).await;
    h.drain(&processor).await;
    let first_load = unannounced(&emf.lines(), ORG);
    assert!(
        first_load > 0.0,
        "the first load is changes no webhook brought"
    );

    // Announced: each edit's webhook is applied before the poll, which then finds nothing new.
    let edited = edit_contacts(&h, 3, "announced").await;
    let webhooks: Vec<Incoming> = edited
        .iter()
        .map(|c| message(EntityKind::Contact, c, Action::Edited))
        .collect();
    let out = processor.process(webhooks).await;
    assert!(
        out.iter().all(|(_, d)| *d == tds_sync::Disposition::Done),
        "{out:?}"
    );
    h.start(&["contact"], SyncMode::Incremental).await;
    h.drain(&processor).await;
    assert_eq!(
        unannounced(&emf.lines(), ORG),
        0.0,
        "changes webhooks had brought are not unannounced"
    );

    // Silent: the same kind of edits with no webhook (a disabled workflow rule).
    edit_contacts(&h, 4, "silent").await;
    h.start(&["contact"], SyncMode::Incremental).await;
    h.drain(&processor).await;
    let lines = emf.lines();
    assert_eq!(unannounced(&lines, ORG), 4.0, "{lines:?}");
    // Published without a dimension too (what the alarm watches) and by organisation.
    for l in lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
    {
        if l.get("UnannouncedChanges").is_some() {
            assert_eq!(
                l["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([[], ["Org"]]),
                "{l}"
            );
        }
    }
}
