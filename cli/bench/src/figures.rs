//! What one h2load run measured: its figures ([`Run`], read from h2load's summary and
//! per-request log after checking every request succeeded) and, for the suites that report it,
//! the server CPU it took ([`Measured`]).

use std::path::Path;

use serde_json::{Map, Value};

use crate::child::CpuTime;
use crate::error::BenchError;
use crate::h2load::{self, Summary};
use crate::report::{num, opt_num};

/// One h2load run's figures.
#[derive(Debug)]
pub struct Run {
    pub req_per_sec: f64,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// h2load's summary and per-request log → the run's figures; every request must have
/// succeeded with HTTP 200 (with `frame_bytes`, with exactly one response frame of that size:
/// [`Summary::check`]).
pub fn read_run(
    output: &str,
    log: &Path,
    name: &str,
    frame_bytes: Option<u64>,
) -> Result<Run, BenchError> {
    let fail = failed_run(name, output);
    let summary = Summary::parse(output).map_err(fail)?;
    summary.check(frame_bytes).map_err(fail)?;
    let latencies = h2load::read_request_log(log).map_err(|why| {
        BenchError::Failed(format!("{name}: h2load log {}: {why}", log.display()))
    })?;
    Ok(Run {
        req_per_sec: summary.req_per_sec,
        requests: summary.succeeded,
        p50_ms: h2load::percentile_ms(&latencies, 0.50),
        p99_ms: h2load::percentile_ms(&latencies, 0.99),
    })
}

/// A run named `name` failed for a reason: the reason, then h2load's `output`.
pub fn failed_run<'a>(name: &'a str, output: &'a str) -> impl Fn(String) -> BenchError + Copy + 'a {
    move |why| BenchError::Failed(format!("{name}: {why}\n--- h2load output ---\n{output}"))
}

impl Run {
    pub fn json(&self) -> Value {
        Value::Object(self.fields())
    }

    fn fields(&self) -> Map<String, Value> {
        [
            ("req_per_sec", num(self.req_per_sec)),
            ("requests", self.requests.into()),
            ("p50_ms", num(self.p50_ms)),
            ("p99_ms", num(self.p99_ms)),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    }
}

/// One run and what the server process spent on it (the stack and gateway suites).
#[derive(Debug)]
pub struct Measured {
    pub run: Run,
    /// Server-process CPU time per request, in µs, if /proc could tell.
    pub cpu_us_per_call: Option<f64>,
    /// Server-process CPU use over the run, in % of one core.
    pub cpu_percent: Option<f64>,
}

impl Measured {
    /// `run`, which took the server `cpu` over its `secs` seconds of load.
    pub fn new(run: Run, cpu: CpuTime, secs: u64) -> Self {
        Self {
            cpu_us_per_call: cpu.per_call(run.requests, 1e6),
            // Over the measured run only (h2load's start-up adds a few ms: an estimate, not exact).
            cpu_percent: cpu.percent(secs),
            run,
        }
    }

    /// `labels` (what was measured), then the figures, as one JSON object.
    pub fn json(&self, labels: &[(&str, Value)]) -> Value {
        let mut out: Map<String, Value> = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect();
        out.extend(self.run.fields());
        out.insert("cpu_us_per_call".to_owned(), opt_num(self.cpu_us_per_call));
        out.insert("server_cpu_percent".to_owned(), opt_num(self.cpu_percent));
        Value::Object(out)
    }
}
