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

use clap::{Parser, Subcommand};

/// What `tds --help` and `tds help` add after the commands.
const AFTER_HELP: &str = "\
every client command (sync, stock, stats, compare, health, deadletter) takes
  [--api URL] [--token T | --aws-iam] [--json]; `tds <command> --help` shows a command's options

exit codes: 0 done/healthy, 1 failed/unhealthy, 2 bad usage, 3 degraded, 4 API or database unreachable

environment: DATABASE_URL (default: a private cluster under --data-dir, made with the machine's PostgreSQL),
             TDS_ZOHO_CREDENTIALS or TDS_ZOHO_CREDENTIALS_FILE (default: the embedded simulator),
             TDS_ADMIN_TOKEN (default: generated and printed), TDS_API_URL (default http://127.0.0.1:8080),
             TDS_API_AUTH=aws-iam (sign with AWS credentials, as --aws-iam; the default for an
             execute-api URL without a token), AWS_PROFILE/AWS_REGION/..., RUST_LOG";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "tds",
    version,
    about = "TDS, Zoho to PostgreSQL: `tds up` runs all of it on this machine; the other commands \
             are clients of its admin API (local or on AWS)",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Runs all of TDS on this machine until Ctrl-C (`tds up`).
    Up(up::Options),
    /// Starts a sync of one entity kind or all; --wait follows it to the end.
    Sync(commands::SyncArgs),
    /// Polls stock levels (changed, full, one warehouse, some items, or low stock).
    Stock(commands::StockArgs),
    /// Shows the latest comparison's statistics.
    Stats(commands::StatsArgs),
    /// Compares Zoho with the database, and heals differences with --sync.
    Compare(commands::CompareArgs),
    /// Says whether TDS is healthy (exit 0), degraded (3) or unhealthy (1).
    Health(commands::HealthArgs),
    /// Lists dead letters, or moves them back to the inbox.
    Deadletter(commands::DeadletterArgs),
    /// Applies the database migrations to DATABASE_URL.
    Migrate(commands::MigrateArgs),
    /// Runs the Zoho simulator alone (its options: `tds sim --help`).
    #[command(disable_help_flag = true)]
    Sim {
        /// zoho-sim's options, passed on unchanged (--items N --port P ...).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ZOHO-SIM OPTIONS"
        )]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    // Usage errors exit 2 with clap's message on stderr; --help and `tds help` exit 0 on stdout.
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        eprintln!(
            "tds: no command given\n\n{}",
            <Cli as clap::CommandFactory>::command().render_help()
        );
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tds: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = match command {
        Command::Sync(a) => runtime.block_on(commands::sync(a)),
        Command::Stock(a) => runtime.block_on(commands::stock(a)),
        Command::Stats(a) => runtime.block_on(commands::stats(a)),
        Command::Compare(a) => runtime.block_on(commands::compare(a)),
        Command::Health(a) => runtime.block_on(commands::health(a)),
        Command::Deadletter(a) => runtime.block_on(commands::deadletter(a)),
        Command::Migrate(a) => runtime.block_on(commands::migrate(a)),
        Command::Up(options) => runtime
            .block_on(up::run(options))
            .map_err(|e| commands::Exit(2, e)),
        Command::Sim { args } => {
            // The simulator's own binary parses its options; it replaces this process, so stopping
            // `tds sim` stops the simulator.
            use std::os::unix::process::CommandExt;
            let program = std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("zoho-sim")))
                .filter(|p| p.exists())
                .unwrap_or_else(|| "zoho-sim".into());
            let e = std::process::Command::new(&program).args(&args).exec();
            Err(commands::Exit(
                2,
                format!(
                    "cannot run {} ({e}); build it with `cargo build -p tds-zoho-sim`",
                    program.display()
                ),
            ))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(commands::Exit(code, message)) => {
            eprintln!("tds: {message}");
            ExitCode::from(code)
        }
    }
}
