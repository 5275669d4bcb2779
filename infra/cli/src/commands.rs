//! The operator commands: a thin client of the admin API (the same routes whether TDS runs on AWS or
//! under `tds up`), plus `migrate`, which talks to the database directly.
//!
//! Exit codes scripts can rely on: 0 done (healthy), 1 the operation failed or TDS is unhealthy,
//! 2 bad usage, 3 degraded, 4 the API or the database cannot be reached.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tds_core::EntityKind;

/// A command's failure: exit code and message.
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

fn usage(message: impl Into<String>) -> Exit {
    Exit(2, message.into())
}

/// How requests prove who sends them.
enum Auth {
    /// `Authorization: Bearer` with the admin token (the local stack, or a token-checked deployment).
    Bearer(String),
    /// SigV4 with the caller's AWS credentials (the admin HTTP API's IAM authorizer).
    AwsIam(crate::sigv4::Signer),
}

/// Flags every client command takes.
struct Common {
    api: String,
    auth: Auth,
    json: bool,
}

/// Splits `--flag value` / `--switch` arguments; positional ones are returned in order.
struct Args {
    positional: Vec<String>,
    flags: Vec<(String, Option<String>)>,
}

const SWITCHES: [&str; 8] = [
    "--json",
    "--aws-iam",
    "--wait",
    "--detailed",
    "--sync",
    "--dry-run",
    "--low-stock",
    "--yes",
];

impl Args {
    fn parse(args: &[String]) -> Result<Args, Exit> {
        let mut out = Args {
            positional: Vec::new(),
            flags: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if SWITCHES.contains(&a.as_str()) {
                out.flags.push((a.clone(), None));
            } else if a.starts_with("--") {
                let v = it
                    .next()
                    .ok_or_else(|| usage(format!("{a} needs a value")))?;
                out.flags.push((a.clone(), Some(v.clone())));
            } else {
                out.positional.push(a.clone());
            }
        }
        Ok(out)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(k, _)| k == name)
    }

    fn only(&self, allowed: &[&str]) -> Result<(), Exit> {
        for (k, _) in &self.flags {
            if !allowed.contains(&k.as_str())
                && !["--api", "--token", "--json", "--aws-iam"].contains(&k.as_str())
            {
                return Err(usage(format!(
                    "unknown option {k}; this command takes {}",
                    allowed.join(" ")
                )));
            }
        }
        Ok(())
    }

    /// `--api`/`TDS_API_URL`, and the credentials: `--aws-iam` (or `TDS_API_AUTH=aws-iam`, or an
    /// execute-api URL with no token given) signs with AWS credentials; else the bearer token from
    /// `--token`/`TDS_ADMIN_TOKEN`.
    async fn common(&self) -> Result<Common, Exit> {
        let api = self
            .value("--api")
            .map(str::to_string)
            .or_else(|| std::env::var("TDS_API_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let api = api.trim_end_matches('/').to_string();
        let token = self
            .value("--token")
            .map(str::to_string)
            .or_else(|| std::env::var("TDS_ADMIN_TOKEN").ok())
            .filter(|t| !t.is_empty());
        let iam = match std::env::var("TDS_API_AUTH").ok().as_deref() {
            _ if self.has("--aws-iam") => true,
            Some("aws-iam") => true,
            Some("token") | Some("") | None => {
                token.is_none() && crate::sigv4::region_of(&api).is_some()
            }
            Some(other) => {
                return Err(usage(format!(
                    "TDS_API_AUTH={other:?} is not a way to authenticate; use token or aws-iam"
                )))
            }
        };
        let auth = match (iam, token) {
            (true, _) => Auth::AwsIam(
                crate::sigv4::Signer::from_environment(&api)
                    .await
                    .map_err(usage)?,
            ),
            (false, Some(token)) => Auth::Bearer(token),
            (false, None) => {
                return Err(usage(
                    "no admin token: pass --token or set TDS_ADMIN_TOKEN (tds up prints it); \
                     for the admin API on AWS pass --aws-iam",
                ))
            }
        };
        Ok(Common {
            api,
            auth,
            json: self.has("--json"),
        })
    }
}

fn entity(name: &str) -> Result<String, Exit> {
    if name == "all" {
        return Ok(name.into());
    }
    name.parse::<EntityKind>()
        .map(|k| k.as_str().to_string())
        .map_err(|e| usage(format!("{e} (or `all`)")))
}

async fn call(c: &Common, method: &str, path: &str, body: Option<Value>) -> Result<Value, Exit> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| Exit(1, e.to_string()))?;
    let url = format!("{}{path}", c.api);
    let body = match method {
        "POST" => serde_json::to_vec(&body.unwrap_or(json!({}))).unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut req = match method {
        "POST" => client.post(&url).header("content-type", "application/json"),
        _ => client.get(&url),
    };
    req = match &c.auth {
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::AwsIam(signer) => {
            let headers = signer
                .headers(method, &url, &body, std::time::SystemTime::now())
                .await
                .map_err(|e| Exit(1, e))?;
            headers
                .iter()
                .fold(req, |req, (name, value)| req.header(name, value))
        }
    };
    if method == "POST" {
        req = req.body(body);
    }
    let resp = req.send().await.map_err(|e| {
        Exit(
            4,
            format!(
                "cannot reach the admin API at {} ({e}); is `tds up` running, or pass --api",
                c.api
            ),
        )
    })?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    match status.as_u16() {
        200..=299 => Ok(body),
        // Health answers 503 when unhealthy: that is an answer, not a failure to call.
        503 if path == "/api/tds/health" => Ok(body),
        401 => Err(Exit(
            1,
            format!(
                "the admin API refused the token: {}",
                body["error"].as_str().unwrap_or("401")
            ),
        )),
        // API Gateway's IAM authorizer: a bad signature or a principal without execute-api:Invoke.
        403 => Err(Exit(
            1,
            format!(
                "the admin API refused the request (403 {}); the caller needs execute-api:Invoke on it \
                 (the stack's AdminApiInvokePolicy) and valid AWS credentials",
                body["message"]
                    .as_str()
                    .or(body["error"].as_str())
                    .unwrap_or("Forbidden")
            ),
        )),
        // 400: the request was wrong (bad usage); 404 and the rest: there is nothing to show, or
        // the operation failed.
        code => Err(Exit(
            if code == 400 { 2 } else { 1 },
            body["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {code}")),
        )),
    }
}

