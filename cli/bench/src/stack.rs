//! The `stack` suite: one cheap RPC served bare, through the production stack, and through the
//! production stack with real access-token verification (see the module docs of `bench`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ironmesh_interceptors::policy::Access;
use ironmesh_runtime::Config;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;

use super::h2load::{self, Call, Load, Summary};
use super::token::{self, BenchKey};
use super::{
    BenchArgs, BenchError, READY_PREFIX, ServerChild, connect, grpc_failure, num, opt_num,
    stdin_closed, verdict,
};

/// The RPC every server answers.
pub(super) const RPC_PATH: &str = "/grpc.health.v1.Health/Check";
/// An empty `HealthCheckRequest` as one gRPC frame: uncompressed, length 0.
const REQUEST_FRAME: [u8; 5] = [0; 5];
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
pub(super) struct StackReport {
    clients: u32,
    streams: u32,
    server_cpu: usize,
    load_cpu: usize,
    bare: Measurement,
    stack: Measurement,
    stack_auth: Measurement,
    /// One `authenticate(token)` measured alone in the bench process.
    verify_us: f64,
    /// What the server process wrote to stderr (its log).
    pub server_log: String,
}

/// Runs the suite: bare, stack, stack+auth, back to back on the same pinned server process.
pub(super) fn measure(args: &BenchArgs, workdir: &Path) -> Result<StackReport, BenchError> {
    super::require_tool("taskset", "util-linux")?;
    if args.server_cpu == args.load_cpu {
        return Err(BenchError::Usage(format!(
            "--server-cpu and --load-cpu must differ (both are {})",
            args.server_cpu
        )));
    }
    let body = workdir.join("health.bin");
    std::fs::write(&body, REQUEST_FRAME).map_err(BenchError::io(format!(
        "cannot write the request body {}",
        body.display()
    )))?;

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
        &super::calls_runtime()?,
        &*token::authenticator(&settings, jwk),
        &token,
        VERIFY_CALLS,
    )
    .map_err(BenchError::Failed)?;

    let server_log = workdir.join("stack-server.log");
    let server = ServerChild::start(
        Some(args.server_cpu),
        &["--serve", "stack", "--serve-jwk", &key.jwk_arg()],
        &server_log,
        STOP_WAIT,
    )?;
    let [bare, stack, stack_auth] = server.ready_addrs::<3>()?;
    // Declared after `server`, so it is dropped (closing its connections) before it.
    let runtime = super::calls_runtime()?;

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
    let bare = run(Target::Bare, bare, None)?;
    let stack = run(Target::Stack, stack, None)?;
    let stack_auth = run(Target::StackAuth, stack_auth, Some(&token))?;
    drop(runtime);
    drop(server);
    Ok(StackReport {
        clients: args.clients,
        streams: args.streams,
        server_cpu: args.server_cpu,
        load_cpu: args.load_cpu,
        bare,
        stack,
        stack_auth,
        verify_us: verify.as_secs_f64() * 1e6,
        server_log: std::fs::read_to_string(&server_log).unwrap_or_default(),
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
    super::progress(
        args,
        &format!(
            "loading {name} on {addr} ({} s warm-up + {} s)…",
            args.warmup, args.duration
        ),
    );

    let mut load = Load {
        cpu: Some(args.load_cpu),
        clients: args.clients,
        streams: args.streams,
        rps: None,
        secs: args.warmup,
        call: Call::Grpc(body),
        headers: token
            .map(|t| vec![format!("authorization: Bearer {t}")])
            .unwrap_or_default(),
        url: format!("http://{addr}{RPC_PATH}"),
    };
    // A separate h2load run rather than `--warm-up-time`: h2load counts the warm-up's response
    // bytes in its `data` total but not its requests, which would break the exact body check.
    if args.warmup > 0 {
        load.run(None)?;
    }
    load.secs = args.duration;
    let log = workdir.join(format!("{name}.log"));
    let cpu_before = server.cpu_time();
    let output = load.run(Some(&log))?;
    let cpu_after = server.cpu_time();

    let fail =
        |why: String| BenchError::Failed(format!("{name}: {why}\n--- h2load output ---\n{output}"));
    let summary = Summary::parse(&output).map_err(fail)?;
    summary.check(Some(RESPONSE_FRAME_BYTES)).map_err(fail)?;
    let latencies = h2load::read_request_log(&log).map_err(|why| {
        BenchError::Failed(format!("{name}: h2load log {}: {why}", log.display()))
    })?;
    runtime
        .block_on(check_serving(addr, token))
        .map_err(|why| BenchError::Failed(format!("{name} ({addr}) after the run: {why}")))?;

    let cpu = cpu_before
        .zip(cpu_after)
        .map(|(before, after)| after.saturating_sub(before));
    Ok(Measurement {
        target,
        addr,
        req_per_sec: summary.req_per_sec,
        requests: summary.succeeded,
        p50_ms: h2load::percentile_ms(&latencies, 0.50),
        p99_ms: h2load::percentile_ms(&latencies, 0.99),
        cpu_us_per_call: cpu
            .filter(|_| summary.succeeded > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / summary.succeeded as f64),
        // Over the measured run only (h2load's start-up adds a few ms: an estimate, not exact).
        cpu_percent: cpu.map(|cpu| 100.0 * cpu.as_secs_f64() / args.duration as f64),
    })
}

/// A Health/Check request, with `token` as its bearer credential if given.
fn health_request(token: Option<&str>) -> Result<tonic::Request<HealthCheckRequest>, String> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token is not a valid header value".to_owned())?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

/// One real gRPC call: the answer must be OK (`grpc-status: 0`) and SERVING.
async fn check_serving(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    let response = HealthClient::new(connect(addr).await?)
        .check(health_request(token)?)
        .await
        .map_err(|status| grpc_failure("Health/Check", &status))?;
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

/// One real gRPC call that must be refused with UNAUTHENTICATED.
async fn expect_unauthenticated(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    match HealthClient::new(connect(addr).await?)
        .check(health_request(token)?)
        .await
    {
        Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(()),
        Err(status) => Err(format!(
            "expected UNAUTHENTICATED, got {}",
            grpc_failure("Health/Check", &status)
        )),
        Ok(_) => Err("expected UNAUTHENTICATED, but the call succeeded".to_owned()),
    }
}

// ---------------------------------------------------------------------------------------------
// Output.

impl StackReport {
    fn ratio(&self, m: &Measurement, field: impl Fn(&Measurement) -> f64) -> f64 {
        field(m) / field(&self.bare)
    }

    fn cpu_ratio(&self, m: &Measurement) -> Option<f64> {
        Some(m.cpu_us_per_call? / self.bare.cpu_us_per_call?)
    }

    /// The verification's share of a call: CPU per call stack+auth − stack.
    fn verify_cpu_us(&self) -> Option<f64> {
        Some(self.stack_auth.cpu_us_per_call? - self.stack.cpu_us_per_call?)
    }

    pub fn table(&self, args: &BenchArgs, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "ironmesh-bench · stack: {RPC_PATH} · h2load -c {} -m {} · {} s measured after {} s warm-up",
            self.clients, self.streams, args.duration, args.warmup
        );
        let _ = writeln!(
            out,
            "server: 1 tokio worker, process pinned to CPU {}; h2load: 1 thread pinned to CPU {}",
            self.server_cpu, self.load_cpu
        );
        let _ = writeln!(
            out,
            "stack: ironmesh_runtime::server::grpc_server(Config::default()) without authentication;\n\
             stack+auth: the same with the production authenticator (Health/Check requires an \
             authenticated caller; an EdDSA access token verified on every call)\n"
        );
        let _ = writeln!(
            out,
            "{:<10} {:>11} {:>9} {:>9} {:>10} {:>11} {:>11}",
            "SERVER", "REQ/S", "P50 MS", "P99 MS", "REQUESTS", "CPU µs/CALL", "SERVER CPU"
        );
        for m in [&self.bare, &self.stack, &self.stack_auth] {
            let _ = writeln!(
                out,
                "{:<10} {:>11.1} {:>9.3} {:>9.3} {:>10} {:>11} {:>11}",
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
        for (title, m) in [
            ("stack (interceptors, no authentication)", &self.stack),
            ("stack + token verification", &self.stack_auth),
        ] {
            let name = m.target.name();
            let rps = self.ratio(m, |m| m.req_per_sec);
            let p99 = self.ratio(m, |m| m.p99_ms);
            let _ = writeln!(out, "\n{title}");
            let _ = writeln!(
                out,
                "  req/s {name}/bare = {rps:.2} (target ≥ {TARGET_RPS_RATIO:.2}) {}",
                verdict(rps >= TARGET_RPS_RATIO)
            );
            let _ = writeln!(
                out,
                "  p99   {name}/bare = {p99:.2} (target ≤ {TARGET_P99_RATIO:.2}) {}",
                verdict(p99 <= TARGET_P99_RATIO)
            );
            if let Some(cpu) = self.cpu_ratio(m) {
                let _ = writeln!(
                    out,
                    "  server CPU per call {name}/bare = {cpu:.2} (no target; the least noisy figure)"
                );
            }
        }
        let _ = writeln!(
            out,
            "  token verification alone: {:.1} µs per call (the same authenticator in the bench process, {VERIFY_CALLS} calls){}",
            self.verify_us,
            self.verify_cpu_us()
                .map(|v| format!("; server CPU per call stack+auth − stack = {v:.1} µs"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "checks: Health/Check OK+SERVING before and after each run (stack+auth: with the token); \
             stack+auth refuses no token and a forged token with UNAUTHENTICATED; every request \
             HTTP 200 with one SERVING frame"
        );
    }

    pub fn json(&self) -> Value {
        let ratios = |m: &Measurement| {
            let rps = self.ratio(m, |m| m.req_per_sec);
            let p99 = self.ratio(m, |m| m.p99_ms);
            json!({
                "ratio_rps": num(rps),
                "target_ratio_rps": TARGET_RPS_RATIO,
                "ratio_rps_met": rps >= TARGET_RPS_RATIO,
                "ratio_p99": num(p99),
                "target_ratio_p99": TARGET_P99_RATIO,
                "ratio_p99_met": p99 <= TARGET_P99_RATIO,
                "ratio_cpu_per_call": opt_num(self.cpu_ratio(m)),
            })
        };
        json!({
            "rpc": RPC_PATH,
            "params": {
                "clients": self.clients,
                "streams": self.streams,
                "server_cpu": self.server_cpu,
                "load_cpu": self.load_cpu,
                "server_worker_threads": 1,
            },
            "bare": self.bare.json(),
            "stack": self.stack.json(),
            "stack_auth": self.stack_auth.json(),
            "stack_vs_bare": ratios(&self.stack),
            "stack_auth_vs_bare": ratios(&self.stack_auth),
            "token_verify_us": num(self.verify_us),
            "token_verify_server_cpu_us": opt_num(self.verify_cpu_us()),
        })
    }
}

impl Measurement {
    fn json(&self) -> Value {
        json!({
            "addr": self.addr.to_string(),
            "req_per_sec": num(self.req_per_sec),
            "requests": self.requests,
            "p50_ms": num(self.p50_ms),
            "p99_ms": num(self.p99_ms),
            "cpu_us_per_call": opt_num(self.cpu_us_per_call),
            "server_cpu_percent": opt_num(self.cpu_percent),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The server child.

/// `ironmesh-bench --serve stack --serve-jwk KID:X`: the three servers on one single-worker
/// runtime, until stdin closes.
pub(super) fn serve_child(jwk: Option<&str>) -> ExitCode {
    let Some(jwk) = jwk.and_then(token::parse_jwk) else {
        eprintln!("ironmesh-bench --serve stack: needs --serve-jwk KID:X");
        return ExitCode::from(2);
    };
    let config = Config::default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ironmesh-bench --serve: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        // The production subscriber: the stack's spans are as live here as in a service.
        let _telemetry = ironmesh_runtime::telemetry::init(&config);
        let addrs = match start_servers(&config, jwk).await {
            Ok(addrs) => addrs,
            Err(err) => {
                eprintln!("ironmesh-bench --serve: {err}");
                return ExitCode::from(1);
            }
        };
        let line = format!("{READY_PREFIX} {} {} {}", addrs[0], addrs[1], addrs[2]);
        if !super::announce(&line) {
            return ExitCode::from(1);
        }
        stdin_closed().await;
        ExitCode::SUCCESS
    })
}

/// Binds three loopback listeners and serves Health/Check on them: bare, through the stack,
/// through the stack with authentication.
async fn start_servers(
    config: &Config,
    jwk: ironmesh_interceptors::auth::jwt::PublicJwk,
) -> Result<[SocketAddr; 3], String> {
    let (bare_listener, bare_addr) = bind_loopback().await?;
    let (stack_listener, stack_addr) = bind_loopback().await?;
    let (auth_listener, auth_addr) = bind_loopback().await?;

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

    // Health/Check is public in production; here it stands for any authenticated cheap RPC.
    let policy = ironmesh_runtime::policy().clone();
    let idempotent = policy.is_idempotent(RPC_PATH);
    let policy = policy.with(RPC_PATH, idempotent, Access::Authenticated);
    let authenticator = token::authenticator(&config.tokens, jwk);
    let stack_auth =
        ironmesh_runtime::server::grpc_server(config, "bench", policy, Some(authenticator))
            .map_err(|err| format!("cannot build the server stack with authentication: {err}"))?
            .add_service(serving_health().await)
            .serve_with_incoming(incoming(auth_listener));

    tokio::spawn(async move {
        if let Err(err) = bare.await {
            eprintln!("ironmesh-bench --serve: bare server failed: {err}");
        }
    });
    tokio::spawn(async move {
        if let Err(err) = stack.await {
            eprintln!("ironmesh-bench --serve: stack server failed: {err}");
        }
    });
    tokio::spawn(async move {
        if let Err(err) = stack_auth.await {
            eprintln!("ironmesh-bench --serve: stack+auth server failed: {err}");
        }
    });
    Ok([bare_addr, stack_addr, auth_addr])
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
