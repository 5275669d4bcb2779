//! `zoho-sim`: the Zoho simulator standalone, serving one demo organisation.
//!
//! ```text
//! zoho-sim [--items N] [--port P] [--host H] [--seed S] [--shape locations|warehouses]
//!          [--per-minute N] [--window-secs S] [--org-id ID]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use tds_zoho_sim::{ClientCredentials, DemoSpec, SimConfig, Simulator, StockShape};

/// `zoho-sim`'s options; those not given keep the simulator's defaults.
#[derive(Debug, Parser)]
#[command(
    name = "zoho-sim",
    about = "The Zoho simulator standalone (Books v3, Inventory v1, Accounts), serving one demo organisation.",
    after_help = "It prints its address, the OAuth client to use and its control API (/__sim/stats, /__sim/config, ...), and serves until Ctrl-C."
)]
struct Cli {
    /// Items of the demo organisation.
    #[arg(long, value_name = "N")]
    items: Option<usize>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, value_name = "P", default_value_t = 8099)]
    port: u16,
    /// Address to listen on.
    #[arg(long, value_name = "H", default_value = "127.0.0.1")]
    host: String,
    /// Seed of the generated data.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// How item details give stock: `locations[]` or the older `warehouses[]`.
    #[arg(long, value_enum)]
    shape: Option<Shape>,
    /// Requests allowed per minute before 429s.
    #[arg(long, value_name = "N")]
    per_minute: Option<u32>,
    /// Length of the rate-limit window, in seconds.
    #[arg(long, value_name = "S")]
    window_secs: Option<u64>,
    /// The demo organisation's id.
    #[arg(long, value_name = "ID")]
    org_id: Option<String>,
}

/// `--shape`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shape {
    /// `locations[]`.
    Locations,
    /// `warehouses[]`.
    Warehouses,
}

/// The demo, the simulator's settings and the address, from the command line (exits 2 on bad usage,
/// 0 after `--help`).
fn parse_args() -> Result<(DemoSpec, SimConfig, SocketAddr), String> {
    let cli = Cli::parse();
    let mut spec = DemoSpec::default();
    let mut config = SimConfig::default();
    if let Some(items) = cli.items {
        spec.items = items;
    }
    if let Some(seed) = cli.seed {
        spec.seed = seed;
    }
    if let Some(org) = cli.org_id {
        spec.org_id = org;
    }
    if let Some(shape) = cli.shape {
        spec.stock_shape = match shape {
            Shape::Locations => StockShape::Locations,
            Shape::Warehouses => StockShape::Warehouses,
        };
    }
    if let Some(n) = cli.per_minute {
        config.per_minute_limit = n;
    }
    if let Some(secs) = cli.window_secs {
        config.window = Duration::from_secs(secs);
    }
    let (host, port) = (cli.host, cli.port);
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|_| format!("zoho-sim: invalid address {host}:{port}"))?;
    Ok((spec, config, addr))
}

#[tokio::main]
async fn main() {
    let (spec, config, addr) = match parse_args() {
        Ok(v) => v,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let client = ClientCredentials::default();
    let org = tds_zoho_sim::generate(&spec);
    let sim = Simulator::new(config, vec![org], client.clone());
    let running = match sim.serve(addr).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zoho-sim: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    // One write, errors ignored: a reader that stops listening (`| head -2`, a test that read the
    // address) must not take the server down with a broken pipe.
    let banner = format!(
        "zoho-sim serving {items} items of organisation {org} at {url}
  accounts server and API domain: {url}
  Books v3:      {url}/books/v3/items?organization_id={org}
  Inventory v1:  {url}/inventory/v1/items?organization_id={org}
  OAuth client:  client_id={id} client_secret={secret} refresh_token={refresh}
  control API:   {url}/__sim/stats, /__sim/config, /__sim/tokens/expire, /__sim/orgs/{org}/<collection>
",
        items = spec.items,
        org = spec.org_id,
        url = running.base_url,
        id = client.client_id,
        secret = client.client_secret,
        refresh = client.refresh_token,
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
