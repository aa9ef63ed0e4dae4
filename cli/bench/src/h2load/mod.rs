//! Driving `h2load`: one run to completion, in the background, or as the warm-up before a
//! measured run; and reading what it reports.
//!
//! # Layout
//! - `mod.rs` (this file): [`Load`], one h2load invocation, and [`Background`], one running.
//! - [`summary`]: [`Summary`], the totals h2load prints, and their check.
//! - [`request_log`]: the per-request log ([`read_request_log`]) and its percentiles.

mod request_log;
mod summary;

pub use request_log::{percentile_ms, read_request_log};
pub use summary::Summary;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::error::BenchError;

/// What each request is.
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    /// A gRPC call over HTTP/2 (h2c): POST of this file (one gRPC frame) with
    /// `content-type: application/grpc` and `te: trailers`.
    Grpc(&'a Path),
    /// A plain GET without a body, over HTTP/1.1 (`--h1`, one request at a time per
    /// connection: `-m` must be 1, h2load would pipeline otherwise) or HTTP/2 (h2c, prior
    /// knowledge).
    Get { h1: bool },
}

/// One h2load invocation (always one thread, `-t 1`).
#[derive(Debug, Clone)]
pub struct Load<'a> {
    /// `taskset -c CPU` around h2load, or unpinned.
    pub cpu: Option<usize>,
    /// `-c`: connections.
    pub clients: u32,
    /// `-m`: concurrent streams per connection (HTTP/1.1: pipelined requests).
    pub streams: u32,
    /// `--rps`: requests per second per connection (None: as fast as possible).
    pub rps: Option<u32>,
    /// `-D`: seconds of load.
    pub secs: u64,
    /// The request.
    pub call: Call<'a>,
    /// Extra request headers (`name: value`).
    pub headers: Vec<String>,
    /// The full URL: `http://addr/pkg.Service/Method`, or the REST path.
    pub url: String,
}

impl Load<'_> {
    /// The command, logging every request to `log` if given (an existing log is removed first:
    /// h2load appends).
    fn command(&self, log: Option<&Path>) -> Result<Command, BenchError> {
        let mut command = match self.cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg("h2load");
                command
            }
            None => Command::new("h2load"),
        };
        command
            .args(["-t", "1"])
            .arg("-c")
            .arg(self.clients.to_string())
            .arg("-m")
            .arg(self.streams.to_string())
            .arg("-D")
            .arg(self.secs.to_string());
        match self.call {
            Call::Grpc(body) => {
                command
                    .arg("-d")
                    .arg(body)
                    .args(["-H", "content-type: application/grpc"])
                    .args(["-H", "te: trailers"]);
            }
            Call::Get { h1: true } => {
                command.arg("--h1");
            }
            Call::Get { h1: false } => {}
        }
        if let Some(rps) = self.rps {
            command.arg(format!("--rps={rps}"));
        }
        for header in &self.headers {
            command.arg("-H").arg(header);
        }
        if let Some(log) = log {
            if log.exists() {
                std::fs::remove_file(log)
                    .map_err(BenchError::io(format!("cannot remove {}", log.display())))?;
            }
            command.arg("--log-file").arg(log);
        }
        command.arg(&self.url).stdin(Stdio::null());
        Ok(command)
    }

    fn program(&self) -> &'static str {
        if self.cpu.is_some() {
            "taskset … h2load"
        } else {
            "h2load"
        }
    }

    /// Runs to completion; returns h2load's standard output.
    pub fn run(&self, log: Option<&Path>) -> Result<String, BenchError> {
        let output = self
            .command(log)?
            .output()
            .map_err(BenchError::io(format!("cannot run `{}`", self.program())))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(BenchError::Failed(format!(
                "h2load {} exited with {}\n--- stdout ---\n{stdout}--- stderr ---\n{}",
                self.url,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(stdout)
    }

    /// The unmeasured warm-up before a measured run: this load for `secs` (nothing if 0).
    /// A separate h2load run rather than `--warm-up-time`: h2load counts the warm-up's response
    /// bytes in its `data` total but not its requests, which would break the exact body checks.
    /// Returns h2load's standard output, if it ran.
    pub fn warm_up(&self, secs: u64) -> Result<Option<String>, BenchError> {
        if secs == 0 {
            return Ok(None);
        }
        let mut warm = self.clone();
        warm.secs = secs;
        warm.run(None).map(Some)
    }

    /// Starts it in the background, its standard output going to `stdout`.
    pub fn spawn(&self, log: Option<&Path>, stdout: &Path) -> Result<Background, BenchError> {
        let file = std::fs::File::create(stdout).map_err(BenchError::io(format!(
            "cannot create {}",
            stdout.display()
        )))?;
        let child = self
            .command(log)?
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .map_err(BenchError::io(format!("cannot start `{}`", self.program())))?;
        Ok(Background {
            child,
            stdout: stdout.to_path_buf(),
            url: self.url.clone(),
        })
    }
}

/// An h2load running in the background: killed and reaped if dropped before [`Self::finish`].
pub struct Background {
    child: Child,
    stdout: std::path::PathBuf,
    url: String,
}

impl Background {
    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for it to end; returns its standard output.
    pub fn finish(mut self) -> Result<String, BenchError> {
        let status = self
            .child
            .wait()
            .map_err(BenchError::io("cannot wait for h2load"))?;
        let stdout = std::fs::read_to_string(&self.stdout).map_err(BenchError::io(format!(
            "cannot read {}",
            self.stdout.display()
        )))?;
        if !status.success() {
            return Err(BenchError::Failed(format!(
                "h2load {} exited with {status}\n--- stdout ---\n{stdout}",
                self.url
            )));
        }
        Ok(stdout)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
