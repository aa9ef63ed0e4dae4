//! The `auth` suite: login throughput against the argon2 bound measured in the same run, and the
//! p99 of a cheap authenticated RPC (GetMe) during a login flood (see the module docs of `bench`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};
use ironmesh_launcher::mesh::Component;
use ironmesh_proto::ironmesh::auth::v1::auth_service_client::AuthServiceClient;
use ironmesh_proto::ironmesh::auth::v1::{GetMeRequest, LoginRequest, RegisterRequest};
use ironmesh_runtime::ServiceKind;
use prost::Message;
use serde_json::{Value, json};

use super::h2load::{self, Call, Load, Summary};
use super::{BenchArgs, BenchError, ServerChild, connect, grpc_failure, num, opt_num, verdict};

const LOGIN_PATH: &str = "/ironmesh.auth.v1.AuthService/Login";
const GET_ME_PATH: &str = "/ironmesh.auth.v1.AuthService/GetMe";
const LOGIN_METHOD: &str = "Login";
const GET_ME_METHOD: &str = "GetMe";
/// An empty `GetMeRequest` as one gRPC frame.
const EMPTY_FRAME: [u8; 5] = [0; 5];
/// The one bench user.
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct horse battery staple";
/// Production argon2id parameters (`services/auth/src/password.rs`): 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
/// Targets from the issue.
const TARGET_LOGIN_RATIO: f64 = 0.80;
const TARGET_FLOOD_P99_RATIO: f64 = 1.50;
/// Streams per GetMe probe connection: room for a slow answer without delaying the next request.
const PROBE_STREAMS: u32 = 4;
/// The login flood outlasts the probe by this much, so the whole probe runs under it.
const FLOOD_MARGIN_SECS: u64 = 2;
/// How long the child may take to drain and stop once asked (its grace is 5 s).
const STOP_WAIT: Duration = Duration::from_secs(15);

/// One h2load run's figures.
#[derive(Debug)]
pub(super) struct Run {
    pub req_per_sec: f64,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Production argon2id hashing timed in the bench process.
#[derive(Clone, Copy, Debug)]
struct HashTiming {
    /// Mean and fastest time of one hash, one after another on one thread, in reused memory:
    /// the cost of argon2 itself, what the bound is made of.
    secs_per_hash: f64,
    fastest_secs_per_hash: f64,
    /// Mean time of one hash as the server computes it: on a worker thread, allocating (and
    /// the kernel faulting in) 19 MiB per hash (diagnostic).
    server_way_secs_per_hash: f64,
    /// Hashes per second with one thread per core hashing at once, the server's way (diagnostic).
    parallel_rate: f64,
}

#[derive(Debug)]
pub(super) struct AuthReport {
    cores: usize,
    hashes: u32,
    /// Hashing timed right before and right after the Login run.
    hashing: [HashTiming; 2],
    /// Mean seconds per hash of the two timings, and cores ÷ that.
    secs_per_hash: f64,
    bound: f64,
    /// Mean hashes per second with every core hashing at once (diagnostic, no target).
    parallel_rate: f64,
    login_clients: u32,
    login: Run,
    /// Server CPU over the login run: per login, and in % of one core.
    cpu_ms_per_login: Option<f64>,
    login_cpu_percent: Option<f64>,
    probe_clients: u32,
    probe_rps: u32,
    idle: Run,
    flood: Run,
    /// The server's own GetMe p99 (histogram bucket bound), idle and during the flood.
    idle_server_p99_ms: Option<f64>,
    flood_server_p99_ms: Option<f64>,
    /// The Login flood that ran during `flood`.
    flood_logins: Run,
    /// Calls the server counted CANCELLED (cut when an h2load `-D` ran out).
    cancelled: u64,
    /// What the server process wrote to stderr (its log).
    pub server_log: String,
}

/// Runs the suite against a fresh auth server.
pub(super) fn measure(args: &BenchArgs, workdir: &Path) -> Result<AuthReport, BenchError> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let login_clients = args
        .login_clients
        .unwrap_or_else(|| u32::try_from(2 * cores).unwrap_or(u32::MAX));
    let data_dir = workdir.join("auth-data");
    std::fs::create_dir_all(&data_dir).map_err(BenchError::io(format!(
        "cannot create {}",
        data_dir.display()
    )))?;
    let login_body = workdir.join("login.bin");
    write_frame(&login_body, &login_frame())?;
    let get_me_body = workdir.join("get-me.bin");
    write_frame(&get_me_body, &EMPTY_FRAME)?;

