//! The `stack` suite: one cheap RPC served bare, through the production stack, and through the
//! production stack with real access-token verification (see the module docs of `bench`).
//!
//! # Layout
//! - `mod.rs` (this file): the measurement: rounds of bare, stack and stack+auth back to back,
//!   so drift of a shared machine lands on all three alike; the report takes medians.
//! - [`checks`]: the Health/Check calls that bracket every run, and the refusals of stack+auth.
//! - [`report`]: the suite's table section and JSON.
//! - [`server`]: the server child serving the three.
//! - [`exported`]: the stack again with OTLP export on, at 100 % and 1 % sampling.
//! - allocations per call come from the `ironmesh-bench-alloc` binary (`src/bin/alloc.rs`,
//!   under a counting allocator), run after the speed runs.

mod checks;
mod exported;
mod report;
mod server;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ironmesh_runtime::Config;

use self::checks::{check_serving, expect_unauthenticated};
pub use self::server::serve_child;
use crate::args::BenchArgs;
use crate::calls::{bearer_header, calls_runtime};
use crate::child::ServerChild;
use crate::error::BenchError;
use crate::figures::{Measured, read_run};
use crate::frame::{EMPTY_FRAME, write_frame};
use crate::h2load::{Call, Load};
use crate::token::{self, BenchKey};

/// The RPC every server answers.
const RPC_PATH: &str = "/grpc.health.v1.Health/Check";
/// The size of one `HealthCheckResponse{status: SERVING}` frame: 5-byte prefix + `08 01`.
const RESPONSE_FRAME_BYTES: u64 = 7;
/// Targets from the interceptor issue (the same for the stack with token verification).
const TARGET_RPS_RATIO: f64 = 0.90;
const TARGET_P99_RATIO: f64 = 1.25;
/// The key id of the bench's signing key.
const KID: &str = "bench-1";
/// Verifications timed in the bench process to show what one costs by itself.
const VERIFY_CALLS: u32 = 2_000;
/// How long the server child may take to stop once asked.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Which of the three servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Bare,
    Stack,
    StackAuth,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Stack => "stack",
            Self::StackAuth => "stack+auth",
        }
    }
}

/// One server's run.
#[derive(Debug)]
struct Measurement {
    target: Target,
    addr: SocketAddr,
    measured: Measured,
}

#[derive(Debug)]
pub struct StackReport {
    clients: u32,
    streams: u32,
    server_cpu: usize,
    load_cpu: usize,
    /// `--rounds` rounds, each bare, stack and stack+auth in that order.
    rounds: Vec<Round>,
    /// One `authenticate(token)` measured alone in the bench process.
    verify_us: f64,
    /// What the server process wrote to stderr (its log).
    server_log: String,
    /// Heap allocations per call, or why they were not counted.
    allocations: Result<Allocations, String>,
    /// The stack with traces exported at 100 % and at 1 % sampling.
    exported: Vec<exported::Exported>,
}

/// One round: the three servers loaded one after the other.
#[derive(Debug)]
struct Round {
    bare: Measurement,
    stack: Measurement,
    stack_auth: Measurement,
}

/// Allocations (and reallocations) per call, from `ironmesh-bench-alloc`.
#[derive(Debug)]
struct Allocations {
    calls: u64,
    bare: f64,
    stack: f64,
    stack_auth: f64,
}

/// Runs `ironmesh-bench-alloc` (built beside this binary) and reads its figures.
fn count_allocations() -> Result<Allocations, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let counter = exe.with_file_name("ironmesh-bench-alloc");
    if !counter.exists() {
        return Err(format!("{} is not built", counter.display()));
    }
    let out = std::process::Command::new(&counter)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", counter.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let figures: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("unreadable figures: {e}"))?;
    let field = |name: &str| {
        figures[name]
            .as_f64()
            .ok_or_else(|| format!("no `{name}` in {figures}"))
    };
    Ok(Allocations {
        calls: figures["calls"].as_u64().unwrap_or(0),
        bare: field("bare")?,
        stack: field("stack")?,
        stack_auth: field("stack_auth")?,
    })
}