fn emit(c: &Common, value: &Value, table: impl FnOnce(&mut dyn Write)) {
    let mut out = std::io::stdout().lock();
    if c.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        table(&mut out);
    }
}

/// Prints rows as aligned columns.
fn print_table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    );
    for r in rows {
        let _ = writeln!(out, "{}", line(r.clone()));
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn run_rows(runs: &[Value]) -> Vec<Vec<String>> {
    runs.iter()
        .map(|r| {
            [
                "id",
                "entity",
                "mode",
                "status",
                "fetched",
                "changed",
                "api_calls",
                "duration_ms",
            ]
            .iter()
            .map(|k| text(&r[*k]))
            .collect()
        })
        .collect()
}

/// `tds sync <entity|all> [--mode full|incremental] [--wait]`.
pub async fn sync(args: &[String]) -> Result<(), Exit> {
    let a = Args::parse(args)?;
    a.only(&["--mode", "--wait", "--org"])?;
    let c = a.common().await?;
    let target = a
        .positional
        .first()
        .ok_or_else(|| usage("tds sync <entity|all> [--mode full|incremental] [--wait]"))?;
    let target = entity(target)?;
    let mode = a.value("--mode").unwrap_or("incremental");
    if !["full", "incremental"].contains(&mode) {
        return Err(usage(format!(
            "--mode must be full or incremental, not {mode}"
        )));
    }
    let mut body = json!({"entities": [target], "mode": mode});
    if let Some(org) = a.value("--org") {
        body["org_id"] = json!(org);
    }
    let started = call(&c, "POST", "/api/tds/sync", Some(body)).await?;
    let ids: Vec<i64> = started["run_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    if !a.has("--wait") {
        emit(&c, &started, |out| {
            let _ = writeln!(out, "started {} run(s): {ids:?} ({mode}); follow with `tds sync ... --wait` or GET /api/tds/sync-runs", ids.len());
        });
        return Ok(());
    }
    // Progress until every run finished.
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut runs = Vec::new();
    loop {
        runs.clear();
        for id in &ids {
            runs.push(call(&c, "GET", &format!("/api/tds/sync-runs/{id}"), None).await?);
        }
        let done = runs.iter().filter(|r| r["status"] != "running").count();
        if !c.json {
            let fetched: i64 = runs.iter().filter_map(|r| r["fetched"].as_i64()).sum();
            let width = 30;
            let filled = if ids.is_empty() {
                width
            } else {
                done * width / ids.len()
            };
            eprint!(
                "\r[{}{}] {done}/{} runs, {fetched} records   ",
                "#".repeat(filled),
                ".".repeat(width - filled),
                ids.len()
            );
        }
        if done == ids.len() {
            break;
        }
        if Instant::now() > deadline {
            return Err(Exit(1, "gave up waiting after an hour".into()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !c.json {
        eprintln!();
    }
    let failed = runs.iter().filter(|r| r["status"] == "failed").count();
    emit(&c, &json!({"runs": runs}), |out| {
        print_table(
            out,
            &[
                "id",
                "entity",
                "mode",
                "status",
                "fetched",
                "changed",
                "api calls",
                "ms",
            ],
            &run_rows(&runs),
        )
    });
    if failed > 0 {
        return Err(Exit(1, format!("{failed} run(s) failed")));
    }
    Ok(())
}

/// `tds stock [--mode M] [--warehouse ID] [--items a,b] [--low-stock --threshold N]`.
pub async fn stock(args: &[String]) -> Result<(), Exit> {
    let a = Args::parse(args)?;
    a.only(&[
        "--mode",
        "--warehouse",
        "--items",
        "--low-stock",
        "--threshold",
        "--org",
    ])?;
    let c = a.common().await?;
    let mode = if a.has("--low-stock") {
        "low_stock".to_string()
    } else if a.value("--warehouse").is_some() {
        "warehouse".into()
    } else if a.value("--items").is_some() {
        "items".into()
    } else {
        a.value("--mode").unwrap_or("incremental").to_string()
    };
    let mut body = json!({"mode": mode});
    if let Some(w) = a.value("--warehouse") {
        body["warehouse_id"] = json!(w);
    }
    if let Some(items) = a.value("--items") {
        body["item_ids"] = json!(items
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>());
    }
    if let Some(t) = a.value("--threshold") {
        let t: f64 = t
            .parse()
            .map_err(|_| usage(format!("--threshold must be a number, not {t}")))?;
        body["threshold"] = json!(t);
    }
    if let Some(org) = a.value("--org") {
        body["org_id"] = json!(org);
    }
    let answer = call(&c, "POST", "/api/tds/stock/sync", Some(body)).await?;
    let rows: Vec<Vec<String>> = answer["reports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            [
                "org_id",
                "run_id",
                "items_checked",
                "rows_changed",
                "rows_unchanged",
                "low_stock",
                "api_calls",
            ]
            .iter()
            .map(|k| text(&r[*k]))
            .collect()
        })
        .collect();
    emit(&c, &answer, |out| {
        print_table(
            out,
            &[
                "org",
                "run",
                "items",
                "changed",
                "unchanged",
                "low",
                "api calls",
            ],
            &rows,
        )
    });
    Ok(())
}

/// `tds stats [--entity E] [--detailed]`: exit 1 with a hint when no comparison has been made yet.
pub async fn stats(args: &[String]) -> Result<(), Exit> {
    stats_of_latest(args).await.map_err(|Exit(code, message)| {
        if message.starts_with("no comparison yet") {
            Exit(code, "no comparison yet: run `tds compare` first".into())
        } else {
            Exit(code, message)
        }
    })
}

async fn stats_of_latest(args: &[String]) -> Result<(), Exit> {
    let a = Args::parse(args)?;
    a.only(&["--entity", "--detailed", "--org"])?;
    let c = a.common().await?;
    let org = a
        .value("--org")
        .map(|o| format!("?org_id={o}"))
        .unwrap_or_default();
    if a.has("--detailed") {
        let report = call(
            &c,
            "GET",
            &format!("/api/tds/statistics/compare{org}"),
            None,
        )
        .await?;
        emit(&c, &report, |out| {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report["statistics"]).unwrap_or_default()
            );
        });
        return Ok(());
    }
    if let Some(group) = a.value("--entity") {
        let allowed = [
            "items",
            "customers",
            "vendors",
            "pricelists",
            "stock",
            "images",
        ];
        if !allowed.contains(&group) {
            return Err(usage(format!(
                "unknown statistics group {group}; valid: {}",
                allowed.join(", ")
            )));
        }
        let answer = call(
            &c,
            "GET",
            &format!("/api/tds/statistics/{group}{org}"),
            None,
        )
        .await?;
        let s = &answer["statistics"];
        let mut keys: Vec<String> = s["zoho"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        let rows: Vec<Vec<String>> = keys
            .iter()
            .map(|k| vec![k.clone(), text(&s["zoho"][k]), text(&s["database"][k])])
            .collect();
        emit(&c, &answer, |out| {
            print_table(out, &["statistic", "zoho", "database"], &rows)
        });
        return Ok(());
    }
    let overview = call(
        &c,
        "GET",
        &format!("/api/tds/statistics/overview{org}"),
        None,
    )
    .await?;
    let rows: Vec<Vec<String>> = overview["kinds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            ["kind", "zoho_total", "local_total", "differences"]
                .iter()
                .map(|f| text(&k[*f]))
                .collect()
        })
        .collect();
    emit(&c, &overview, |out| {
        let _ = writeln!(
            out,
            "match {:.1} %  health {}  {}",
            overview["match_pct"].as_f64().unwrap_or(0.0),
            text(&overview["health_score"]),
            text(&overview["severity"])
        );
        print_table(out, &["kind", "zoho", "database", "differences"], &rows);
    });
    Ok(())
}

/// `tds compare [--entity E] [--sync [--threshold N]] [--dry-run] [--save FILE]`. An operator's
/// `--sync` heals every difference (threshold 0), unlike the schedule, which leaves small drift to
/// the next sync; `--threshold N` heals only kinds with more than N differences.
pub async fn compare(args: &[String]) -> Result<(), Exit> {
    let a = Args::parse(args)?;
    a.only(&[
        "--entity",
        "--sync",
        "--dry-run",
        "--save",
        "--org",
        "--threshold",
    ])?;
    let c = a.common().await?;
    let entities = match a.value("--entity") {
        Some(e) => vec![entity(e)?],
        None => vec!["all".to_string()],
    };
    let threshold: usize = match a.value("--threshold") {
        Some(t) => t.parse().map_err(|_| {
            usage(format!(
                "--threshold must be a whole number of differences, not {t}"
            ))
        })?,
        None => 0,
    };
    let thresholds: serde_json::Map<String, Value> = EntityKind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), json!(threshold)))
        .collect();
    let mut body = json!({"entities": entities, "heal": a.has("--sync") || a.has("--dry-run"),
                          "dry_run": a.has("--dry-run"), "thresholds": thresholds});
    if let Some(org) = a.value("--org") {
        body["org_id"] = json!(org);
    }
    let answer = call(
        &c,
        "POST",
        "/api/tds/statistics/sync-differences",
        Some(body),
    )
    .await?;
    if let Some(path) = a.value("--save") {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&answer).unwrap_or_default(),
        )
        .map_err(|e| Exit(1, format!("cannot write {path}: {e}")))?;
    }
    let mut rows = Vec::new();
    for r in answer["reports"].as_array().into_iter().flatten() {
        for k in r["kinds"].as_array().into_iter().flatten() {
            let n = |f: &str| k[f].as_array().map_or(0, Vec::len).to_string();
            rows.push(vec![
                text(&r["org_id"]),
                text(&k["kind"]),
                n("missing_locally"),
                n("deleted_in_zoho"),
                n("stale"),
                n("mismatched"),
            ]);
        }
    }
    emit(&c, &answer, |out| {
        for r in answer["reports"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "{}: match {:.1} % ({}){}",
                text(&r["org_id"]),
                r["match_pct"].as_f64().unwrap_or(0.0),
                text(&r["severity"]),
                if r["dry_run"] == true {
                    ", dry run"
                } else {
                    ""
                }
            );
        }
        print_table(
            out,
            &[
                "org",
                "kind",
                "missing",
                "deleted in zoho",
                "stale",
                "mismatched",
            ],
            &rows,
        );
        if let Some(path) = a.value("--save") {
            let _ = writeln!(out, "report saved to {path}");
        }
    });
    Ok(())
}