    super::progress(args, "starting the auth service (unpinned, SQLite)…");
    let server_log = workdir.join("auth-server.log");
    let server = ServerChild::start(
        None,
        &[
            OsStr::new("--serve"),
            OsStr::new("auth"),
            OsStr::new("--serve-dir"),
            data_dir.as_os_str(),
        ],
        &server_log,
        STOP_WAIT,
    )?;
    let [grpc, admin] = server.ready_addrs::<2>()?;
    // Declared after `server`, so it is dropped (closing its connections) before it.
    let runtime = super::calls_runtime()?;
    let failed = |what: &str| {
        let what = what.to_owned();
        move |why: String| BenchError::Failed(format!("auth ({grpc}) {what}: {why}"))
    };
    let token = runtime
        .block_on(sign_up(grpc))
        .map_err(failed("register + login"))?;

    let login_load = Load {
        cpu: None,
        clients: login_clients,
        streams: 1,
        rps: None,
        secs: args.duration,
        call: Call::Grpc(&login_body),
        headers: Vec::new(),
        url: format!("http://{grpc}{LOGIN_PATH}"),
    };
    let probe_load = Load {
        cpu: None,
        clients: args.probe_clients,
        streams: PROBE_STREAMS,
        rps: Some(args.probe_rps),
        secs: args.duration,
        call: Call::Grpc(&get_me_body),
        headers: vec![format!("authorization: Bearer {token}")],
        url: format!("http://{grpc}{GET_ME_PATH}"),
    };
    let mut cancelled = 0;

    // 1. GetMe, idle.
    runtime
        .block_on(check_get_me(grpc, &token))
        .map_err(failed("GetMe before the idle run"))?;
    super::progress(
        args,
        &format!(
            "GetMe idle at {} req/s ({} s warm-up + {} s)…",
            args.probe_clients * args.probe_rps,
            args.warmup,
            args.duration
        ),
    );
    let before = runtime.block_on(scrape(admin)).map_err(failed("metrics"))?;
    let idle = run_measured(args, &probe_load, &workdir.join("get-me-idle.log"))?;
    let after = runtime.block_on(scrape(admin)).map_err(failed("metrics"))?;
    cancelled += check_calls(&before, &after, GET_ME_METHOD, idle.requests)
        .map_err(failed("idle GetMe run"))?;
    let idle_server_p99_ms = server_p99_ms(&before, &after, GET_ME_METHOD);

    // 2. Login throughput, bracketed by the bound: hashing timed while the server idles, right
    // before and right after, so drift of a shared machine shows and averages out.
    runtime
        .block_on(log_in(grpc))
        .map_err(failed("Login before the throughput run"))?;
    super::progress(
        args,
        &format!(
            "timing {} argon2id hashes (m={MEMORY_KIB} KiB, t={ITERATIONS}, p={PARALLELISM})…",
            args.hashes
        ),
    );
    let hashing_before = time_hashing(args.hashes, cores)?;
    super::progress(
        args,
        &format!(
            "Login flood, {login_clients} concurrent ({} s warm-up + {} s)…",
            args.warmup, args.duration
        ),
    );
    if args.warmup > 0 {
        let mut warm = login_load.clone();
        warm.secs = args.warmup;
        warm.run(None)?;
    }
    let before = runtime.block_on(scrape(admin)).map_err(failed("metrics"))?;
    let cpu_before = server.cpu_time();
    let output = login_load.run(Some(&workdir.join("login.log")))?;
    let cpu_after = server.cpu_time();
    let after = runtime.block_on(scrape(admin)).map_err(failed("metrics"))?;
    let login = read_run(&output, &workdir.join("login.log"), "Login")?;
    cancelled += check_calls(&before, &after, LOGIN_METHOD, login.requests)
        .map_err(failed("Login throughput run"))?;
    let cpu = cpu_before
        .zip(cpu_after)
        .map(|(before, after)| after.saturating_sub(before).as_secs_f64());
    let hashing_after = time_hashing(args.hashes, cores)?;
    let secs_per_hash = (hashing_before.secs_per_hash + hashing_after.secs_per_hash) / 2.0;
    let parallel_rate = (hashing_before.parallel_rate + hashing_after.parallel_rate) / 2.0;

