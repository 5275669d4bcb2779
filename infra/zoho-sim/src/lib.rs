//! A Zoho simulator for TDS: Books v3 and Inventory v1 read APIs, Zoho Accounts' token endpoint, the
//! limits Zoho enforces, and a control API for tests. Faithful to `../shared/ZOHO.md`: string ids,
//! `+0530` offsets, six-decimal numbers, `""` for unset numbers, services without stock fields, both
//! stock shapes, errors as Zoho sends them (401 code 14 / 57, 404 code 1002, 429, non-zero `code` on
//! HTTP 200), per-minute, concurrency and daily limits with `X-Rate-Limit-*` headers.
//!
//! It owns simulated state only; it is used by tests, benchmarks and the local stack, never in Lambda.
#![recursion_limit = "256"]

pub mod data;
pub mod demo;
mod json;
mod server;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use data::{Collection, Org, StockShape};
pub use demo::{generate, DemoSpec, Rng};
pub use state::{ClientCredentials, OrgStats, SimConfig, Stats};

use state::State;

/// A running or runnable simulator: shared state behind the HTTP API. Cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
}

/// A simulator serving on a local address.
pub struct RunningSimulator {
    /// The simulator (inspect stats, change config, mutate records).
    pub sim: Simulator,
    /// `http://127.0.0.1:PORT`: both the accounts server and the API domain.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Simulator {
    /// A simulator with `config`, the given organisations, and one OAuth client (`client`).
    pub fn new(config: SimConfig, orgs: Vec<Org>, client: ClientCredentials) -> Simulator {
        Simulator {
            state: Arc::new(Mutex::new(State::new(config, orgs, client))),
        }
    }

    /// A simulator with default limits, one demo organisation from `spec` and the default client.
    pub fn demo(spec: &DemoSpec) -> Simulator {
        Simulator::new(
            SimConfig::default(),
            vec![generate(spec)],
            ClientCredentials::default(),
        )
    }

    /// Runs `f` on the state (config, organisations, stats) under the lock.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Current statistics.
    pub fn stats(&self) -> Stats {
        self.with_state(|s| s.stats.clone())
    }

    /// Clears statistics (call counts, refreshes).
    pub fn reset_stats(&self) {
        self.with_state(|s| s.stats = Stats::default());
    }

    /// Changes the configuration.
    pub fn configure(&self, f: impl FnOnce(&mut SimConfig)) {
        self.with_state(|s| f(&mut s.config));
    }

    /// Expires every access token issued so far (the next API call gets 401 code 57).
    pub fn expire_tokens(&self) {
        self.with_state(|s| s.tokens.clear());
    }

    /// Binds `addr` (port 0 for any free port) and serves until the returned handle is dropped.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<RunningSimulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        self.with_state(|s| s.api_domain = base_url.clone());
        let app = server::router(self.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("zoho-sim: server stopped: {e}");
            }
        });
        Ok(RunningSimulator {
            sim: self,
            base_url,
            addr,
            task,
        })
    }

    /// Serves on a free port of 127.0.0.1.
    pub async fn serve_local(self) -> std::io::Result<RunningSimulator> {
        self.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }
}
