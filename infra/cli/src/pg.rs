//! A private PostgreSQL cluster for `tds up` when no `DATABASE_URL` is given: initialised once under
//! the data directory with the machine's PostgreSQL binaries (trust authentication, listening on
//! 127.0.0.1 only, on a free port), started, reused on the next start (a cluster left running by a
//! killed stack included), and stopped when the stack stops. As root, the cluster runs as the
//! `postgres` user (PostgreSQL refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running private cluster.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub admin_url: String,
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

    /// Initialises (once) and starts the cluster under `data_dir/pg`.
    pub fn start(data_dir: &Path) -> Result<Cluster, String> {
        let dir = data_dir.join("pg");
        let mut cluster = Cluster {
            bin: bin_dir()?,
            dir: dir.clone(),
            as_postgres: is_root(),
            admin_url: String::new(),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let d = dir
            .to_str()
            .ok_or("the data directory is not valid UTF-8")?
            .to_string();
        if cluster.as_postgres {
            let _ = Command::new("chown")
                .args(["-R", "postgres:postgres", &d])
                .status();
            let _ = Command::new("chmod").args(["700", &d]).status();
        }
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
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .map_err(|e| format!("no free port for PostgreSQL: {e}"))?;
                let options = format!("-p {port} -c listen_addresses=127.0.0.1 -k {d}");
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
                port
            }
        };
        cluster.admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        Ok(cluster)
    }

    /// Stops the cluster (fast shutdown).
    pub fn stop(&self) {
        if let Some(d) = self.dir.to_str() {
            let _ = self.run("pg_ctl", &["-D", d, "-m", "fast", "-w", "stop"]);
        }
    }
}
