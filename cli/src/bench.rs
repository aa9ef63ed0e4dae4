//! `ironmesh bench`: what the shared server stack costs per call, as a ratio measured in one run.
//!
//! # What is measured
//! One trivial RPC, `grpc.health.v1.Health/Check` (tonic-health, `""` set to SERVING), is served
//! twice by one server process:
//! - **bare**: `tonic::transport::Server::builder()` with nothing added;
//! - **stack**: [`ironmesh_runtime::server::grpc_server`] — exactly the builder production
//!   servers use (message limit, then the whole interceptor stack of DESIGN.md §4) — built from
//!   `Config::default()`. The authentication layer is not in the stack yet, so it is not measured.
//!
//! Both get the same listener setup as production (`TCP_NODELAY`), and the server process runs
//! the production logging subscriber, so the stack's per-call spans are live, not no-ops. OTLP
//! export is switched off for it.
//!
//! `h2load` drives each server in turn with the same parameters (`-D` seconds after a warm-up,
//! `-c` connections × `-m` streams). The difference between the two runs is the price of the
//! stack (plus `grpc_server`'s keepalive settings, which cost nothing at this load).
//!
//! # Why a ratio
//! The machine is small and shared: absolute req/s move with whatever else runs. Both servers are
//! measured back to back in one run, on the same cores, so the ratio stack ÷ bare mostly cancels
//! that noise. Targets: req/s ratio ≥ 0.90 and p99 ≤ 1.25 × bare. The server CPU time per call is
//! reported too: it is the least noisy figure of all.
//!
//! # Pinning
//! `ironmesh bench` starts the servers in a child process (`ironmesh bench --serve`) under
//! `taskset -c <server-cpu>`, on a tokio runtime with one worker thread, so the whole server —
//! worker, accept loop, every thread — is on one core. `h2load` (one thread) runs under
//! `taskset -c <load-cpu>`. The parent only starts them, makes the health calls and parses.
//!
//! # Correctness checks (a failed check exits 1)
//! `h2load` does not read `grpc-status`, so before each run a tonic `HealthClient` call must
//! answer OK and SERVING; after it, every request in h2load's per-request log must have HTTP
//! status 200, h2load must report no failed or errored request, the response bodies must add up
//! to exactly one 7-byte `HealthCheckResponse{SERVING}` frame per request (an error answer is
//! trailers-only and carries no body), and a last tonic call must again end with `grpc-status: 0`.
//!
//! It is a benchmark, not a test: `make bench` runs it, `make test` never does.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use ironmesh_runtime::Config;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;

/// The RPC both servers answer.
const RPC_PATH: &str = "/grpc.health.v1.Health/Check";
/// An empty `HealthCheckRequest` as one gRPC frame: uncompressed, length 0.
const REQUEST_FRAME: [u8; 5] = [0; 5];
/// The size of one `HealthCheckResponse{status: SERVING}` frame: 5-byte prefix + `08 01`.
const RESPONSE_FRAME_BYTES: u64 = 7;
/// Targets from the issue.
const TARGET_RPS_RATIO: f64 = 0.90;
const TARGET_P99_RATIO: f64 = 1.25;
/// The first line the server child prints once both servers listen.
const READY_PREFIX: &str = "READY";
/// How long a single health call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of `ironmesh bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Seconds of measured load per server.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// HTTP/2 connections h2load opens (`-c`).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,
    /// Concurrent streams per connection (`-m`).
    #[arg(long, value_name = "M", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    streams: u32,
    /// Seconds of unmeasured load before each measurement (0: none).
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    warmup: u64,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// The CPU the server process is pinned to.
    #[arg(long, value_name = "CPU", default_value_t = 0)]
    server_cpu: usize,
    /// The CPU h2load is pinned to.
    #[arg(long, value_name = "CPU", default_value_t = 1)]
    load_cpu: usize,
    /// Internal: be the server process (started by `ironmesh bench` itself).
    #[arg(long, hide = true)]
    serve: bool,
}

/// Why the bench could not produce a trustworthy result.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("`{tool}` is not on PATH; install it with `apt-get install -y {package}`")]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

impl BenchError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            Self::MissingTool { .. } | Self::Usage(_) => ExitCode::from(2),
            Self::Io { .. } | Self::Failed(_) => ExitCode::from(1),
        }
    }
}

