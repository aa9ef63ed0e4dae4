//! The `auth` suite: login throughput against the argon2 bound measured in the same run, and the
//! p99 of a cheap authenticated RPC (GetMe) during a login flood (see the module docs of `bench`).
//!
//! # Layout
//! - `mod.rs` (this file): the measurement (GetMe idle, Login bracketed by the bound, GetMe
//!   during a Login flood) and the server child.
//! - [`argon2`]: the argon2id hashing timed for the bound.
//! - [`checks`]: the real calls around every run and the server's handled counters.
//! - [`report`]: the suite's table section and JSON.

mod argon2;
mod checks;
mod report;

use std::path::Path;
use std::process::ExitCode;

use ironmesh_launcher::mesh::Component;
use ironmesh_proto::ironmesh::auth::v1::LoginRequest;
use ironmesh_runtime::ServiceKind;
use prost::Message;

use self::argon2::{HashTiming, ITERATIONS, MEMORY_KIB, PARALLELISM, time_hashing};
use self::checks::{check_calls, check_get_me, log_in, sign_up};
use crate::args::BenchArgs;
use crate::calls::{bearer_header, calls_runtime};
use crate::child::{ServerChild, mesh_data_dir};
use crate::error::BenchError;
use crate::figures::{Run, read_run};
use crate::frame::{EMPTY_FRAME, grpc_frame, write_frame};
use crate::h2load::{Call, Load};
use crate::scrape::{scrape, server_p99_ms};

const LOGIN_PATH: &str = "/ironmesh.auth.v1.AuthService/Login";
const GET_ME_PATH: &str = "/ironmesh.auth.v1.AuthService/GetMe";
const LOGIN_METHOD: &str = "Login";
const GET_ME_METHOD: &str = "GetMe";
/// The one bench user.
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct horse battery staple";
/// Targets from the issue.
const TARGET_LOGIN_RATIO: f64 = 0.80;
const TARGET_FLOOD_P99_RATIO: f64 = 1.50;
/// Streams per GetMe probe connection: room for a slow answer without delaying the next request.
const PROBE_STREAMS: u32 = 4;
/// The login flood outlasts the probe by this much, so the whole probe runs under it.
const FLOOD_MARGIN_SECS: u64 = 2;

#[derive(Debug)]
pub struct AuthReport {
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
    server_log: String,
}

