//! `ironmesh-bench`: what the shared server stack, token verification, password hashing and the
//! REST gateway cost, as ratios measured in one run.
//!
//! # Suites (`--suite stack|auth|gateway|all`, default all: every suite)
//!
//! ## `stack`: the server stack, with and without token verification
//! One trivial RPC, `grpc.health.v1.Health/Check` (tonic-health, `""` set to SERVING), is served
//! three times by one server process:
//! - **bare**: `tonic::transport::Server::builder()` with nothing added;
//! - **stack**: [`ironmesh_runtime::server::grpc_server`] — exactly the builder production
//!   servers use (message limit, then the whole interceptor stack of DESIGN.md §4) — built from
//!   `Config::default()`, without an authenticator;
//! - **stack+auth**: the same builder with the production authenticator
//!   (`ironmesh_runtime::auth::credentials`) over a static JWKS holding an Ed25519 key the bench
//!   generates, and Health/Check made `Authenticated` in the policy table. h2load sends an access
//!   token minted as auth mints them (EdDSA, `typ` `at+jwt`, `kid`, iss/aud from
//!   `config.tokens`, exp = now + 900 s, role `customer`), so every call verifies a signature.
//!   Before the run, a call without a token and one with a forged token (same `kid`, other key)
//!   must be refused with UNAUTHENTICATED, and one with the token must succeed.
//!
//! All get the same listener setup as production (`TCP_NODELAY`), and the server process runs
//! the production logging subscriber, so the stack's per-call spans are live, not no-ops. OTLP
//! export is switched off for it. `h2load` drives each server in turn with the same parameters
//! (`-D` seconds after a warm-up, `-c` connections × `-m` streams). Targets (from the interceptor
//! issue, for both stack and stack+auth against bare): req/s ratio ≥ 0.90, p99 ≤ 1.25 × bare. The
//! server CPU time per call is reported too (the least noisy figure), and one verification timed
//! alone in the bench process.
//!
//! Pinning: the servers run in a child process (`ironmesh-bench --serve stack`) under
//! `taskset -c <server-cpu>`, on a tokio runtime with one worker thread, so the whole server is on
//! one core; `h2load` (one thread) runs under `taskset -c <load-cpu>`.
//!
//! ## `auth`: logins against the argon2 bound, a cheap RPC during a login flood
//! The real auth service runs in a child process (`ironmesh-bench --serve auth`) through
//! [`ironmesh_launcher::mesh`], on the production runtime, SQLite in a temp dir, every port 0 on
//! loopback, lockout thresholds raised so the flood is never locked out. It is **not pinned**:
//! the argon2 bound assumes hashing gets every core. h2load runs unpinned too (one thread each).
//! The bench registers one user and logs in once over gRPC for an access token.
//! - **argon2 bound**: N argon2id hashes at the production parameters (m = 19456 KiB, t = 2,
//!   p = 1, v0x13) one after another on one thread of the bench process, in one block of memory
//!   reused by every hash (argon2's own work, free of allocator and page-fault noise), while the
//!   server idles, right before and right after the Login run → mean seconds per hash; bound =
//!   available cores ÷ seconds per hash (logins/s). Target: measured logins/s ≥ 0.8 × bound. For
//!   diagnosis (no target) the same hashes are also timed the way the server computes them (on a
//!   worker thread, allocating 19 MiB per hash) and with one thread per core at once.
//! - **login throughput**: h2load `Login` (`-c 2×cores -m 1`) with the encoded `LoginRequest`.
//! - **GetMe p99 under a login flood**: h2load `GetMe` with the access token at a fixed rate
//!   (`--rps` per connection), idle, then while a second h2load floods `Login`. Target: flood p99
//!   ≤ 1.5 × idle p99. The p99 is h2load's (client scheduling included); the server's own p99
//!   from its handling-time histogram (a bucket bound) is shown beside it.
//!
//! ## `gateway`: the same RPC directly over gRPC and through the REST gateway
//! The whole mesh (every service and the gateway, [`ironmesh_launcher::mesh`], SQLite in a temp dir,
//! every port 0 on loopback) runs in a child process (`ironmesh-bench --serve gateway`) on the
//! production runtime under `taskset -c <server-cpu>` (so one tokio worker), with the gateway's
//! rate limiter on but at a limit the run never reaches. h2load (one thread) runs under
//! `taskset -c <load-cpu>`. The RPC is auth's public `GetJwks`: gRPC
//! `/ironmesh.auth.v1.AuthService/GetJwks` against auth's port (`-c` × `-m` like the stack
//! suite), then REST `GET /v1/auth/jwks` against the gateway with the same number of requests
//! in flight — HTTP/1.1 by default (`--gateway-rest h1`: `-c` × `-m` connections, one request
//! at a time each, no pipelining), or h2c with the gRPC run's `-c`/`-m` (`--gateway-rest h2c`).
//! Target (from the gateway issue): REST req/s ÷ direct req/s ≥ 0.60. Reported beside it: the
//! added p50 per request (REST − direct) under that load, where it includes queueing, and from a
//! second pair of runs with one request at a time (`-c 1 -m 1`), where it does not; and the
//! server CPU per request of each path (REST − direct: the gateway's share).
//!
//! # Correctness checks (a failed check exits 1)
//! `h2load` does not read `grpc-status`. So before and after each run one tonic call must answer
//! OK; after it every request in h2load's per-request log must have HTTP status 200 and h2load
//! must report no failed or errored request. Health/Check bodies must add up to exactly one
//! 7-byte SERVING frame per request (an error answer is trailers-only and carries no body). Auth
//! answers vary in size, so there the server's own `ironmesh_grpc_server_handled_total` counters
//! (its admin `/metrics`) are read around each run: at least as many OK as h2load counted
//! successes, and no other code except CANCELLED (requests cut when h2load's `-D` ends). The
//! gateway suite checks both ways: one tonic GetJwks (≥ 1 key) and one REST GET (200, the same
//! `keys`) before and after each run; every response must be exactly that answer (h2load's
//! data bytes = requests × the gRPC frame or JSON body size), and auth's handled counters must
//! show every request of either path OK.
//!
//! It is a benchmark, not a test: `make bench` runs it, `make test` never does. It is its own
//! binary crate so that neither its code nor its dependencies (argon2 timing, token minting,
//! h2load plumbing) ship in the `ironmesh` binary.