/// Entry point of `ironmesh bench`.
pub fn run(args: &BenchArgs) -> ExitCode {
    if args.serve {
        return serve_child();
    }
    match measure(args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            report.note_server_log();
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("ironmesh bench: FAILED: {err}");
            err.exit_code()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The measuring parent.

/// Which of the two servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Bare,
    Stack,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Stack => "stack",
        }
    }
}

/// The figures of one server's run.
#[derive(Debug)]
struct Measurement {
    target: Target,
    addr: SocketAddr,
    req_per_sec: f64,
    requests: u64,
    p50_ms: f64,
    p99_ms: f64,
    /// Server CPU time per request, if /proc could tell.
    cpu_us_per_call: Option<f64>,
    /// Server CPU use over the run, in % of one core.
    cpu_percent: Option<f64>,
}

#[derive(Debug)]
struct Report {
    args: BenchArgs,
    bare: Measurement,
    stack: Measurement,
    /// What the server process wrote to stderr (its log), kept out of the report.
    server_log: String,
}

fn measure(args: &BenchArgs) -> Result<Report, BenchError> {
    require_tool("h2load", "nghttp2-client")?;
    require_tool("taskset", "util-linux")?;
    if args.server_cpu == args.load_cpu {
        return Err(BenchError::Usage(format!(
            "--server-cpu and --load-cpu must differ (both are {})",
            args.server_cpu
        )));
    }

    let workdir = WorkDir::create()?;
    let body = workdir.path().join("request.bin");
    std::fs::write(&body, REQUEST_FRAME).map_err(BenchError::io(format!(
        "cannot write the request body {}",
        body.display()
    )))?;

    let server_log = workdir.path().join("server.log");
    let server = ServerChild::start(args.server_cpu, &server_log)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("cannot start the async runtime"))?;

    let bare = measure_one(
        args,
        &runtime,
        &server,
        Target::Bare,
        server.bare,
        &body,
        workdir.path(),
    )?;
    let stack = measure_one(
        args,
        &runtime,
        &server,
        Target::Stack,
        server.stack,
        &body,
        workdir.path(),
    )?;
    drop(server);
    Ok(Report {
        args: args.clone(),
        bare,
        stack,
        server_log: std::fs::read_to_string(&server_log).unwrap_or_default(),
    })
}

/// Checks, loads, checks again.
fn measure_one(
    args: &BenchArgs,
    runtime: &tokio::runtime::Runtime,
    server: &ServerChild,
    target: Target,
    addr: SocketAddr,
    body: &Path,
    workdir: &Path,
) -> Result<Measurement, BenchError> {
    let name = target.name();
    runtime
        .block_on(check_serving(addr))
        .map_err(|why| BenchError::Failed(format!("{name} ({addr}) before the run: {why}")))?;
    if !args.json {
        eprintln!(
            "ironmesh bench: loading {name} on {addr} ({} s warm-up + {} s)…",
            args.warmup, args.duration
        );
    }

    warm_up(args, addr, body)?;
    let log = workdir.join(format!("{name}.log"));
    let cpu_before = server.cpu_time();
    let run = run_h2load(args, addr, body, args.duration, Some(&log))?;
    let cpu_after = server.cpu_time();

    let summary = H2loadSummary::parse(&run).map_err(|why| {
        BenchError::Failed(format!("{name}: {why}\n--- h2load output ---\n{run}"))
    })?;
    summary.check().map_err(|why| {
        BenchError::Failed(format!("{name}: {why}\n--- h2load output ---\n{run}"))
    })?;
    let latencies = read_request_log(&log).map_err(|why| {
        BenchError::Failed(format!("{name}: h2load log {}: {why}", log.display()))
    })?;
    runtime
        .block_on(check_serving(addr))
        .map_err(|why| BenchError::Failed(format!("{name} ({addr}) after the run: {why}")))?;

    let cpu = cpu_before
        .zip(cpu_after)
        .map(|(before, after)| after.saturating_sub(before));
    Ok(Measurement {
        target,
        addr,
        req_per_sec: summary.req_per_sec,
        requests: summary.succeeded,
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        cpu_us_per_call: cpu
            .filter(|_| summary.succeeded > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / summary.succeeded as f64),
        // Over the measured run only (h2load's start-up adds a few ms: an estimate, not exact).
        cpu_percent: cpu.map(|cpu| 100.0 * cpu.as_secs_f64() / args.duration as f64),
    })
}