/// Runs the suite: rounds of bare, stack, stack+auth, back to back on the same pinned server
/// process.
pub fn measure(args: &BenchArgs, workdir: &Path) -> Result<StackReport, BenchError> {
    crate::require_pinning(args)?;
    // An empty `HealthCheckRequest`.
    let body = workdir.join("health.bin");
    write_frame(&body, &EMPTY_FRAME)?;

    let settings = Config::default().tokens;
    let key = BenchKey::generate(KID).map_err(BenchError::Failed)?;
    let token = key.mint(&settings).map_err(BenchError::Failed)?;
    // Same kid, other key: the signature cannot verify.
    let forged = BenchKey::generate(KID)
        .and_then(|other| other.mint(&settings))
        .map_err(BenchError::Failed)?;
    let jwk = token::parse_jwk(&key.jwk_arg())
        .ok_or_else(|| BenchError::Failed("the bench JWK does not read back".to_owned()))?;
    let verify = token::time_verification(
        &calls_runtime()?,
        &*token::authenticator(&settings, jwk),
        &token,
        VERIFY_CALLS,
    )
    .map_err(BenchError::Failed)?;

    let jwk_arg = key.jwk_arg();
    let server = ServerChild::start(
        Some(args.server_cpu),
        "stack",
        &[OsStr::new("--serve-jwk"), OsStr::new(&jwk_arg)],
        workdir,
        STOP_WAIT,
    )?;
    let [bare, stack, stack_auth] = server.ready_addrs::<3>()?;
    // Declared after `server`, so it is dropped (closing its connections) before it.
    let runtime = calls_runtime()?;

    // The honest-figure check: the stack+auth server refuses calls without a (valid) token.
    for (label, credential) in [
        ("no token", None),
        ("a forged token", Some(forged.as_str())),
    ] {
        runtime
            .block_on(expect_unauthenticated(stack_auth, credential))
            .map_err(|why| {
                BenchError::Failed(format!("stack+auth ({stack_auth}) with {label}: {why}"))
            })?;
    }

    let run = |target, addr, token: Option<&str>| {
        measure_one(args, &runtime, &server, target, addr, token, &body, workdir)
    };
    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        crate::progress(args, &format!("round {round} of {}…", args.rounds));
        rounds.push(Round {
            bare: run(Target::Bare, bare, None)?,
            stack: run(Target::Stack, stack, None)?,
            stack_auth: run(Target::StackAuth, stack_auth, Some(&token))?,
        });
    }
    drop(runtime);
    let server_log = server.stop();
    let mut exported = Vec::new();
    for ratio in [1.0, 0.01] {
        crate::progress(args, &format!("the stack with traces exported at {ratio}…"));
        exported.push(exported::measure_exported(
            args, &body, workdir, &jwk_arg, ratio,
        )?);
    }
    Ok(StackReport {
        clients: args.clients,
        streams: args.streams,
        server_cpu: args.server_cpu,
        load_cpu: args.load_cpu,
        rounds,
        verify_us: verify.as_secs_f64() * 1e6,
        server_log,
        allocations: count_allocations(),
        exported,
    })
}

/// Checks, loads, checks again.
#[allow(clippy::too_many_arguments)]
fn measure_one(
    args: &BenchArgs,
    runtime: &tokio::runtime::Runtime,
    server: &ServerChild,
    target: Target,
    addr: SocketAddr,
    token: Option<&str>,
    body: &Path,
    workdir: &Path,
) -> Result<Measurement, BenchError> {
    let name = target.name();
    runtime
        .block_on(check_serving(addr, token))
        .map_err(|why| BenchError::Failed(format!("{name} ({addr}) before the run: {why}")))?;
    crate::progress(
        args,
        &format!(
            "loading {name} on {addr} ({} s warm-up + {} s)…",
            args.warmup, args.duration
        ),
    );

    let load = Load {
        cpu: Some(args.load_cpu),
        clients: args.clients,
        streams: args.streams,
        rps: None,
        secs: args.duration,
        call: Call::Grpc(body),
        headers: token.map(|t| vec![bearer_header(t)]).unwrap_or_default(),
        url: format!("http://{addr}{RPC_PATH}"),
    };
    load.warm_up(args.warmup)?;
    let log = workdir.join(format!("{name}.log"));
    let (output, cpu) = server.cpu_during(|| load.run(Some(&log)))?;
    let run = read_run(&output, &log, name, Some(RESPONSE_FRAME_BYTES))?;
    runtime
        .block_on(check_serving(addr, token))
        .map_err(|why| BenchError::Failed(format!("{name} ({addr}) after the run: {why}")))?;

    Ok(Measurement {
        target,
        addr,
        measured: Measured::new(run, cpu, args.duration),
    })
}