mod auth;
mod gateway;
mod h2load;
mod stack;
mod token;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ironmesh_launcher::mesh::{self, RunningMesh};
use ironmesh_runtime::{Config, ServiceKind};
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

/// The first line a server child prints once it listens.
const READY_PREFIX: &str = "READY";
/// How long a single check call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Which measurements to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// Bare vs server stack vs server stack with token verification.
    Stack,
    /// Login throughput vs the argon2 bound; GetMe p99 during a login flood.
    Auth,
    /// One RPC directly over gRPC vs through the REST gateway.
    Gateway,
    /// Every suite.
    All,
}

impl Suite {
    fn name(self) -> &'static str {
        match self {
            Self::Stack => "stack",
            Self::Auth => "auth",
            Self::Gateway => "gateway",
            Self::All => "all",
        }
    }
}

/// What a server child is (internal).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Stack,
    Auth,
    Gateway,
}

/// How the gateway suite speaks REST.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestProtocol {
    /// HTTP/1.1 (h2load `--h1`), one request at a time per connection, as REST clients do.
    H1,
    /// HTTP/2 without TLS (prior knowledge), multiplexed like the gRPC run.
    H2c,
}

/// mimalloc, as in the `ironmesh` binary: the bench measures the allocator production runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The command line of `ironmesh-bench`.
#[derive(clap::Parser, Debug)]
#[command(
    name = "ironmesh-bench",
    version,
    about = "Ironmesh benchmarks with h2load (needs `h2load`; the stack and gateway suites also \
             `taskset`): the shared server stack with and without token verification against a \
             bare tonic server, the auth service's login throughput against the argon2 bound and \
             GetMe p99 under a login flood, and one RPC through the REST gateway against the same \
             RPC over gRPC; prints the figures, ratios and targets."
)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    run(&cli.args)
}

