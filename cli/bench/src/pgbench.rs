//! The PostgreSQL peer of the orders and provisioning suites: pgbench, found on PATH or in
//! PostgreSQL's own `bin` directories, its tables initialized in a fresh database of the
//! server under test, then one built-in script run for a while → transactions per second.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::error::BenchError;

/// Where the Debian/Ubuntu packages put each major version's programs.
const POSTGRESQL_LIB: &str = "/usr/lib/postgresql";

/// A pgbench executable.
#[derive(Debug, Clone)]
pub struct Pgbench {
    program: PathBuf,
}

/// One timed run of a built-in script.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    /// `tpcb-like`, `simple-update` (`-N`) or `select-only` (`-S`).
    pub builtin: &'static str,
    pub clients: u32,
    pub threads: u32,
    pub secs: u64,
}

impl Pgbench {
    /// pgbench on PATH, else the newest `/usr/lib/postgresql/<major>/bin/pgbench`; None when
    /// neither exists.
    pub fn find() -> Option<Self> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(program) = std::env::split_paths(&path)
            .map(|dir| dir.join("pgbench"))
            .find(|p| p.is_file())
        {
            return Some(Self { program });
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(POSTGRESQL_LIB)
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let major = entry.file_name().to_str()?.parse().ok()?;
                let program = entry.path().join("bin/pgbench");
                program.is_file().then_some((major, program))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, program)| Self { program })
    }

    /// Initializes pgbench's tables at `scale` in `url` (an empty database), then runs
    /// `script`; its tps (excluding connection set-up, as pgbench reports it).
    pub async fn tps(&self, url: &str, scale: u32, script: Script) -> Result<f64, BenchError> {
        let mut command = Command::new(&self.program);
        command.args(["-i", "-q", "-s", &scale.to_string(), url]);
        let init = output(command)
            .await
            .map_err(BenchError::io("cannot run pgbench"))?;
        if !init.status.success() {
            return Err(BenchError::Failed(format!(
                "pgbench -i failed: {}",
                last_line(&init.stderr)
            )));
        }
        let mut command = Command::new(&self.program);
        command
            .args(["-n", "-b", script.builtin])
            .args(["-c", &script.clients.to_string()])
            .args(["-j", &script.threads.to_string()])
            .args(["-T", &script.secs.to_string(), url]);
        let run = output(command)
            .await
            .map_err(BenchError::io("cannot run pgbench"))?;
        let stdout = String::from_utf8_lossy(&run.stdout);
        if !run.status.success() {
            return Err(BenchError::Failed(format!(
                "pgbench -b {} failed: {}",
                script.builtin,
                last_line(&run.stderr)
            )));
        }
        parse_tps(&stdout)
            .ok_or_else(|| BenchError::Failed(format!("no tps in pgbench's output:\n{stdout}")))
    }
}

fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `command` to completion off the async threads (the services share the runtime).
async fn output(mut command: Command) -> std::io::Result<Output> {
    tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(std::io::Error::other)?
}

/// `tps = 1234.567 (without initial connection time)` → 1234.567.
fn parse_tps(output: &str) -> Option<f64> {
    output.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("tps = ")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_pgbench_tps() {
        let out = "latency average = 3.2 ms\ntps = 3114.428 (without initial connection time)\n";
        assert_eq!(super::parse_tps(out), Some(3114.428));
        assert_eq!(super::parse_tps("nothing"), None);
    }
}