/// `tds health`: exit 0 healthy, 3 degraded, 1 unhealthy.
pub async fn health(args: &[String]) -> Result<(), Exit> {
    let a = Args::parse(args)?;
    a.only(&[])?;
    let c = a.common().await?;
    let h = call(&c, "GET", "/api/tds/health", None).await?;
    emit(&c, &h, |out| {
        let _ = writeln!(out, "{}", text(&h["status"]));
        for r in h["reasons"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  - {}", text(r));
        }
    });
    match h["status"].as_str() {
        Some("healthy") => Ok(()),
        Some("degraded") => Err(Exit(3, "degraded".into())),
        _ => Err(Exit(1, "unhealthy".into())),
    }
}

/// `tds deadletter list|retry [--max N]`.
pub async fn deadletter(args: &[String]) -> Result<(), Exit> {
    let a = Args::parse(args)?;
    a.only(&["--max", "--limit"])?;
    let c = a.common().await?;
    match a.positional.first().map(String::as_str) {
        Some("list") => {
            let limit = a.value("--limit").unwrap_or("10");
            let answer = call(
                &c,
                "GET",
                &format!("/api/tds/deadletter?limit={limit}"),
                None,
            )
            .await?;
            let rows: Vec<Vec<String>> = answer["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    vec![
                        text(&m["message_id"]),
                        text(&m["failed_at"]),
                        text(&m["reason"]),
                    ]
                })
                .collect();
            emit(&c, &answer, |out| {
                let _ = writeln!(
                    out,
                    "{} message(s) in the dead-letter queue",
                    text(&answer["depth"])
                );
                print_table(out, &["message", "failed at", "reason"], &rows);
            });
            Ok(())
        }
        Some("retry") => {
            let max: usize = a
                .value("--max")
                .unwrap_or("100")
                .parse()
                .map_err(|_| usage("--max must be a whole number"))?;
            let answer = call(
                &c,
                "POST",
                "/api/tds/deadletter/retry",
                Some(json!({"max": max})),
            )
            .await?;
            emit(&c, &answer, |out| {
                let _ = writeln!(
                    out,
                    "moved {} message(s) back to the inbox",
                    text(&answer["moved"])
                );
            });
            Ok(())
        }
        _ => Err(usage("tds deadletter list|retry [--max N] [--limit N]")),
    }
}