/// Options of `ironmesh-bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Which measurements to run.
    #[arg(long, value_enum, default_value_t = Suite::All)]
    suite: Suite,
    /// Seconds of measured load per run.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// Seconds of unmeasured load before each measurement (0: none).
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    warmup: u64,
    /// Stack and gateway suites: HTTP/2 connections h2load opens (`-c`).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,
    /// Stack and gateway suites: concurrent streams per connection (`-m`).
    #[arg(long, value_name = "M", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    streams: u32,
    /// Stack and gateway suites: the CPU the server process is pinned to.
    #[arg(long, value_name = "CPU", default_value_t = 0)]
    server_cpu: usize,
    /// Stack and gateway suites: the CPU h2load is pinned to.
    #[arg(long, value_name = "CPU", default_value_t = 1)]
    load_cpu: usize,
    /// Gateway suite: how REST is spoken (h1: `-c N×M -m 1`, the same requests in flight as
    /// the gRPC run; h2c: `-c N -m M` like it).
    #[arg(long, value_enum, default_value_t = RestProtocol::H1)]
    gateway_rest: RestProtocol,
    /// Auth suite: concurrent Login calls of the flood (h2load `-c`, one stream each; default
    /// 2 × available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    login_clients: Option<u32>,
    /// Auth suite: h2load connections of the GetMe probe.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    probe_clients: u32,
    /// Auth suite: GetMe requests per second per probe connection (h2load `--rps`).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    probe_rps: u32,
    /// Auth suite: argon2id hashes timed for the bound.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    hashes: u32,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Internal: be a server process (started by `ironmesh-bench` itself).
    #[arg(long, value_enum, hide = true)]
    serve: Option<Role>,
    /// Internal: the public JWK (`KID:X`) the stack+auth server trusts.
    #[arg(long, hide = true)]
    serve_jwk: Option<String>,
    /// Internal: the auth or gateway server's data directory.
    #[arg(long, hide = true)]
    serve_dir: Option<PathBuf>,
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

/// Entry point of `ironmesh-bench`.
fn run(args: &BenchArgs) -> ExitCode {
    match args.serve {
        Some(Role::Stack) => return stack::serve_child(args.serve_jwk.as_deref()),
        Some(Role::Auth) => return auth::serve_child(args.serve_dir.as_deref()),
        Some(Role::Gateway) => return gateway::serve_child(args.serve_dir.as_deref()),
        None => {}
    }
    match measure(args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            report.note_server_logs();
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("ironmesh-bench: FAILED: {err}");
            err.exit_code()
        }
    }
}

/// Everything one run measured.
#[derive(Debug)]
struct Report {
    args: BenchArgs,
    stack: Option<stack::StackReport>,
    auth: Option<auth::AuthReport>,
    gateway: Option<gateway::GatewayReport>,
}

fn measure(args: &BenchArgs) -> Result<Report, BenchError> {
    require_tool("h2load", "nghttp2-client")?;
    let workdir = WorkDir::create()?;
    let runs = |suite: Suite| args.suite == suite || args.suite == Suite::All;
    let stack = runs(Suite::Stack)
        .then(|| stack::measure(args, workdir.path()))
        .transpose()?;
    let auth = runs(Suite::Auth)
        .then(|| auth::measure(args, workdir.path()))
        .transpose()?;
    let gateway = runs(Suite::Gateway)
        .then(|| gateway::measure(args, workdir.path()))
        .transpose()?;
    Ok(Report {
        args: args.clone(),
        stack,
        auth,
        gateway,
    })
}

impl Report {
    fn table(&self) -> String {
        let mut out = String::new();
        if let Some(stack) = &self.stack {
            stack.table(&self.args, &mut out);
        }
        if let Some(auth) = &self.auth {
            if !out.is_empty() {
                let _ = writeln!(out);
            }
            auth.table(&self.args, &mut out);
        }
        if let Some(gateway) = &self.gateway {
            if !out.is_empty() {
                let _ = writeln!(out);
            }
            gateway.table(&self.args, &mut out);
        }
        out
    }

    fn json(&self) -> Value {
        json!({
            "suite": self.args.suite.name(),
            "params": {
                "duration_secs": self.args.duration,
                "warmup_secs": self.args.warmup,
            },
            "stack": self.stack.as_ref().map(stack::StackReport::json),
            "auth": self.auth.as_ref().map(auth::AuthReport::json),
            "gateway": self.gateway.as_ref().map(gateway::GatewayReport::json),
        })
    }