/// Fails with install instructions unless `tool` is an executable file on PATH.
fn require_tool(tool: &'static str, package: &'static str) -> Result<(), BenchError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()) {
        Ok(())
    } else {
        Err(BenchError::MissingTool { tool, package })
    }
}

/// One real gRPC call: the answer must be OK (`grpc-status: 0`) and SERVING.
async fn check_serving(addr: SocketAddr) -> Result<(), String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|err| format!("bad address: {err}"))?
        .timeout(CALL_TIMEOUT)
        .connect_timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(|err| format!("cannot connect: {err}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| {
            format!(
                "Health/Check ended with grpc-status {} ({:?}): {}",
                status.code() as i32,
                status.code(),
                status.message()
            )
        })?;
    let status = response.into_inner().status();
    if status == WireStatus::Serving {
        Ok(())
    } else {
        Err(format!(
            "Health/Check answered OK but status {}, not SERVING",
            status.as_str_name()
        ))
    }
}

/// Warms `addr` up with `--warmup` seconds of the same load, unmeasured (0: no warm-up).
///
/// A separate h2load run rather than `--warm-up-time`: h2load counts the warm-up's response
/// bytes in its `data` total but not its requests, which would break the exact body check.
fn warm_up(args: &BenchArgs, addr: SocketAddr, body: &Path) -> Result<(), BenchError> {
    if args.warmup == 0 {
        return Ok(());
    }
    run_h2load(args, addr, body, args.warmup, None).map(drop)
}

