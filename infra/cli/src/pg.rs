//! A private PostgreSQL cluster for `tds up` when no `DATABASE_URL` is given: initialised once under
//! the data directory with the machine's PostgreSQL binaries, started, reused on the next start (a
//! cluster left running by a killed stack included), and stopped when the stack stops (or fails to
//! start). It listens on no TCP port at all: only on a Unix socket inside its own 0700 directory, so
//! its trust authentication admits nobody but its owner. As root, the cluster runs as the `postgres`
//! user (PostgreSQL refuses to run as root); when `postgres` cannot reach the data directory (root's
//! home is 0700), the cluster lives under `/var/lib/tds/clusters/` instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running private cluster (stopped when dropped).
pub struct Cluster {
    bin: PathBuf,
    /// Where the cluster's files (and its socket) are.
    pub dir: PathBuf,
    as_postgres: bool,
    stopped: std::sync::atomic::AtomicBool,
    /// `postgres://postgres@localhost/postgres?host=<socket dir>&port=<port>`.
    pub admin_url: String,
}

/// The socket's port number (only names the socket file: nothing listens on TCP).
const PORT: u16 = 5432;

/// Where the cluster of `data_dir` lives: `data_dir/pg`, or, when it runs as `postgres` and that
/// user cannot reach `data_dir`, a directory of its own under `/var/lib/tds/clusters`.
fn cluster_dir(data_dir: &Path, as_postgres: bool) -> PathBuf {
    let own = data_dir.join("pg");
    if !as_postgres {
        return own;
    }
    let reachable = Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(data_dir)
        .status()
        .is_ok_and(|s| s.success());
    if reachable {
        return own;
    }
    // FNV-1a of the path: one stable directory per data directory.
    let hash = data_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    PathBuf::from(format!("/var/lib/tds/clusters/{hash:016x}"))
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("TDS_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    if let Some(dir) = candidates
        .into_iter()
        .rev()
        .find(|d| d.join("initdb").exists())
    {
        return Ok(dir);
    }
    let out = Command::new("pg_config").arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => Ok(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())),
        _ => Err("no DATABASE_URL and no PostgreSQL binaries found (looked in /usr/lib/postgresql/*/bin and pg_config); install PostgreSQL, set TDS_PG_BIN, or set DATABASE_URL".into()),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Cluster {
    fn run(&self, tool: &str, args: &[&str]) -> Result<std::process::Output, String> {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))
    }

    fn port_of_running(&self) -> Option<u16> {
        let pid = std::fs::read_to_string(self.dir.join("postmaster.pid")).ok()?;
        let running = self
            .run("pg_ctl", &["-D", self.dir.to_str()?, "status"])
            .ok()?
            .status
            .success();
        if !running {
            return None;
        }
        pid.lines().nth(3)?.trim().parse().ok()
    }

    /// Initialises (once) and starts the cluster of `data_dir` (see [`cluster_dir`]).
    pub fn start(data_dir: &Path) -> Result<Cluster, String> {
        let data_dir = std::path::absolute(data_dir)
            .map_err(|e| format!("cannot resolve {}: {e}", data_dir.display()))?;
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let as_postgres = is_root();
        let dir = cluster_dir(&data_dir, as_postgres);
        let mut cluster = Cluster {
            bin: bin_dir()?,
            dir: dir.clone(),
            as_postgres,
            stopped: std::sync::atomic::AtomicBool::new(true),
            admin_url: String::new(),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let d = dir
            .to_str()
            .ok_or("the data directory is not valid UTF-8")?
            .to_string();
        // The socket path must fit in sun_path (107 bytes).
        if d.len() + "/.s.PGSQL.5432".len() > 107 {
            return Err(format!(
                "the data directory {d} is too long for PostgreSQL's socket; pass a shorter --data-dir"
            ));
        }
        if cluster.as_postgres {
            let _ = Command::new("chown")
                .args(["-R", "postgres:postgres", &d])
                .status();
        }
        let _ = Command::new("chmod").args(["700", &d]).status();
        if !dir.join("PG_VERSION").exists() {
            let out = cluster.run(
                "initdb",
                &[
                    "-D",
                    &d,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
            )?;
            if !out.status.success() {
                return Err(format!(
                    "initdb {d} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        let port = match cluster.port_of_running() {
            Some(p) => p,
            None => {
                let options = format!("-p {PORT} -c listen_addresses= -k {d}");
                let log = format!("{d}/server.log");
                let out = cluster.run(
                    "pg_ctl",
                    &["-D", &d, "-l", &log, "-o", &options, "-w", "start"],
                )?;
                if !out.status.success() {
                    return Err(format!(
                        "cannot start the private PostgreSQL in {d} (see {log}): {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                PORT
            }
        };
        cluster
            .stopped
            .store(false, std::sync::atomic::Ordering::SeqCst);
        cluster.admin_url = format!("postgres://postgres@localhost/postgres?host={d}&port={port}");
        Ok(cluster)
    }

    /// Stops the cluster (fast shutdown); once.
    pub fn stop(&self) {
        if self.stopped.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Some(d) = self.dir.to_str() {
            let _ = self.run("pg_ctl", &["-D", d, "-m", "fast", "-w", "stop"]);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
