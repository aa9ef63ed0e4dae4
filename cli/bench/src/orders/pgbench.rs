//! The PostgreSQL peer: pgbench's built-in tpcb-like script (five statements, one commit per
//! transaction) against a fresh database of the same server, with the orders run's clients.

use std::process::{Command, Output};

use crate::error::BenchError;

/// Scale of the pgbench tables: 10 branches, so 10 clients rarely wait on one branch row.
const SCALE: &str = "10";

/// Initializes pgbench's tables in `url`, runs tpcb-like for `secs` with `clients`; returns tps
/// (excluding connection set-up, as pgbench reports it).
pub async fn tpcb_like(url: &str, clients: u32, secs: u64) -> Result<f64, BenchError> {
    let mut command = Command::new("pgbench");
    command.args(["-i", "-q", "-s", SCALE, url]);
    let init = output(command).await.map_err(BenchError::io(
        "cannot run pgbench (apt-get install -y postgresql-client)",
    ))?;
    if !init.status.success() {
        return Err(BenchError::Failed(format!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        )));
    }
    let clients = clients.to_string();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .to_string();
    let mut command = Command::new("pgbench");
    command
        .args(["-n", "-b", "tpcb-like", "-c", &clients, "-j", &threads])
        .args(["-T", &secs.to_string(), url]);
    let run = output(command)
        .await
        .map_err(BenchError::io("cannot run pgbench"))?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    if !run.status.success() {
        return Err(BenchError::Failed(format!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&run.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        )));
    }
    parse_tps(&stdout)
        .ok_or_else(|| BenchError::Failed(format!("no tps in pgbench's output:\n{stdout}")))
}

/// Runs `command` to completion off the async threads (the services share this runtime).
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
