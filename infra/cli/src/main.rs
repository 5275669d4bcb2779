//! `tds`: the operator's command.
//!
//! `tds up` runs all of TDS in one process on this machine: PostgreSQL from `DATABASE_URL`, or a
//! private cluster it initialises and starts under the data directory, migrated; Zoho
//! from `TDS_ZOHO_CREDENTIALS`/`_FILE`, or an embedded simulator with a demo organisation whose
//! webhooks are signed and sent to the local ingest; the inbox as an in-process queue with visibility
//! timeout, receive count and a dead-letter queue; a local event log; images in a directory; webhooks
//! and the admin API on one HTTP port; an initial full sync; and the schedules of template.yaml on
//! their intervals (divided by `--time-scale` for demos). `tds sim` runs the simulator alone.
//! Every piece is the production core behind the same ports the Lambdas use.

mod commands;
mod pg;
mod sigv4;
mod up;

use std::process::ExitCode;

const USAGE: &str = "usage:
  tds up [--port P] [--items N] [--time-scale X] [--data-dir DIR] [--no-initial-sync] [--zoho-per-minute N]
         [--zoho-profile documented|filter-ignored-warehouses|filter-ignored-locations]
  tds sync <entity|all> [--mode full|incremental] [--wait]
  tds stock [--mode incremental|full] [--warehouse ID] [--items a,b] [--low-stock --threshold N]
  tds stats [--entity items|customers|vendors|pricelists|stock|images] [--detailed]
  tds compare [--entity E] [--sync [--threshold N]] [--dry-run] [--save FILE]
  tds health
  tds deadletter list|retry [--max N]
  tds migrate
  tds sim [zoho-sim options: --items N --port P ...]
  tds help
every client command: [--api URL] [--token T | --aws-iam] [--json]; exit codes: 0 done/healthy, 1 failed/unhealthy,
2 bad usage, 3 degraded, 4 API or database unreachable

environment: DATABASE_URL (default: a private cluster under --data-dir, made with the machine's PostgreSQL),
             TDS_ZOHO_CREDENTIALS or TDS_ZOHO_CREDENTIALS_FILE (default: the embedded simulator),
             TDS_ADMIN_TOKEN (default: generated and printed), TDS_API_URL (default http://127.0.0.1:8080),
             TDS_API_AUTH=aws-iam (sign with AWS credentials, as --aws-iam; the default for an
             execute-api URL without a token), AWS_PROFILE/AWS_REGION/..., RUST_LOG";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tds: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let a = args.get(1..).unwrap_or_default();
    let outcome = match args.first().map(String::as_str) {
        Some("sync") => Some(runtime.block_on(commands::sync(a))),
        Some("stock") => Some(runtime.block_on(commands::stock(a))),
        Some("stats") => Some(runtime.block_on(commands::stats(a))),
        Some("compare") => Some(runtime.block_on(commands::compare(a))),
        Some("health") => Some(runtime.block_on(commands::health(a))),
        Some("deadletter") => Some(runtime.block_on(commands::deadletter(a))),
        Some("migrate") => Some(runtime.block_on(commands::migrate(a))),
        _ => None,
    };
    if let Some(outcome) = outcome {
        return match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(commands::Exit(code, message)) => {
                eprintln!("tds: {message}");
                ExitCode::from(code)
            }
        };
    }
    let result = match args.first().map(String::as_str) {
        Some("up") => match up::Options::parse(&args[1..]) {
            Ok(options) => runtime.block_on(up::run(options)),
            Err(e) => Err(e),
        },
        Some("sim") => {
            // The simulator's own binary parses its options; it replaces this process, so stopping
            // `tds sim` stops the simulator.
            use std::os::unix::process::CommandExt;
            let program = std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("zoho-sim")))
                .filter(|p| p.exists())
                .unwrap_or_else(|| "zoho-sim".into());
            let e = std::process::Command::new(&program).args(&args[1..]).exec();
            Err(format!(
                "cannot run {} ({e}); build it with `cargo build -p tds-zoho-sim`",
                program.display()
            ))
        }
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
        None => Err(format!("no command given\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tds: {e}");
            ExitCode::from(2)
        }
    }
}