/// Runs the suite against a fresh auth server.
pub fn measure(args: &BenchArgs, workdir: &Path) -> Result<AuthReport, BenchError> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let login_clients = args
        .login_clients
        .unwrap_or_else(|| u32::try_from(2 * cores).unwrap_or(u32::MAX));
    let data_dir = mesh_data_dir(workdir, "auth")?;
    let login_body = workdir.join("login.bin");
    write_frame(&login_body, &login_frame())?;
    let get_me_body = workdir.join("get-me.bin");
    write_frame(&get_me_body, &EMPTY_FRAME)?;

    crate::progress(args, "starting the auth service (unpinned, SQLite)…");
    let server = ServerChild::start_mesh(None, "auth", &data_dir, workdir)?;
    let [grpc, admin] = server.ready_addrs::<2>()?;
    // Declared after `server`, so it is dropped (closing its connections) before it.
    let runtime = calls_runtime()?;
    let failed = |what: &str| {
        let what = what.to_owned();
        move |why: String| BenchError::Failed(format!("auth ({grpc}) {what}: {why}"))
    };
    let token = runtime
        .block_on(sign_up(grpc))
        .map_err(failed("register + login"))?;
    let metrics = || runtime.block_on(scrape(admin)).map_err(failed("metrics"));

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
        headers: vec![bearer_header(&token)],
        url: format!("http://{grpc}{GET_ME_PATH}"),
    };
    let mut cancelled = 0;

    // 1. GetMe, idle.
    runtime
        .block_on(check_get_me(grpc, &token))
        .map_err(failed("GetMe before the idle run"))?;
    crate::progress(
        args,
        &format!(
            "GetMe idle at {} req/s ({} s warm-up + {} s)…",
            args.probe_clients * args.probe_rps,
            args.warmup,
            args.duration
        ),
    );
    let before = metrics()?;
    let idle = run_measured(args, &probe_load, &workdir.join("get-me-idle.log"))?;
    let after = metrics()?;
    cancelled += check_calls(&before, &after, GET_ME_METHOD, idle.requests)
        .map_err(failed("idle GetMe run"))?;
    let idle_server_p99_ms = server_p99_ms(&before, &after, GET_ME_METHOD);

    // 2. Login throughput, bracketed by the bound: hashing timed while the server idles, right
    // before and right after, so drift of a shared machine shows and averages out.
    runtime
        .block_on(log_in(grpc))
        .map_err(failed("Login before the throughput run"))?;
    crate::progress(
        args,
        &format!(
            "timing {} argon2id hashes (m={MEMORY_KIB} KiB, t={ITERATIONS}, p={PARALLELISM})…",
            args.hashes
        ),
    );
    let hashing_before = time_hashing(args.hashes, cores)?;
    crate::progress(
        args,
        &format!(
            "Login flood, {login_clients} concurrent ({} s warm-up + {} s)…",
            args.warmup, args.duration
        ),
    );
    login_load.warm_up(args.warmup)?;
    let before = metrics()?;
    let (output, cpu) = server.cpu_during(|| login_load.run(Some(&workdir.join("login.log"))))?;
    let after = metrics()?;
    let login = read_run(&output, &workdir.join("login.log"), "Login", None)?;
    cancelled += check_calls(&before, &after, LOGIN_METHOD, login.requests)
        .map_err(failed("Login throughput run"))?;
    let hashing_after = time_hashing(args.hashes, cores)?;
    let secs_per_hash = (hashing_before.secs_per_hash + hashing_after.secs_per_hash) / 2.0;
    let parallel_rate = (hashing_before.parallel_rate + hashing_after.parallel_rate) / 2.0;

    // 3. GetMe during a login flood.
    runtime
        .block_on(check_get_me(grpc, &token))
        .map_err(failed("GetMe before the flood run"))?;
    crate::progress(
        args,
        &format!(
            "GetMe at {} req/s during a Login flood ({} s warm-up + {} s)…",
            args.probe_clients * args.probe_rps,
            args.warmup,
            args.duration
        ),
    );
    let before = metrics()?;
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
    let after = metrics()?;
    let flood_logins = read_run(&flood_output, &flood_log, "Login flood", None)?;
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
    let server_log = server.stop();

    Ok(AuthReport {
        cores,
        hashes: args.hashes,
        hashing: [hashing_before, hashing_after],
        secs_per_hash,
        bound: cores as f64 / secs_per_hash,
        parallel_rate,
        login_clients,
        cpu_ms_per_login: cpu.per_call(login.requests, 1e3),
        login_cpu_percent: cpu.percent(args.duration),
        login,
        probe_clients: args.probe_clients,
        probe_rps: args.probe_rps,
        idle,
        flood: flood_probe,
        idle_server_p99_ms,
        flood_server_p99_ms,
        flood_logins,
        cancelled,
        server_log,
    })
}

/// Warm-up (unmeasured), then the measured run with a per-request log.
fn run_measured(args: &BenchArgs, load: &Load<'_>, log: &Path) -> Result<Run, BenchError> {
    load.warm_up(args.warmup)?;
    let output = load.run(Some(log))?;
    read_run(&output, log, "GetMe", None)
}

/// The bench user's `LoginRequest`, as the check calls and h2load send it.
fn login_request() -> LoginRequest {
    LoginRequest {
        email: EMAIL.to_owned(),
        password: PASSWORD.to_owned(),
        ..Default::default()
    }
}

/// The encoded `LoginRequest` of the bench user.
fn login_frame() -> Vec<u8> {
    grpc_frame(&login_request().encode_to_vec())
}

/// `ironmesh-bench --serve auth --serve-dir DIR`: auth through the in-process mesh, on the
/// production runtime, until stdin closes; then it drains. READY: gRPC and admin address.
pub fn serve_child(dir: Option<&Path>) -> ExitCode {
    crate::serve::serve_mesh(
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