/// `tds migrate`: applies the migrations to `DATABASE_URL`.
pub async fn migrate(args: &[String]) -> Result<(), Exit> {
    let a = Args::parse(args)?;
    a.only(&[])?;
    let config = tds_store::StoreConfig::from_env().map_err(|e| usage(e.to_string()))?;
    let shown = config.redacted_url();
    let store =
        tds_store::Store::connect_lazy(&config).map_err(|e| Exit(4, format!("{shown}: {e}")))?;
    store
        .ping()
        .await
        .map_err(|e| Exit(4, format!("cannot reach the database at {shown}: {e}")))?;
    let applied_before = store.applied_migrations().await.unwrap_or(0);
    store.migrate().await.map_err(|e| {
        let code = if e.is_retriable() { 4 } else { 1 };
        Exit(code, format!("cannot migrate the database at {shown}: {e}"))
    })?;
    let applied_after = store.applied_migrations().await.unwrap_or(0);
    let value = json!({"database": shown, "applied": applied_after - applied_before, "total": applied_after});
    let c = Common {
        api: String::new(),
        auth: Auth::Bearer(String::new()),
        json: a.has("--json"),
    };
    emit(&c, &value, |out| {
        let _ = writeln!(
            out,
            "{shown}: {} migration(s) applied, {} in total",
            applied_after - applied_before,
            applied_after
        );
    });
    Ok(())
}
