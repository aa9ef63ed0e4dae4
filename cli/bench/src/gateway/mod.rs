//! The `gateway` suite: one cheap public RPC, auth's `GetJwks`, called directly over gRPC and
//! through the REST gateway, in one run (see the module docs of `bench`).
//!
//! # Layout
//! - `mod.rs` (this file): the measurement (four runs: direct and REST, under load and one
//!   request at a time) and the server child (the whole mesh).
//! - [`checks`]: the answers both ways around every run, the exact-body check of every response,
//!   and auth's handled counters.
//! - [`report`]: the suite's table section and JSON.

mod checks;
mod report;

use std::path::Path;
use std::process::ExitCode;

use ironmesh_launcher::mesh::Component;
use ironmesh_runtime::ServiceKind;

use self::checks::{Answer, check_direct, check_rest, cut_calls};
use crate::args::{BenchArgs, RestProtocol};
use crate::calls::calls_runtime;
use crate::child::{ServerChild, mesh_data_dir};
use crate::error::BenchError;
use crate::figures::{Measured, failed_run, read_run};
use crate::frame::{EMPTY_FRAME, write_frame};
use crate::h2load::{Call, Load, Summary};
use crate::scrape::{Codes, scrape};

/// The RPC, as gRPC and as its REST binding (`google.api.http` `get: "/v1/auth/jwks"`).
const GRPC_PATH: &str = "/ironmesh.auth.v1.AuthService/GetJwks";
const REST_PATH: &str = "/v1/auth/jwks";
const METHOD: &str = "GetJwks";
/// Target from the gateway issue: REST req/s ÷ direct gRPC req/s.
const TARGET_RPS_RATIO: f64 = 0.60;
/// The gateway's rate limit in the bench: so high it never refuses (one address sends all the
/// load), but still checked on every request, as in production.
const UNLIMITED: u32 = 1_000_000_000;

/// One run's shape (h2load `-c`, `-m`) and what it measured.
#[derive(Debug)]
struct Measurement {
    clients: u32,
    streams: u32,
    measured: Measured,
}

#[derive(Debug)]
pub struct GatewayReport {
    server_cpu: usize,
    load_cpu: usize,
    rest_protocol: RestProtocol,
    /// Keys in the JWKS, and the size of one answer: gRPC frame, REST JSON body.
    keys: usize,
    grpc_frame_bytes: u64,
    rest_body_bytes: u64,
    /// Under load: `-c clients -m streams` (REST over HTTP/1.1: the same number of
    /// connections, one request each).
    direct: Measurement,
    rest: Measurement,
    /// One request at a time (`-c 1 -m 1`): latency without queueing.
    direct_single: Measurement,
    rest_single: Measurement,
    /// How auth ended the calls h2load cut when its time ran out (not OK), by code.
    cut_codes: Codes,
    /// What the server process wrote to stderr (its log).
    server_log: String,
    /// The mesh process's resident memory (KiB) once ready, and after every run.
    rss_idle_kib: Option<u64>,
    rss_after_kib: Option<u64>,
}