    /// The servers' logs are not part of the result, but warnings in them deserve a look: says
    /// so on stderr with the first few.
    fn note_server_logs(&self) {
        let logs = [
            ("stack", self.stack.as_ref().map(|s| s.server_log.as_str())),
            ("auth", self.auth.as_ref().map(|a| a.server_log.as_str())),
            (
                "gateway",
                self.gateway.as_ref().map(|g| g.server_log.as_str()),
            ),
        ];
        for (name, log) in logs {
            let lines: Vec<&str> = log
                .unwrap_or_default()
                .lines()
                .filter(|line| !is_routine_log_line(line))
                .collect();
            if lines.is_empty() {
                continue;
            }
            eprintln!(
                "ironmesh-bench: note: the {name} server process logged {} line(s) above INFO; the first:",
                lines.len()
            );
            for line in lines.iter().take(3) {
                eprintln!("  {line}");
            }
        }
    }
}

/// A JSON log line at INFO or below (start-up, drain): not worth a note.
fn is_routine_log_line(line: &str) -> bool {
    ["INFO", "DEBUG", "TRACE"]
        .iter()
        .any(|level| line.contains(&format!("\"level\":\"{level}\"")))
}

/// Prints a progress line on stderr (not with `--json`).
fn progress(args: &BenchArgs, message: &str) {
    if !args.json {
        eprintln!("ironmesh-bench: {message}");
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}

/// A JSON number with four decimals (`null` for NaN/infinity, which JSON cannot carry).
fn num(value: f64) -> Value {
    if value.is_finite() {
        json!((value * 1e4).round() / 1e4)
    } else {
        Value::Null
    }
}

fn opt_num(value: Option<f64>) -> Value {
    value.map_or(Value::Null, num)
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

/// The runtime of a suite's check calls. Each suite drops its own before stopping its server:
/// that closes the connections of those calls, so the server's drain has nothing to wait for.
fn calls_runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("cannot start the async runtime"))
}

/// A channel to `addr` with the check-call timeouts.
async fn connect(addr: SocketAddr) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|err| format!("bad address: {err}"))?
        .timeout(CALL_TIMEOUT)
        .connect_timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(|err| format!("cannot connect: {err}"))
}

/// `rpc ended with grpc-status N (Code): message`.
fn grpc_failure(rpc: &str, status: &tonic::Status) -> String {
    format!(
        "{rpc} ended with grpc-status {} ({:?}): {}",
        status.code() as i32,
        status.code(),
        status.message()
    )
}

// ---------------------------------------------------------------------------------------------
// Processes and files the parent owns.

/// A server child (`[taskset -c CPU] ironmesh-bench --serve …`): asked to stop by closing its
/// stdin when dropped, killed if it has not exited within its stop wait, always reaped.
struct ServerChild {
    child: Child,
    /// The words after `READY` on its first line.
    ready: Vec<String>,
    stop_wait: Duration,
}

