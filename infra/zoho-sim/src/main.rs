//! `zoho-sim`: the Zoho simulator standalone, serving one demo organisation.
//!
//! ```text
//! zoho-sim [--items N] [--port P] [--host H] [--seed S] [--shape locations|warehouses]
//!          [--per-minute N] [--window-secs S] [--org-id ID]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use tds_zoho_sim::{ClientCredentials, DemoSpec, SimConfig, Simulator, StockShape};

const USAGE: &str = "usage: zoho-sim [--items N] [--port P] [--host H] [--seed S] [--shape locations|warehouses] [--per-minute N] [--window-secs S] [--org-id ID]";

fn parse_args() -> Result<(DemoSpec, SimConfig, SocketAddr), String> {
    let mut spec = DemoSpec::default();
    let mut config = SimConfig::default();
    let (mut host, mut port) = ("127.0.0.1".to_string(), 8099u16);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} must be a whole number, got {v:?}"))
        };
        match flag.as_str() {
            "--items" => spec.items = number(&value)? as usize,
            "--port" => {
                port = u16::try_from(number(&value)?)
                    .map_err(|_| format!("--port out of range: {value}"))?
            }
            "--host" => host = value,
            "--seed" => spec.seed = number(&value)?,
            "--org-id" => spec.org_id = value,
            "--per-minute" => {
                config.per_minute_limit = u32::try_from(number(&value)?)
                    .map_err(|_| "--per-minute too large".to_string())?
            }
            "--window-secs" => config.window = Duration::from_secs(number(&value)?),
            "--shape" => {
                spec.stock_shape = match value.as_str() {
                    "locations" => StockShape::Locations,
                    "warehouses" => StockShape::Warehouses,
                    other => {
                        return Err(format!(
                            "--shape must be locations or warehouses, got {other:?}"
                        ))
                    }
                }
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|_| format!("invalid address {host}:{port}"))?;
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