    // 3. GetMe during a login flood.
    runtime
        .block_on(check_get_me(grpc, &token))
        .map_err(failed("GetMe before the flood run"))?;
    super::progress(
        args,
        &format!(
            "GetMe at {} req/s during a Login flood ({} s warm-up + {} s)…",
            args.probe_clients * args.probe_rps,
            args.warmup,
            args.duration
        ),
    );
    let before = runtime.block_on(scrape(admin)).map_err(failed("metrics"))?;
    let mut flood_load = login_load.clone();
    flood_load.secs = args.warmup + args.duration + FLOOD_MARGIN_SECS;
    let flood_log = workdir.join("flood.log");
    let mut flood = flood_load.spawn(Some(&flood_log), &workdir.join("flood.out"))?;
    // The probe's warm-up doubles as the flood's.
    let flood_probe = run_measured(args, &probe_load, &workdir.join("get-me-flood.log"))?;
    if !flood.running() {
        return Err(BenchError::Failed(
            "the Login flood ended before the GetMe probe did: the probe did not run under load \
             the whole time"
                .to_owned(),
        ));
    }
    let flood_output = flood.finish()?;
    let after = runtime.block_on(scrape(admin)).map_err(failed("metrics"))?;
    let flood_logins = read_run(&flood_output, &flood_log, "Login flood")?;
    cancelled += check_calls(&before, &after, GET_ME_METHOD, flood_probe.requests)
        .map_err(failed("GetMe during the flood"))?;
    let flood_server_p99_ms = server_p99_ms(&before, &after, GET_ME_METHOD);
    cancelled += check_calls(&before, &after, LOGIN_METHOD, flood_logins.requests)
        .map_err(failed("the Login flood"))?;

    runtime
        .block_on(check_get_me(grpc, &token))
        .map_err(failed("GetMe after the runs"))?;
    runtime
        .block_on(log_in(grpc))
        .map_err(failed("Login after the runs"))?;
    drop(runtime);
    drop(server);

    Ok(AuthReport {
        cores,
        hashes: args.hashes,
        hashing: [hashing_before, hashing_after],
        secs_per_hash,
        bound: cores as f64 / secs_per_hash,
        parallel_rate,
        login_clients,
        cpu_ms_per_login: cpu
            .filter(|_| login.requests > 0)
            .map(|cpu| cpu * 1e3 / login.requests as f64),
        login_cpu_percent: cpu.map(|cpu| 100.0 * cpu / args.duration as f64),
        login,
        probe_clients: args.probe_clients,
        probe_rps: args.probe_rps,
        idle,
        flood: flood_probe,
        idle_server_p99_ms,
        flood_server_p99_ms,
        flood_logins,
        cancelled,
        server_log: std::fs::read_to_string(&server_log).unwrap_or_default(),
    })
}

/// Warm-up (unmeasured), then the measured run with a per-request log.
fn run_measured(args: &BenchArgs, load: &Load<'_>, log: &Path) -> Result<Run, BenchError> {
    if args.warmup > 0 {
        let mut warm = load.clone();
        warm.secs = args.warmup;
        warm.run(None)?;
    }
    let output = load.run(Some(log))?;
    read_run(&output, log, "GetMe")
}

