//! The parent's handle on a server child (`[taskset -c CPU] ironmesh-bench --serve ROLE …`):
//! start it and wait for its READY line, read the addresses it announced and the CPU time it
//! used, stop it. The child's side is [`crate::serve`].

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::BenchError;
use crate::serve::{MESH_STOP_WAIT, READY_PREFIX};

/// A server child: asked to stop by closing its stdin when dropped, killed if it has not exited
/// within its stop wait, always reaped.
pub struct ServerChild {
    child: Child,
    /// The words after `READY` on its first line.
    ready: Vec<String>,
    stop_wait: Duration,
    /// Where its stderr (the server log) goes.
    log: PathBuf,
}

impl ServerChild {
    /// Starts `--serve ROLE` with `role_args`, its stderr (the server log) going to
    /// `<workdir>/ROLE-server.log`, and waits for its READY line.
    pub fn start(
        cpu: Option<usize>,
        role: &str,
        role_args: &[&OsStr],
        workdir: &Path,
        stop_wait: Duration,
    ) -> Result<Self, BenchError> {
        Self::start_with_env(cpu, role, role_args, &[], workdir, stop_wait)
    }

    /// [`Self::start`] with `env` set for the child (e.g. to export traces; by default the
    /// child runs with no trace exporter).
    pub fn start_with_env(
        cpu: Option<usize>,
        role: &str,
        role_args: &[&OsStr],
        env: &[(&str, String)],
        workdir: &Path,
        stop_wait: Duration,
    ) -> Result<Self, BenchError> {
        let log = workdir.join(format!("{role}-server.log"));
        let log_file = std::fs::File::create(&log)
            .map_err(BenchError::io(format!("cannot create {}", log.display())))?;
        let exe = std::env::current_exe()
            .map_err(BenchError::io("cannot find the ironmesh executable"))?;
        let mut command = match cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args(["--serve", role])
            .args(role_args)
            // Measure the stack as configured by default, not with a trace exporter attached.
            .env_remove(ironmesh_runtime::telemetry::OTLP_ENDPOINT_ENV)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(BenchError::io("cannot start the server process"))?;
        let stdout = child.stdout.take();
        // From here on, dropping `guard` stops the child.
        let mut guard = Self {
            child,
            ready: Vec::new(),
            stop_wait,
            log,
        };
        let mut line = String::new();
        if let Some(stdout) = stdout {
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(BenchError::io("cannot read from the server process"))?;
        }
        match parse_ready(&line) {
            Some(words) => guard.ready = words,
            None => {
                let log = guard.log.clone();
                drop(guard);
                return Err(BenchError::Failed(format!(
                    "the server process did not start (it said {:?}); its log:\n{}",
                    line.trim(),
                    std::fs::read_to_string(log).unwrap_or_default()
                )));
            }
        }
        Ok(guard)
    }

    /// Starts a mesh child (`--serve ROLE --serve-dir DIR`, [`crate::serve::serve_mesh`]) on
    /// `data_dir` (see [`mesh_data_dir`]).
    pub fn start_mesh(
        cpu: Option<usize>,
        role: &str,
        data_dir: &Path,
        workdir: &Path,
    ) -> Result<Self, BenchError> {
        let args = [OsStr::new("--serve-dir"), data_dir.as_os_str()];
        Self::start(cpu, role, &args, workdir, MESH_STOP_WAIT)
    }

    /// The first `N` READY words as socket addresses.
    pub fn ready_addrs<const N: usize>(&self) -> Result<[SocketAddr; N], BenchError> {
        let bad = || {
            BenchError::Failed(format!(
                "the server process announced {:?}, not {N} addresses",
                self.ready
            ))
        };
        let mut out = [SocketAddr::from(([127, 0, 0, 1], 0)); N];
        for (slot, word) in out.iter_mut().zip(&self.ready) {
            *slot = word.parse().map_err(|_| bad())?;
        }
        if self.ready.len() < N {
            return Err(bad());
        }
        Ok(out)
    }

    /// Runs `load` (an h2load run), returning what it returned and the server CPU time it took.
    pub fn cpu_during<T>(
        &self,
        load: impl FnOnce() -> Result<T, BenchError>,
    ) -> Result<(T, CpuTime), BenchError> {
        cpu_during(self.child.id(), load)
    }

    /// The server process's resident memory now (`VmRSS`, KiB), from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// Stops the child (as dropping it does); returns what it logged, read once it is gone.
    pub fn stop(self) -> String {
        let log = self.log.clone();
        drop(self);
        std::fs::read_to_string(log).unwrap_or_default()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        // Closing stdin asks it to stop (and drain); kill makes sure.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + self.stop_wait;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `load`, returning what it returned and the CPU time process `pid` used meanwhile (sum
/// over its threads, from /proc): a server child's, or another server's the bench started (the
/// gateway suite's grpc-gateway peer).
pub fn cpu_during<T>(
    pid: u32,
    load: impl FnOnce() -> Result<T, BenchError>,
) -> Result<(T, CpuTime), BenchError> {
    let cpu_time = || crate::cpu::threads(&pid.to_string()).map(|threads| threads.total());
    let before = cpu_time();
    let output = load()?;
    let after = cpu_time();
    let secs = before
        .zip(after)
        .map(|(before, after)| after.saturating_sub(before).as_secs_f64());
    Ok((output, CpuTime(secs)))
}

/// The server CPU time of one measured run, in seconds; None if /proc could not tell.
#[derive(Clone, Copy, Debug)]
pub struct CpuTime(Option<f64>);

impl CpuTime {
    /// Per call, in `unit`s of a second (1e3: ms, 1e6: µs); None without calls.
    pub fn per_call(self, calls: u64, unit: f64) -> Option<f64> {
        self.0
            .filter(|_| calls > 0)
            .map(|cpu| cpu * unit / calls as f64)
    }

    /// In % of one core over the `secs` of the run.
    pub fn percent(self, secs: u64) -> Option<f64> {
        self.0.map(|cpu| 100.0 * cpu / secs as f64)
    }
}

/// A mesh child's data directory, `<workdir>/ROLE-data`, created.
pub fn mesh_data_dir(workdir: &Path, role: &str) -> Result<PathBuf, BenchError> {
    let dir = workdir.join(format!("{role}-data"));
    std::fs::create_dir_all(&dir)
        .map_err(BenchError::io(format!("cannot create {}", dir.display())))?;
    Ok(dir)
}

/// `READY <word>…` → the words.
fn parse_ready(line: &str) -> Option<Vec<String>> {
    let mut words = line.split_whitespace();
    if words.next()? != READY_PREFIX {
        return None;
    }
    let rest: Vec<String> = words.map(str::to_owned).collect();
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines() {
        assert_eq!(
            parse_ready("READY 127.0.0.1:1 127.0.0.1:2\n"),
            Some(vec!["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()])
        );
        assert_eq!(parse_ready("READY\n"), None);
        assert_eq!(parse_ready("oops"), None);
    }
}