/// Runs the suite against a fresh mesh (every service and the gateway) in one pinned process.
pub fn measure(args: &BenchArgs, workdir: &Path) -> Result<GatewayReport, BenchError> {
    crate::require_pinning(args)?;
    let data_dir = mesh_data_dir(workdir, "gateway")?;
    // An empty `GetJwksRequest`.
    let body = workdir.join("get-jwks.bin");
    write_frame(&body, &EMPTY_FRAME)?;

    crate::progress(
        args,
        &format!(
            "starting the mesh (6 services + gateway, SQLite) pinned to CPU {}…",
            args.server_cpu
        ),
    );
    let server = ServerChild::start_mesh(Some(args.server_cpu), "gateway", &data_dir, workdir)?;
    let [grpc, rest, admin] = server.ready_addrs::<3>()?;
    let rss_idle_kib = server.rss_kib();
    // Declared after `server`, so it is dropped (closing its connections) before it.
    let runtime = calls_runtime()?;
    let failed = |what: String| move |why: String| BenchError::Failed(format!("{what}: {why}"));

    let answers = || -> Result<(usize, u64, u64), BenchError> {
        let (kids, grpc_frame_bytes) = runtime
            .block_on(check_direct(grpc))
            .map_err(failed(format!("GetJwks over gRPC ({grpc})")))?;
        let (rest_kids, rest_body_bytes) = runtime
            .block_on(check_rest(rest))
            .map_err(failed(format!("GET {REST_PATH} ({rest})")))?;
        if rest_kids != kids {
            return Err(BenchError::Failed(format!(
                "GET {REST_PATH} lists keys {rest_kids:?}, gRPC GetJwks {kids:?}"
            )));
        }
        Ok((kids.len(), grpc_frame_bytes, rest_body_bytes))
    };
    let (keys, grpc_frame_bytes, rest_body_bytes) = answers()?;
    let metrics = || {
        runtime
            .block_on(scrape(admin))
            .map_err(failed("auth metrics".to_owned()))
    };

    let h1 = args.gateway_rest == RestProtocol::H1;
    let grpc_url = format!("http://{grpc}{GRPC_PATH}");
    let rest_url = format!("http://{rest}{REST_PATH}");
    let load = |call, url: &str, clients, streams| Load {
        cpu: Some(args.load_cpu),
        clients,
        streams,
        rps: None,
        secs: args.duration,
        call,
        headers: Vec::new(),
        url: url.to_owned(),
    };
    // The same number of requests in flight both ways. HTTP/1.1 carries one request at a time
    // per connection (h2load would pipeline with `-m` > 1, which REST clients do not do).
    let in_flight = args.clients.saturating_mul(args.streams);
    let (rest_clients, rest_streams) = if h1 {
        (in_flight, 1)
    } else {
        (args.clients, args.streams)
    };
    let grpc_call = Call::Grpc(&body);
    let rest_call = Call::Get { h1 };
    let runs = [
        (
            "direct",
            load(grpc_call, &grpc_url, args.clients, args.streams),
            Answer::Frame(grpc_frame_bytes),
        ),
        (
            "rest",
            load(rest_call, &rest_url, rest_clients, rest_streams),
            Answer::Json(rest_body_bytes),
        ),
        (
            "direct-single",
            load(grpc_call, &grpc_url, 1, 1),
            Answer::Frame(grpc_frame_bytes),
        ),
        (
            "rest-single",
            load(rest_call, &rest_url, 1, 1),
            Answer::Json(rest_body_bytes),
        ),
    ];
    let mut cut_codes = Codes::new();
    let mut measured = Vec::with_capacity(runs.len());
    for (name, load, answer) in &runs {
        crate::progress(
            args,
            &format!(
                "{name}: {} -c {} -m {} ({} s warm-up + {} s)…",
                load.url, load.clients, load.streams, args.warmup, args.duration
            ),
        );
        // Requests the warm-up cuts when its time runs out may end on the server just after it
        // exits, inside the measured window: they are allowed for below.
        let mut cut = 0;
        if let Some(output) = load.warm_up(args.warmup)? {
            let summary =
                Summary::parse(&output).map_err(failed_run(&format!("{name} warm-up"), &output))?;
            cut += summary.started.saturating_sub(summary.done);
        }
        let before = metrics()?;
        let log = workdir.join(format!("gateway-{name}.log"));
        let (output, cpu) = server.cpu_during(|| load.run(Some(&log)))?;
        let after = metrics()?;
        let run = read_run(&output, &log, name, None)?;
        // Every answer exactly the one checked before.
        let summary = Summary::parse(&output)
            .and_then(|summary| answer.check(&summary).map(|()| summary))
            .map_err(failed_run(name, &output))?;
        cut += summary.started.saturating_sub(summary.done);
        // And auth really answered each one (nothing served from a cache on the way).
        let ends = cut_calls(&before, &after, run.requests, cut)
            .map_err(failed(format!("{name}: auth ({grpc}) GetJwks")))?;
        for (code, n) in ends {
            *cut_codes.entry(code).or_default() += n;
        }
        measured.push(Measurement {
            clients: load.clients,
            streams: load.streams,
            measured: Measured::new(run, cpu, args.duration),
        });
        let again = answers()?;
        if again != (keys, grpc_frame_bytes, rest_body_bytes) {
            return Err(BenchError::Failed(format!(
                "after {name}: the JWKS changed during the run ({again:?})"
            )));
        }
    }
    drop(runtime);
    let rss_after_kib = server.rss_kib();
    let server_log = server.stop();
    let mut measured = measured.into_iter();
    let mut next = || {
        measured
            .next()
            .ok_or_else(|| BenchError::Failed("a run is missing".to_owned()))
    };
    Ok(GatewayReport {
        server_cpu: args.server_cpu,
        load_cpu: args.load_cpu,
        rest_protocol: args.gateway_rest,
        keys,
        grpc_frame_bytes,
        rest_body_bytes,
        direct: next()?,
        rest: next()?,
        direct_single: next()?,
        rest_single: next()?,
        cut_codes,
        server_log,
        rss_idle_kib,
        rss_after_kib,
    })
}

/// `ironmesh-bench --serve gateway --serve-dir DIR`: every service and the gateway through the
/// in-process mesh, on the production runtime, until stdin closes. READY: auth's gRPC address,
/// the gateway's REST address, auth's admin address.
pub fn serve_child(dir: Option<&Path>) -> ExitCode {
    let unlimited = |config: &mut ironmesh_runtime::Config| {
        config
            .update_section(|gateway: &mut ironmesh_gateway::GatewayConfig| {
                gateway.rate_limit_per_sec = UNLIMITED;
                gateway.rate_limit_burst = UNLIMITED;
                // The bench's path is in the default `auth` route group: same budget there.
                for group in &mut gateway.route_limits {
                    group.per_sec = UNLIMITED;
                    group.burst = UNLIMITED;
                }
            })
            .expect("unlimited rates are valid");
    };
    crate::serve::serve_mesh(
        "gateway",
        dir,
        unlimited,
        &ServiceKind::ALL,
        true,
        |running| {
            let auth = running.address(Component::Service(ServiceKind::Auth))?;
            let gateway = running.address(Component::Gateway)?;
            Some(format!("{} {} {}", auth.main, gateway.main, auth.admin))
        },
    )
}