/// h2load's summary and per-request log → the run's figures; every request must have
/// succeeded with HTTP 200.
pub(super) fn read_run(output: &str, log: &Path, name: &str) -> Result<Run, BenchError> {
    let fail =
        |why: String| BenchError::Failed(format!("{name}: {why}\n--- h2load output ---\n{output}"));
    let summary = Summary::parse(output).map_err(fail)?;
    summary.check(None).map_err(fail)?;
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

/// Times `n` production hashes on this thread into one reused block of memory (the bound), `n`
/// as the server computes them (allocating per hash, on a spawned thread), then `n` on each of
/// `cores` threads at once, also as the server computes them.
fn time_hashing(n: u32, cores: usize) -> Result<HashTiming, BenchError> {
    let (secs_per_hash, fastest_secs_per_hash) = time_argon2(n, true)?;
    let (server_way_secs_per_hash, _) = std::thread::scope(|scope| {
        scope
            .spawn(|| time_argon2(n, false))
            .join()
            .map_err(|_| BenchError::Failed("the argon2 thread panicked".to_owned()))
    })??;
    Ok(HashTiming {
        secs_per_hash,
        fastest_secs_per_hash,
        server_way_secs_per_hash,
        parallel_rate: parallel_hash_rate(cores, n)?,
    })
}

/// Seconds per production argon2id hash on the calling thread: (mean, fastest) of `n` after
/// one unmeasured hash. With `reuse_memory`, every hash works in one block of memory allocated
/// up front (`hash_password_into_with_memory`): argon2's own work and nothing else. Without,
/// each hash allocates and zeroes its 19 MiB (`hash_password_into`, what `verify_password`
/// does for a login).
fn time_argon2(n: u32, reuse_memory: bool) -> Result<(f64, f64), BenchError> {
    let argon2 = production_argon2()?;
    let salt = super::token::random_bytes(16).map_err(BenchError::Failed)?;
    let mut memory = if reuse_memory {
        vec![argon2::Block::default(); argon2.params().block_count()]
    } else {
        Vec::new()
    };
    let mut out = [0u8; 32];
    let mut hash = || {
        let started = Instant::now();
        let result = if reuse_memory {
            argon2.hash_password_into_with_memory(
                PASSWORD.as_bytes(),
                &salt,
                &mut out,
                &mut memory[..],
            )
        } else {
            argon2.hash_password_into(PASSWORD.as_bytes(), &salt, &mut out)
        };
        result.map_err(|err| BenchError::Failed(format!("argon2: {err}")))?;
        Ok::<_, BenchError>(started.elapsed())
    };
    hash()?;
    let mut total = Duration::ZERO;
    let mut fastest = Duration::MAX;
    for _ in 0..n {
        let took = hash()?;
        total += took;
        fastest = fastest.min(took);
    }
    Ok((total.as_secs_f64() / f64::from(n), fastest.as_secs_f64()))
}

/// Hashes per second with `threads` threads hashing at once as the server does (allocating per
/// hash), `per_thread` each after one unmeasured hash per thread (no target).
fn parallel_hash_rate(threads: usize, per_thread: u32) -> Result<f64, BenchError> {
    let argon2 = production_argon2()?;
    let salt = super::token::random_bytes(16).map_err(BenchError::Failed)?;
    let barrier = std::sync::Barrier::new(threads + 1);
    let hash = || {
        let mut out = [0u8; 32];
        argon2
            .hash_password_into(PASSWORD.as_bytes(), &salt, &mut out)
            .map_err(|err| format!("argon2: {err}"))
    };
    let elapsed = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let warm = hash();
                    barrier.wait();
                    warm?;
                    (0..per_thread).try_for_each(|_| hash())
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "an argon2 thread panicked".to_owned())??;
        }
        Ok::<_, String>(started.elapsed())
    })
    .map_err(BenchError::Failed)?;
    Ok(threads as f64 * f64::from(per_thread) / elapsed.as_secs_f64())
}

fn production_argon2() -> Result<Argon2<'static>, BenchError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|err| BenchError::Failed(format!("argon2 parameters: {err}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The encoded `LoginRequest` of the bench user.
fn login_frame() -> Vec<u8> {
    let message = LoginRequest {
        email: EMAIL.to_owned(),
        password: PASSWORD.to_owned(),
        ..Default::default()
    }
    .encode_to_vec();
    grpc_frame(&message)
}

/// One uncompressed gRPC frame: flag 0, big-endian length, message.
fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(message.len()).expect("a small message");
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

fn write_frame(path: &Path, frame: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, frame).map_err(BenchError::io(format!(
        "cannot write the request body {}",
        path.display()
    )))
}

// ---------------------------------------------------------------------------------------------
// Real calls.

/// Registers the bench user and logs in; returns the access token.
async fn sign_up(addr: SocketAddr) -> Result<String, String> {
    AuthServiceClient::new(connect(addr).await?)
        .register(RegisterRequest {
            email: EMAIL.to_owned(),
            password: PASSWORD.to_owned(),
            display_name: "Bench User".to_owned(),
        })
        .await
        .map_err(|status| grpc_failure("Register", &status))?;
    log_in(addr).await
}