/// Runs h2load pinned to `--load-cpu` for `secs` seconds, logging every request to `log` if
/// given; returns its standard output.
fn run_h2load(
    args: &BenchArgs,
    addr: SocketAddr,
    body: &Path,
    secs: u64,
    log: Option<&Path>,
) -> Result<String, BenchError> {
    let mut command = Command::new("taskset");
    command
        .arg("-c")
        .arg(args.load_cpu.to_string())
        .arg("h2load")
        .args(["-t", "1"])
        .arg("-c")
        .arg(args.clients.to_string())
        .arg("-m")
        .arg(args.streams.to_string())
        .arg("-D")
        .arg(secs.to_string())
        .arg("-d")
        .arg(body)
        .args(["-H", "content-type: application/grpc"])
        .args(["-H", "te: trailers"]);
    if let Some(log) = log {
        // h2load appends to an existing log; start from an empty one.
        if log.exists() {
            std::fs::remove_file(log)
                .map_err(BenchError::io(format!("cannot remove {}", log.display())))?;
        }
        command.arg("--log-file").arg(log);
    }
    let output = command
        .arg(format!("http://{addr}{RPC_PATH}"))
        .stdin(Stdio::null())
        .output()
        .map_err(BenchError::io("cannot run `taskset … h2load`"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(BenchError::Failed(format!(
            "h2load against {addr} exited with {}\n--- stdout ---\n{stdout}--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(stdout)
}

/// The parts of h2load's summary the bench uses.
#[derive(Debug, PartialEq)]
struct H2loadSummary {
    req_per_sec: f64,
    done: u64,
    succeeded: u64,
    failed: u64,
    errored: u64,
    timeout: u64,
    status_2xx: u64,
    data_bytes: u64,
}

impl H2loadSummary {
    /// Parses lines such as
    /// `finished in 10.00s, 51234.50 req/s, 2.14MB/s`,
    /// `requests: 10 total, 10 started, 10 done, 10 succeeded, 0 failed, 0 errored, 0 timeout`,
    /// `status codes: 10 2xx, 0 3xx, 0 4xx, 0 5xx` and
    /// `traffic: 1KB (1000) total, 500B (500) headers (space savings 90%), 70B (70) data`.
    fn parse(output: &str) -> Result<Self, String> {
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
            done: counted(requests, "done")?,
            succeeded: counted(requests, "succeeded")?,
            failed: counted(requests, "failed")?,
            errored: counted(requests, "errored")?,
            timeout: counted(requests, "timeout")?,
            status_2xx: counted(status, "2xx")?,
            data_bytes,
        })
    }

    /// Every request must have succeeded with HTTP 200 and one SERVING response frame.
    fn check(&self) -> Result<(), String> {
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
        let expected = self.succeeded * RESPONSE_FRAME_BYTES;
        if self.data_bytes != expected {
            return Err(format!(
                "response bodies total {} bytes, expected {expected} ({} × one {RESPONSE_FRAME_BYTES}-byte \
                 HealthCheckResponse frame): some calls did not answer SERVING (grpc-status ≠ 0?)",
                self.data_bytes, self.succeeded
            ));
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
fn read_request_log(path: &Path) -> Result<Vec<u64>, String> {
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
fn percentile_ms(sorted_micros: &[u64], p: f64) -> f64 {
    if sorted_micros.is_empty() {
        return f64::NAN;
    }
    let n = sorted_micros.len();
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted_micros[rank - 1] as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------------
// Output.

impl Report {
    fn rps_ratio(&self) -> f64 {
        self.stack.req_per_sec / self.bare.req_per_sec
    }

    fn p99_ratio(&self) -> f64 {
        self.stack.p99_ms / self.bare.p99_ms
    }

    fn cpu_ratio(&self) -> Option<f64> {
        Some(self.stack.cpu_us_per_call? / self.bare.cpu_us_per_call?)
    }

    /// The server's log is not part of the result, but lines in it deserve a look: says so on
    /// stderr with the first few.
    fn note_server_log(&self) {
        let lines: Vec<&str> = self.server_log.lines().collect();
        if lines.is_empty() {
            return;
        }
        eprintln!(
            "ironmesh bench: note: the server process logged {} line(s); the first:",
            lines.len()
        );
        for line in lines.iter().take(3) {
            eprintln!("  {line}");
        }
    }

    fn table(&self) -> String {
        let a = &self.args;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ironmesh bench: {RPC_PATH} · h2load -c {} -m {} · {} s measured after {} s warm-up",
            a.clients, a.streams, a.duration, a.warmup
        );
        let _ = writeln!(
            out,
            "server: 1 tokio worker, process pinned to CPU {}; h2load: 1 thread pinned to CPU {}",
            a.server_cpu, a.load_cpu
        );
        let _ = writeln!(
            out,
            "stack: ironmesh_runtime::server::grpc_server(Config::default()) (no auth layer yet)\n"
        );
        let _ = writeln!(
            out,
            "{:<6} {:>11} {:>9} {:>9} {:>10} {:>11} {:>11}",
            "SERVER", "REQ/S", "P50 MS", "P99 MS", "REQUESTS", "CPU µs/CALL", "SERVER CPU"
        );
        for m in [&self.bare, &self.stack] {
            let _ = writeln!(
                out,
                "{:<6} {:>11.1} {:>9.3} {:>9.3} {:>10} {:>11} {:>11}",
                m.target.name(),
                m.req_per_sec,
                m.p50_ms,
                m.p99_ms,
                m.requests,
                m.cpu_us_per_call
                    .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}")),
                m.cpu_percent
                    .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}%")),
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "ratio stack/bare req/s = {:.2} (target ≥ {TARGET_RPS_RATIO:.2}) {}",
            self.rps_ratio(),
            verdict(self.rps_ratio() >= TARGET_RPS_RATIO)
        );
        let _ = writeln!(
            out,
            "p99 stack/bare         = {:.2} (target ≤ {TARGET_P99_RATIO:.2}) {}",
            self.p99_ratio(),
            verdict(self.p99_ratio() <= TARGET_P99_RATIO)
        );
        if let Some(cpu) = self.cpu_ratio() {
            let _ = writeln!(
                out,
                "server CPU per call stack/bare = {cpu:.2} (no target; the least noisy figure)"
            );
        }
        let _ = writeln!(
            out,
            "checks: Health/Check OK+SERVING before and after each run; every request HTTP 200 with one SERVING frame"
        );
        out
    }

    fn json(&self) -> String {
        let a = &self.args;
        format!(
            concat!(
                "{{\"rpc\":\"{rpc}\",",
                "\"params\":{{\"duration_secs\":{duration},\"warmup_secs\":{warmup},",
                "\"clients\":{clients},\"streams\":{streams},\"server_cpu\":{server_cpu},",
                "\"load_cpu\":{load_cpu},\"server_worker_threads\":1}},",
                "\"bare\":{bare},\"stack\":{stack},",
                "\"ratio_rps\":{rps},\"target_ratio_rps\":{target_rps},\"ratio_rps_met\":{rps_met},",
                "\"ratio_p99\":{p99},\"target_ratio_p99\":{target_p99},\"ratio_p99_met\":{p99_met},",
                "\"ratio_cpu_per_call\":{cpu}}}"
            ),
            rpc = RPC_PATH,
            duration = a.duration,
            warmup = a.warmup,
            clients = a.clients,
            streams = a.streams,
            server_cpu = a.server_cpu,
            load_cpu = a.load_cpu,
            bare = self.bare.json(),
            stack = self.stack.json(),
            rps = json_number(self.rps_ratio()),
            target_rps = TARGET_RPS_RATIO,
            rps_met = self.rps_ratio() >= TARGET_RPS_RATIO,
            p99 = json_number(self.p99_ratio()),
            target_p99 = TARGET_P99_RATIO,
            p99_met = self.p99_ratio() <= TARGET_P99_RATIO,
            cpu = self
                .cpu_ratio()
                .map_or_else(|| "null".to_owned(), json_number),
        )
    }
}

impl Measurement {
    fn json(&self) -> String {
        format!(
            "{{\"addr\":\"{}\",\"req_per_sec\":{},\"requests\":{},\"p50_ms\":{},\"p99_ms\":{},\"cpu_us_per_call\":{},\"server_cpu_percent\":{}}}",
            self.addr,
            json_number(self.req_per_sec),
            self.requests,
            json_number(self.p50_ms),
            json_number(self.p99_ms),
            self.cpu_us_per_call
                .map_or_else(|| "null".to_owned(), json_number),
            self.cpu_percent
                .map_or_else(|| "null".to_owned(), json_number),
        )
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// A JSON number with four decimals (`null` for NaN/infinity, which JSON cannot carry).
fn json_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.4}")
    } else {
        "null".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Processes and files the parent owns.

/// The server child (`taskset -c CPU ironmesh bench --serve`): killed and reaped when dropped.
struct ServerChild {
    child: Child,
    bare: SocketAddr,
    stack: SocketAddr,
}

impl ServerChild {
    /// Starts the child with its stderr (the server log) going to `log`.
    fn start(cpu: usize, log: &Path) -> Result<Self, BenchError> {
        let log_file = std::fs::File::create(log)
            .map_err(BenchError::io(format!("cannot create {}", log.display())))?;
        let exe = std::env::current_exe()
            .map_err(BenchError::io("cannot find the ironmesh executable"))?;
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg(exe)
            .args(["bench", "--serve"])
            // Measure the stack as configured by default, not with a trace exporter attached.
            .env_remove(ironmesh_runtime::telemetry::OTLP_ENDPOINT_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(BenchError::io(
                "cannot start the server process under taskset",
            ))?;
        let stdout = child.stdout.take();
        // From here on, dropping `guard` stops the child.
        let mut guard = Self {
            child,
            bare: SocketAddr::from(([127, 0, 0, 1], 0)),
            stack: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut line = String::new();
        if let Some(stdout) = stdout {
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(BenchError::io("cannot read from the server process"))?;
        }
        let (bare, stack) = parse_ready(&line).ok_or_else(|| {
            let _ = guard.child.kill();
            let _ = guard.child.wait();
            BenchError::Failed(format!(
                "the server process did not start (it said {:?}); its log:\n{}",
                line.trim(),
                std::fs::read_to_string(log).unwrap_or_default()
            ))
        })?;
        guard.bare = bare;
        guard.stack = stack;
        Ok(guard)
    }

    /// CPU time the server process has used so far (sum over its threads), from /proc.
    fn cpu_time(&self) -> Option<Duration> {
        let tasks = format!("/proc/{}/task", self.child.id());
        let mut total_ns: u64 = 0;
        for entry in std::fs::read_dir(tasks).ok()? {
            let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
            total_ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(Duration::from_nanos(total_ns))
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        // Closing stdin asks it to stop; kill makes sure.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `READY <bare addr> <stack addr>`.
fn parse_ready(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut words = line.split_whitespace();
    if words.next()? != READY_PREFIX {
        return None;
    }
    let bare = words.next()?.parse().ok()?;
    let stack = words.next()?.parse().ok()?;
    Some((bare, stack))
}

/// A private scratch directory (request body, h2load logs), removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<Self, BenchError> {
        let path = std::env::temp_dir().join(format!("ironmesh-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(BenchError::io(format!("cannot create {}", path.display())))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// The server child.

/// `ironmesh bench --serve`: both servers on one single-worker runtime, until stdin closes.
fn serve_child() -> ExitCode {
    let config = Config::default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ironmesh bench --serve: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        // The production subscriber: the stack's spans are as live here as in a service.
        let _telemetry = ironmesh_runtime::telemetry::init(&config);
        let addrs = match start_servers(&config).await {
            Ok(addrs) => addrs,
            Err(err) => {
                eprintln!("ironmesh bench --serve: {err}");
                return ExitCode::from(1);
            }
        };
        let mut stdout = std::io::stdout();
        if writeln!(stdout, "{READY_PREFIX} {} {}", addrs.0, addrs.1)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return ExitCode::from(1);
        }
        stdin_closed().await;
        ExitCode::SUCCESS
    })
}

/// Binds two loopback listeners and serves Health/Check on them: bare, then through the stack.
async fn start_servers(config: &Config) -> Result<(SocketAddr, SocketAddr), String> {
    let (bare_listener, bare_addr) = bind_loopback().await?;
    let (stack_listener, stack_addr) = bind_loopback().await?;

    let bare = tonic::transport::Server::builder()
        .add_service(serving_health().await)
        .serve_with_incoming(incoming(bare_listener));
    let stack = ironmesh_runtime::server::grpc_server(
        config,
        "bench",
        ironmesh_runtime::policy().clone(),
        None,
    )
    .map_err(|err| format!("cannot build the server stack: {err}"))?
    .add_service(serving_health().await)
    .serve_with_incoming(incoming(stack_listener));

    tokio::spawn(async move {
        if let Err(err) = bare.await {
            eprintln!("ironmesh bench --serve: bare server failed: {err}");
        }
    });
    tokio::spawn(async move {
        if let Err(err) = stack.await {
            eprintln!("ironmesh bench --serve: stack server failed: {err}");
        }
    });
    Ok((bare_addr, stack_addr))
}

async fn bind_loopback() -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|err| format!("cannot listen on 127.0.0.1: {err}"))?;
    let addr = listener
        .local_addr()
        .map_err(|err| format!("cannot read the listening address: {err}"))?;
    Ok((listener, addr))
}

/// The listener as production wraps it (`serve()` sets TCP_NODELAY too).
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// A tonic-health service whose `""` (the whole server) is SERVING.
async fn serving_health()
-> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    service
}

/// Resolves when the parent closes our stdin (or dies): the signal to stop.
async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    let _ = rx.await;
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
        let summary = H2loadSummary::parse(OUTPUT).unwrap();
        assert_eq!(
            summary,
            H2loadSummary {
                req_per_sec: 51234.50,
                done: 512345,
                succeeded: 512345,
                failed: 0,
                errored: 0,
                timeout: 0,
                status_2xx: 512345,
                data_bytes: 3586415,
            }
        );
        summary.check().unwrap();
    }

    #[test]
    fn a_missing_response_frame_fails_the_check() {
        let output = OUTPUT.replace("(3586415) data", "(3586408) data");
        assert!(H2loadSummary::parse(&output).unwrap().check().is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&sorted, 0.50), 50.0);
        assert_eq!(percentile_ms(&sorted, 0.99), 99.0);
        assert_eq!(percentile_ms(&[7000], 0.99), 7.0);
    }

    #[test]
    fn log_lines_and_ready_line() {
        assert_eq!(
            parse_log_line("1700000000000000\t200\t1234"),
            Some((200, 1234))
        );
        assert_eq!(parse_log_line("garbage"), None);
        assert_eq!(
            parse_ready("READY 127.0.0.1:1 127.0.0.1:2\n"),
            Some((
                SocketAddr::from(([127, 0, 0, 1], 1)),
                SocketAddr::from(([127, 0, 0, 1], 2))
            ))
        );
        assert_eq!(parse_ready("oops"), None);
    }
}
