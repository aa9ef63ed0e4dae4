//! Driving `h2load` and reading what it reports: the summary lines and the per-request log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::BenchError;

/// What each request is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Call<'a> {
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
pub(super) struct Load<'a> {
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
pub(super) struct Background {
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

/// The parts of h2load's summary the bench uses.
#[derive(Debug, PartialEq)]
pub(super) struct Summary {
    pub req_per_sec: f64,
    /// Requests sent; those not `done` were cut when `-D` ran out.
    pub started: u64,
    pub done: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub errored: u64,
    pub timeout: u64,
    pub status_2xx: u64,
    pub data_bytes: u64,
}

impl Summary {
    /// Parses lines such as
    /// `finished in 10.00s, 51234.50 req/s, 2.14MB/s`,
    /// `requests: 10 total, 10 started, 10 done, 10 succeeded, 0 failed, 0 errored, 0 timeout`,
    /// `status codes: 10 2xx, 0 3xx, 0 4xx, 0 5xx` and
    /// `traffic: 1KB (1000) total, 500B (500) headers (space savings 90%), 70B (70) data`.
    pub fn parse(output: &str) -> Result<Self, String> {
        let line = |prefix: &str| {
            output
                .lines()
                .map(str::trim)
                .find_map(|line| line.strip_prefix(prefix))
                .ok_or_else(|| format!("h2load printed no `{prefix}` line"))
        };
        let finished = line("finished in ")?;
        let req_per_sec = finished
            .split(", ")
            .find_map(|part| part.strip_suffix(" req/s"))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("no req/s in `finished in {finished}`"))?;
        let requests = line("requests: ")?;
        let status = line("status codes: ")?;
        let traffic = line("traffic: ")?;
        let data_bytes = traffic
            .rsplit(", ")
            .next()
            .and_then(|part| part.strip_suffix(" data"))
            .and_then(|part| part.split_once('(')?.1.split_once(')'))
            .and_then(|(n, _)| n.parse::<u64>().ok())
            .ok_or_else(|| format!("no data byte count in `traffic: {traffic}`"))?;
        Ok(Self {
            req_per_sec,
            started: counted(requests, "started")?,
            done: counted(requests, "done")?,
            succeeded: counted(requests, "succeeded")?,
            failed: counted(requests, "failed")?,
            errored: counted(requests, "errored")?,
            timeout: counted(requests, "timeout")?,
            status_2xx: counted(status, "2xx")?,
            data_bytes,
        })
    }

    /// Every request must have succeeded with HTTP 200; with `frame_bytes`, every response body
    /// must be exactly one frame of that size (an error answer is trailers-only, no body).
    pub fn check(&self, frame_bytes: Option<u64>) -> Result<(), String> {
        if self.succeeded == 0 {
            return Err("h2load completed no request".to_owned());
        }
        if self.failed + self.errored + self.timeout > 0 || self.succeeded != self.done {
            return Err(format!(
                "not every request succeeded: {} done, {} succeeded, {} failed, {} errored, {} timed out",
                self.done, self.succeeded, self.failed, self.errored, self.timeout
            ));
        }
        if self.status_2xx != self.succeeded {
            return Err(format!(
                "{} requests succeeded but only {} answered 2xx",
                self.succeeded, self.status_2xx
            ));
        }
        if let Some(frame_bytes) = frame_bytes {
            let expected = self.succeeded * frame_bytes;
            if self.data_bytes != expected {
                return Err(format!(
                    "response bodies total {} bytes, expected {expected} ({} × one {frame_bytes}-byte \
                     response frame): some calls did not answer OK (grpc-status ≠ 0?)",
                    self.data_bytes, self.succeeded
                ));
            }
        }
        Ok(())
    }
}

/// The number before `label` in `12 done, 3 failed`.
fn counted(line: &str, label: &str) -> Result<u64, String> {
    line.split(", ")
        .find_map(|part| {
            let (n, rest) = part.trim().split_once(' ')?;
            (rest == label).then(|| n.parse::<u64>().ok()).flatten()
        })
        .ok_or_else(|| format!("no `{label}` count in `{line}`"))
}

/// Reads h2load's `--log-file` (tab-separated: start time µs, HTTP status, duration µs) and
/// returns the durations, sorted. Every request must have HTTP status 200.
pub(super) fn read_request_log(path: &Path) -> Result<Vec<u64>, String> {
    let file = std::fs::File::open(path).map_err(|err| err.to_string())?;
    let mut latencies = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|err| err.to_string())?;
        let (status, micros) = parse_log_line(&line)
            .ok_or_else(|| format!("line {}: cannot parse `{line}`", number + 1))?;
        if status != 200 {
            return Err(format!(
                "line {}: HTTP status {status}, not 200: `{line}`",
                number + 1
            ));
        }
        latencies.push(micros);
    }
    if latencies.is_empty() {
        return Err("no request logged".to_owned());
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// `(status, duration µs)` of one log line.
fn parse_log_line(line: &str) -> Option<(u16, u64)> {
    let mut columns = line.split('\t');
    let _start = columns.next()?;
    let status = columns.next()?.trim().parse().ok()?;
    let micros = columns.next()?.trim().parse().ok()?;
    Some((status, micros))
}

/// The nearest-rank percentile `p` (0..=1) of sorted microsecond values, in milliseconds.
pub(super) fn percentile_ms(sorted_micros: &[u64], p: f64) -> f64 {
    if sorted_micros.is_empty() {
        return f64::NAN;
    }
    let n = sorted_micros.len();
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted_micros[rank - 1] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
finished in 10.00s, 51234.50 req/s, 2.14MB/s
requests: 512345 total, 512665 started, 512345 done, 512345 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 512345 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 3.81MB (3994470) total, 1.27MB (1334538) headers (space savings 95.47%), 3.42MB (3586415) data
";

    #[test]
    fn parses_h2load_summary() {
        let summary = Summary::parse(OUTPUT).unwrap();
        assert_eq!(
            summary,
            Summary {
                req_per_sec: 51234.50,
                started: 512665,
                done: 512345,
                succeeded: 512345,
                failed: 0,
                errored: 0,
                timeout: 0,
                status_2xx: 512345,
                data_bytes: 3586415,
            }
        );
        summary.check(Some(7)).unwrap();
        summary.check(None).unwrap();
    }

    #[test]
    fn a_missing_response_frame_fails_the_check() {
        let output = OUTPUT.replace("(3586415) data", "(3586408) data");
        assert!(Summary::parse(&output).unwrap().check(Some(7)).is_err());
    }

    #[test]
    fn a_failed_request_fails_the_check_without_a_frame_size() {
        let output = OUTPUT.replace("0 failed", "1 failed");
        assert!(Summary::parse(&output).unwrap().check(None).is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&sorted, 0.50), 50.0);
        assert_eq!(percentile_ms(&sorted, 0.99), 99.0);
        assert_eq!(percentile_ms(&[7000], 0.99), 7.0);
    }

    #[test]
    fn log_lines() {
        assert_eq!(
            parse_log_line("1700000000000000\t200\t1234"),
            Some((200, 1234))
        );
        assert_eq!(parse_log_line("garbage"), None);
    }
}