/// One Login that must answer OK with tokens; returns the access token.
async fn log_in(addr: SocketAddr) -> Result<String, String> {
    let response = AuthServiceClient::new(connect(addr).await?)
        .login(LoginRequest {
            email: EMAIL.to_owned(),
            password: PASSWORD.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(|status| grpc_failure("Login", &status))?
        .into_inner();
    let token = response
        .tokens
        .map(|tokens| tokens.access_token)
        .unwrap_or_default();
    if token.is_empty() {
        return Err("Login answered OK without an access token".to_owned());
    }
    Ok(token)
}

/// One GetMe with `token` that must answer OK with the bench user.
async fn check_get_me(addr: SocketAddr, token: &str) -> Result<(), String> {
    let mut request = tonic::Request::new(GetMeRequest {});
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token is not a valid header value".to_owned())?;
    request.metadata_mut().insert("authorization", value);
    let user = AuthServiceClient::new(connect(addr).await?)
        .get_me(request)
        .await
        .map_err(|status| grpc_failure("GetMe", &status))?
        .into_inner()
        .user;
    match user {
        Some(user) if user.email == EMAIL => Ok(()),
        other => Err(format!("GetMe answered OK but not with {EMAIL}: {other:?}")),
    }
}

/// One counter family by (`grpc_method`, another label).
type Series = BTreeMap<(String, String), u64>;

/// What the server's admin `/metrics` said at one moment.
#[derive(Debug, Default)]
pub(super) struct Scrape {
    /// `ironmesh_grpc_server_handled_total` by (method, code).
    pub handled: Series,
    /// `ironmesh_grpc_server_handling_seconds_bucket` by (method, le).
    buckets: Series,
}

pub(super) async fn scrape(admin: SocketAddr) -> Result<Scrape, String> {
    let text = reqwest::Client::new()
        .get(format!("http://{admin}/metrics"))
        .timeout(super::CALL_TIMEOUT)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|err| format!("GET /metrics: {err}"))?
        .text()
        .await
        .map_err(|err| format!("GET /metrics: {err}"))?;
    Ok(Scrape::parse(&text))
}

impl Scrape {
    pub(super) fn parse(text: &str) -> Self {
        Self {
            handled: parse_series(text, "ironmesh_grpc_server_handled_total", "grpc_code"),
            buckets: parse_series(text, "ironmesh_grpc_server_handling_seconds_bucket", "le"),
        }
    }
}

/// The samples of `metric` in a Prometheus text exposition, by (`grpc_method`, `label`).
fn parse_series(text: &str, metric: &str, label: &str) -> Series {
    let mut out = Series::new();
    let prefix = format!("{metric}{{");
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let get = |name: &str| {
            labels.split(',').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
            })
        };
        let (Some(method), Some(other)) = (get("grpc_method"), get(label)) else {
            continue;
        };
        let Ok(count) = value.trim().parse::<f64>() else {
            continue;
        };
        *out.entry((method, other)).or_default() += count as u64;
    }
    out
}