impl ServerChild {
    /// Starts the child with `role_args`, its stderr (the server log) going to
    /// `log`, and waits for its READY line.
    fn start<S: AsRef<OsStr>>(
        cpu: Option<usize>,
        role_args: &[S],
        log: &Path,
        stop_wait: Duration,
    ) -> Result<Self, BenchError> {
        let log_file = std::fs::File::create(log)
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
            .args(role_args)
            // Measure the stack as configured by default, not with a trace exporter attached.
            .env_remove(ironmesh_runtime::telemetry::OTLP_ENDPOINT_ENV)
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

    /// The first `N` READY words as socket addresses.
    fn ready_addrs<const N: usize>(&self) -> Result<[SocketAddr; N], BenchError> {
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

    /// CPU time the server process has used so far (sum over its threads), from /proc.
    fn cpu_time(&self) -> Option<Duration> {
        let tasks = format!("/proc/{}/task", self.child.id());
        let mut total_ns: u64 = 0;
        for entry in std::fs::read_dir(tasks).ok()? {
            // A thread that ended between the listing and the read is simply not counted.
            let Ok(stat) = std::fs::read_to_string(entry.ok()?.path().join("schedstat")) else {
                continue;
            };
            total_ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(Duration::from_nanos(total_ns))
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

/// `READY <word>…` → the words.
fn parse_ready(line: &str) -> Option<Vec<String>> {
    let mut words = line.split_whitespace();
    if words.next()? != READY_PREFIX {
        return None;
    }
    let rest: Vec<String> = words.map(str::to_owned).collect();
    (!rest.is_empty()).then_some(rest)
}

/// A private scratch directory (request bodies, h2load logs, the auth store), removed when
/// dropped.
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
// Shared by the server children.

/// Prints the READY line on stdout; false if the parent is gone.
fn announce(line: &str) -> bool {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_ok()
}

/// The body of a mesh server child (`--serve auth|gateway --serve-dir DIR`): `services` (and the
/// gateway, if asked) through [`ironmesh_launcher::mesh`] on the production runtime, configured like
/// `ironmesh_testkit::test_config` (SQLite in `dir`, every port 0 on loopback, a fresh master
/// key) with lockout thresholds no flood reaches, then `adjust`. Once every component is
/// healthy it prints `READY` and what `ready` says; runs until stdin closes, then drains.
fn serve_mesh(
    role: &str,
    dir: Option<&Path>,
    adjust: impl FnOnce(&mut Config),
    services: &[ServiceKind],
    gateway: bool,
    ready: impl FnOnce(&RunningMesh) -> Option<String>,
) -> ExitCode {
    let Some(dir) = dir else {
        eprintln!("ironmesh-bench --serve {role}: needs --serve-dir DIR");
        return ExitCode::from(2);
    };
    let mut config = match mesh_config(dir) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ironmesh-bench --serve {role}: {err}");
            return ExitCode::from(1);
        }
    };
    adjust(&mut config);
    if let Err(err) = config.validate() {
        eprintln!("ironmesh-bench --serve {role}: {err}");
        return ExitCode::from(2);
    }
    let settings = config.clone();
    ironmesh_runtime::process::block_on(&settings, run_mesh(config, services, gateway, ready))
}

/// Lockout thresholds high enough that no flood reaches them.
const NEVER_LOCKED: u32 = 1_000_000_000;
/// How long a mesh child waits for its components to report healthy.
const READY_LIMIT: Duration = Duration::from_secs(30);

fn mesh_config(dir: &Path) -> Result<Config, String> {
    use base64::Engine as _;
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        shutdown_grace_secs: 5,
        ..Config::default()
    }
    .on_loopback_any_port();
    config.secrets.master_key =
        Some(base64::engine::general_purpose::STANDARD.encode(token::random_bytes(32)?));
    config.lockout.account_threshold = NEVER_LOCKED;
    config.lockout.ip_threshold = NEVER_LOCKED;
    Ok(config)
}

async fn run_mesh(
    config: Config,
    services: &[ServiceKind],
    gateway: bool,
    ready: impl FnOnce(&RunningMesh) -> Option<String>,
) -> ExitCode {
    use ironmesh_runtime::process::fail;
    let bound = match mesh::bind(config, services, gateway).await {
        Ok(bound) => bound,
        Err(err) => return fail(&err),
    };
    let running = match bound
        .start_healthy(READY_LIMIT, std::future::pending())
        .await
    {
        Ok(running) => running,
        Err(err) => return fail(&err),
    };
    let Some(words) = ready(&running) else {
        running.stop().await;
        return fail(&"a component the bench needs is not in the mesh");
    };
    if !announce(&format!("{READY_PREFIX} {words}")) {
        running.stop().await;
        return ExitCode::from(1);
    }
    let errors = running.run_until(stdin_closed()).await;
    match errors.first() {
        None => ExitCode::SUCCESS,
        Some(err) => fail(err),
    }
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

    #[test]
    fn ready_lines() {
        assert_eq!(
            parse_ready("READY 127.0.0.1:1 127.0.0.1:2\n"),
            Some(vec!["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()])
        );
        assert_eq!(parse_ready("READY\n"), None);
        assert_eq!(parse_ready("oops"), None);
    }

    #[test]
    fn json_numbers() {
        assert_eq!(num(1.234_567), json!(1.2346));
        assert_eq!(num(f64::NAN), Value::Null);
        assert_eq!(opt_num(None), Value::Null);
    }

    #[test]
    fn routine_log_lines() {
        assert!(is_routine_log_line(
            r#"{"level":"INFO","message":"listening"}"#
        ));
        assert!(!is_routine_log_line(r#"{"level":"WARN","message":"x"}"#));
        assert!(!is_routine_log_line("thread 'main' panicked"));
    }
}