/// The server's own p99 for `method` between two scrapes, as the upper bound (ms) of the
/// histogram bucket that holds it (infinite beyond the last bucket); None without calls.
fn server_p99_ms(before: &Scrape, after: &Scrape, method: &str) -> Option<f64> {
    let mut buckets: Vec<(f64, u64)> = after
        .buckets
        .iter()
        .filter(|((m, _), _)| m == method)
        .filter_map(|((m, le), count)| {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse::<f64>().ok()?
            };
            let earlier = before
                .buckets
                .get(&(m.clone(), le.clone()))
                .copied()
                .unwrap_or(0);
            Some((bound, count.saturating_sub(earlier)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    // Cumulative buckets: the first whose count reaches 99 % of all calls.
    let needed = (total as f64 * 0.99).ceil() as u64;
    buckets
        .iter()
        .find(|(_, count)| *count >= needed)
        .map(|(bound, _)| bound * 1e3)
}

/// What the server counted for `method` between two scrapes: no code but OK and CANCELLED, and
/// at least `succeeded` OK. Returns the number CANCELLED.
fn check_calls(
    before: &Scrape,
    after: &Scrape,
    method: &str,
    succeeded: u64,
) -> Result<u64, String> {
    let (before, after) = (&before.handled, &after.handled);
    let delta = |code: &str| {
        let key = (method.to_owned(), code.to_owned());
        after
            .get(&key)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(&key).copied().unwrap_or(0))
    };
    let errors: Vec<String> = after
        .keys()
        .filter(|(m, code)| m == method && code != "OK" && code != "CANCELLED")
        .filter_map(|(_, code)| {
            let n = delta(code);
            (n > 0).then(|| format!("{n} × {code}"))
        })
        .collect();
    if !errors.is_empty() {
        return Err(format!(
            "the server answered {method} with errors: {}",
            errors.join(", ")
        ));
    }
    let ok = delta("OK");
    if ok < succeeded {
        return Err(format!(
            "h2load counted {succeeded} successful {method} calls but the server only {ok} OK"
        ));
    }
    Ok(delta("CANCELLED"))
}

// ---------------------------------------------------------------------------------------------
// Output.

impl AuthReport {
    fn login_ratio(&self) -> f64 {
        self.login.req_per_sec / self.bound
    }

    fn flood_ratio(&self) -> f64 {
        self.flood.p99_ms / self.idle.p99_ms
    }

    pub fn table(&self, args: &BenchArgs, out: &mut String) {
        use std::fmt::Write as _;
        let probe_rate = self.probe_clients * self.probe_rps;
        let ms = |secs: f64| secs * 1e3;
        let _ = writeln!(
            out,
            "ironmesh-bench · auth: the real auth service (SQLite, temp dir) · {} s measured after {} s warm-up",
            args.duration, args.warmup
        );
        let _ = writeln!(
            out,
            "server: production runtime, process NOT pinned, all {} cores (the argon2 bound assumes \
             hashing gets every core); h2load: 1 thread per run, NOT pinned (shares those cores)",
            self.cores
        );
        let [before, after] = &self.hashing;
        let _ = writeln!(
            out,
            "argon2id m={MEMORY_KIB} KiB t={ITERATIONS} p={PARALLELISM}, {} hashes one after another \
             on one thread in reused memory, right before / right after the Login run: {:.2} / {:.2} \
             ms/hash (fastest {:.2} / {:.2})",
            self.hashes,
            ms(before.secs_per_hash),
            ms(after.secs_per_hash),
            ms(before.fastest_secs_per_hash),
            ms(after.fastest_secs_per_hash),
        );
        let _ = writeln!(
            out,
            "  bound = {} cores ÷ {:.4} s (mean) = {:.1} logins/s",
            self.cores, self.secs_per_hash, self.bound
        );
        let _ = writeln!(
            out,
            "  no target: hashing the server's way (a worker thread allocating 19 MiB per hash) \
             {:.2} / {:.2} ms/hash; {} threads at once {:.1} / {:.1} hashes/s\n",
            ms(before.server_way_secs_per_hash),
            ms(after.server_way_secs_per_hash),
            self.cores,
            before.parallel_rate,
            after.parallel_rate
        );
        let _ = writeln!(
            out,
            "{:<26} {:>9} {:>9} {:>9} {:>10} {:>14}",
            "RUN", "REQ/S", "P50 MS", "P99 MS", "REQUESTS", "SERVER P99 MS"
        );
        let bucket = |p99: Option<f64>| match p99 {
            Some(v) if v.is_finite() => format!("≤ {v}"),
            Some(_) => "> 10000".to_owned(),
            None => "n/a".to_owned(),
        };
        let rows = [
            (
                format!("Login (-c {} -m 1)", self.login_clients),
                &self.login,
                String::new(),
            ),
            (
                format!("GetMe idle ({probe_rate}/s)"),
                &self.idle,
                bucket(self.idle_server_p99_ms),
            ),
            (
                "GetMe during Login flood".to_owned(),
                &self.flood,
                bucket(self.flood_server_p99_ms),
            ),
            (
                format!("Login flood (-c {})", self.login_clients),
                &self.flood_logins,
                String::new(),
            ),
        ];
        for (name, run, server) in rows {
            let _ = writeln!(
                out,
                "{:<26} {:>9.1} {:>9.3} {:>9.3} {:>10} {:>14}",
                name, run.req_per_sec, run.p50_ms, run.p99_ms, run.requests, server
            );
        }
        let _ = writeln!(out, "\nauth");
        let ratio = self.login_ratio();
        let _ = writeln!(
            out,
            "  logins/s ÷ argon2 bound = {:.1} ÷ {:.1} = {ratio:.2} (target ≥ {TARGET_LOGIN_RATIO:.2}) {}",
            self.login.req_per_sec,
            self.bound,
            verdict(ratio >= TARGET_LOGIN_RATIO)
        );
        if let (Some(per_login), Some(percent)) = (self.cpu_ms_per_login, self.login_cpu_percent) {
            let _ = writeln!(
                out,
                "  server CPU during the Login run: {percent:.0}% of one core, {per_login:.2} ms per login \
                 (one hash ≈ {:.2} ms)",
                ms(self.secs_per_hash)
            );
        }
        let ratio = self.flood_ratio();
        let _ = writeln!(
            out,
            "  GetMe p99 during flood ÷ idle = {:.3} ÷ {:.3} ms = {ratio:.2} (target ≤ {TARGET_FLOOD_P99_RATIO:.2}) {}",
            self.flood.p99_ms,
            self.idle.p99_ms,
            verdict(ratio <= TARGET_FLOOD_P99_RATIO)
        );
        let _ = writeln!(
            out,
            "  (SERVER P99: the server's own handling-time histogram, bucket bound; P99 MS is h2load's, \
             client scheduling included)"
        );
        let _ = writeln!(
            out,
            "checks: Register + Login + GetMe OK over gRPC before and after; every request HTTP 200; \
             the server's handled counters show only OK ({} CANCELLED when a run's time ran out)",
            self.cancelled
        );
    }

    pub fn json(&self) -> Value {
        let run = |r: &Run| {
            json!({
                "req_per_sec": num(r.req_per_sec),
                "requests": r.requests,
                "p50_ms": num(r.p50_ms),
                "p99_ms": num(r.p99_ms),
            })
        };
        let login_ratio = self.login_ratio();
        let flood_ratio = self.flood_ratio();
        json!({
            "cores": self.cores,
            "server_pinned": false,
            "argon2": {
                "memory_kib": MEMORY_KIB,
                "iterations": ITERATIONS,
                "parallelism": PARALLELISM,
                "hashes": self.hashes,
                "before_login_run": self.hashing[0].json(),
                "after_login_run": self.hashing[1].json(),
                "secs_per_hash": num(self.secs_per_hash),
                "bound_logins_per_sec": num(self.bound),
                "parallel_hashes_per_sec": num(self.parallel_rate),
            },
            "login": {
                "rpc": LOGIN_PATH,
                "clients": self.login_clients,
                "streams": 1,
                "run": run(&self.login),
                "server_cpu_ms_per_login": opt_num(self.cpu_ms_per_login),
                "server_cpu_percent": opt_num(self.login_cpu_percent),
                "ratio_to_bound": num(login_ratio),
                "target_ratio_to_bound": TARGET_LOGIN_RATIO,
                "ratio_to_bound_met": login_ratio >= TARGET_LOGIN_RATIO,
                "ratio_to_parallel_rate": num(self.login.req_per_sec / self.parallel_rate),
            },
            "get_me": {
                "rpc": GET_ME_PATH,
                "clients": self.probe_clients,
                "streams": PROBE_STREAMS,
                "rps_per_client": self.probe_rps,
                "idle": run(&self.idle),
                "during_flood": run(&self.flood),
                "idle_server_p99_ms_bucket": opt_num(self.idle_server_p99_ms),
                "during_flood_server_p99_ms_bucket": opt_num(self.flood_server_p99_ms),
                "flood_logins": run(&self.flood_logins),
                "ratio_p99": num(flood_ratio),
                "target_ratio_p99": TARGET_FLOOD_P99_RATIO,
                "ratio_p99_met": flood_ratio <= TARGET_FLOOD_P99_RATIO,
            },
            "cancelled_calls": self.cancelled,
        })
    }
}

impl HashTiming {
    fn json(&self) -> Value {
        json!({
            "secs_per_hash": num(self.secs_per_hash),
            "fastest_secs_per_hash": num(self.fastest_secs_per_hash),
            "server_way_secs_per_hash": num(self.server_way_secs_per_hash),
            "parallel_hashes_per_sec": num(self.parallel_rate),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The server child.

/// `ironmesh-bench --serve auth --serve-dir DIR`: auth through the in-process mesh, on the
/// production runtime, until stdin closes; then it drains. READY: gRPC and admin address.
pub(super) fn serve_child(dir: Option<&Path>) -> ExitCode {
    super::serve_mesh(
        "auth",
        dir,
        |_| {},
        &[ServiceKind::Auth],
        false,
        |running| {
            let auth = running.address(Component::Service(ServiceKind::Auth))?;
            Some(format!("{} {}", auth.main, auth.admin))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = r#"# HELP ironmesh_grpc_server_handled_total gRPC calls completed on the server, by status code.
# TYPE ironmesh_grpc_server_handled_total counter
ironmesh_grpc_server_handled_total{grpc_code="OK",grpc_method="Login",grpc_service="ironmesh.auth.v1.AuthService",service="auth"} 12
ironmesh_grpc_server_handled_total{grpc_code="CANCELLED",grpc_method="Login",grpc_service="ironmesh.auth.v1.AuthService",service="auth"} 1
ironmesh_grpc_server_handled_total{grpc_code="OK",grpc_method="GetMe",grpc_service="ironmesh.auth.v1.AuthService",service="auth"} 5
ironmesh_grpc_server_started_total{grpc_method="Login",grpc_service="ironmesh.auth.v1.AuthService",service="auth"} 14
"#;

    #[test]
    fn handled_counters_and_their_check() {
        let after = Scrape::parse(METRICS);
        let ok = |method: &str| after.handled.get(&(method.into(), "OK".into())).copied();
        assert_eq!(ok("Login"), Some(12));
        assert_eq!(ok("GetMe"), Some(5));
        assert_eq!(after.handled.len(), 3);
        let before = Scrape::default();
        assert_eq!(check_calls(&before, &after, "Login", 12), Ok(1));
        assert!(check_calls(&before, &after, "Login", 13).is_err());
        let failing = format!(
            "{METRICS}ironmesh_grpc_server_handled_total{{grpc_code=\"INTERNAL\",grpc_method=\"Login\",grpc_service=\"x\",service=\"auth\"}} 1\n"
        );
        assert!(check_calls(&before, &Scrape::parse(&failing), "Login", 1).is_err());
        // Errors from before the window do not count.
        assert_eq!(
            check_calls(
                &Scrape::parse(&failing),
                &Scrape::parse(&failing),
                "Login",
                0
            ),
            Ok(0)
        );
    }

    #[test]
    fn server_p99_from_the_histogram() {
        let bucket = |le: &str, n: u64| {
            format!(
                "ironmesh_grpc_server_handling_seconds_bucket{{grpc_method=\"GetMe\",grpc_service=\"x\",service=\"auth\",le=\"{le}\"}} {n}\n"
            )
        };
        let before =
            Scrape::parse(&[bucket("0.001", 50), bucket("0.005", 50), bucket("+Inf", 50)].concat());
        let after = Scrape::parse(
            &[
                bucket("0.001", 140),
                bucket("0.005", 150),
                bucket("+Inf", 150),
            ]
            .concat(),
        );
        // 100 calls in the window, 90 within 1 ms, all within 5 ms.
        assert_eq!(server_p99_ms(&before, &after, "GetMe"), Some(5.0));
        assert_eq!(server_p99_ms(&after, &after, "GetMe"), None);
        let slow = Scrape::parse(&[bucket("0.001", 0), bucket("+Inf", 100)].concat());
        assert_eq!(
            server_p99_ms(&Scrape::default(), &slow, "GetMe"),
            Some(f64::INFINITY)
        );
    }

    #[test]
    fn login_frame_is_prefixed() {
        let frame = login_frame();
        assert_eq!(frame[0], 0);
        let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        assert_eq!(len, frame.len() - 5);
        let decoded = LoginRequest::decode(&frame[5..]).unwrap();
        assert_eq!(decoded.email, EMAIL);
    }
}
