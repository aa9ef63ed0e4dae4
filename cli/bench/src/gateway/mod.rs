//! The `gateway` suite: one cheap public RPC, auth's `GetJwks`, called directly over gRPC and
//! through the REST gateway, and through grpc-gateway (v1) as a peer when it can be built, in
//! one run (see the module docs of `bench`).
//!
//! # Layout
//! - `mod.rs` (this file): the measurement (direct, REST and peer REST under load, then the same
//!   one request at a time) and the server child (the whole mesh).
//! - [`checks`]: the answers every way around every run, the exact-body check of every
//!   response, and auth's handled counters.
//! - [`peer`]: the grpc-gateway peer: finding or building its binary, running it pinned beside
//!   the mesh, its CPU time.
//! - [`report`]: the suite's table section and JSON.
//! - [`soak`]: `--soak-secs`: the mesh's memory over a long REST load after the runs.

mod checks;
mod peer;
mod report;
mod soak;

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use ironmesh_launcher::mesh::Component;
use ironmesh_runtime::ServiceKind;

use self::checks::{Answer, check_direct, check_rest, cut_calls};
use self::peer::{PeerOutcome, PeerRuns, RunningPeer};
use self::soak::Soak;
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
/// Target from the peer issue: Ironmesh's gateway CPU per REST request (REST − direct) ÷
/// grpc-gateway's (its process alone), on the same RPC in the same run.
const TARGET_PEER_CPU_RATIO: f64 = 0.50;
/// The gateway's rate limit in the bench: so high it never refuses (one address sends all the
/// load), but still checked on every request, as in production.
const UNLIMITED: u32 = 1_000_000_000;

/// One run's shape (h2load `-c`, `-m`) and what it measured.
#[derive(Debug)]
struct Measurement {
    clients: u32,
    streams: u32,
    /// The mesh process's figures.
    measured: Measured,
    /// The grpc-gateway peer process's CPU over the run, per request (µs) and in % of a core
    /// (None: no peer running, or /proc could not tell).
    peer_cpu_us_per_call: Option<f64>,
    peer_cpu_percent: Option<f64>,
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
    /// The grpc-gateway peer's runs (REST under the REST run's load, then one at a time), or
    /// why it was not run.
    peer: PeerOutcome,
    /// How auth ended the calls h2load cut when its time ran out (not OK), by code.
    cut_codes: Codes,
    /// What the server process wrote to stderr (its log).
    server_log: String,
    /// The mesh process's resident memory (KiB) once ready, and after every run.
    rss_idle_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    /// `--soak-secs`: the mesh's memory over a long REST load after the runs.
    soak: Option<Soak>,
}

/// Runs the suite against a fresh mesh (every service and the gateway) in one pinned process.
pub fn measure(args: &BenchArgs, workdir: &Path) -> Result<GatewayReport, BenchError> {
    crate::require_pinning(args)?;
    let data_dir = mesh_data_dir(workdir, "gateway")?;
    // An empty `GetJwksRequest`.
    let body = workdir.join("get-jwks.bin");
    write_frame(&body, &EMPTY_FRAME)?;
    // Before the mesh starts: a build takes a minute or two of every core.
    let peer_binary = peer::find(args, workdir, |message| crate::progress(args, message));

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

    let answers = || -> Result<(Vec<String>, u64, u64), BenchError> {
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
        Ok((kids, grpc_frame_bytes, rest_body_bytes))
    };
    let first = answers()?;
    let (kids, grpc_frame_bytes, rest_body_bytes) = first.clone();
    // Declared after `server` and `runtime`: dropped (killed) before them, also on errors.
    let peer = peer_binary.and_then(|binary| {
        crate::progress(
            args,
            &format!(
                "starting the grpc-gateway peer {} pinned to CPU {} (backend auth {grpc})…",
                binary.display(),
                args.server_cpu
            ),
        );
        RunningPeer::start(args, workdir, binary, grpc, &kids, &runtime)
    });
    if let Err(why) = &peer {
        crate::progress(args, &format!("grpc-gateway peer: not run ({why})"));
    }
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
    // The peer's runs right after Ironmesh's, with exactly their load.
    let peer_runs = peer.as_ref().ok().map(|peer| {
        let url = format!("http://{}{REST_PATH}", peer.child.addr());
        let answer = Answer::Json(peer.body_bytes);
        (
            (
                "peer-rest",
                load(rest_call, &url, rest_clients, rest_streams),
                answer,
            ),
            ("peer-rest-single", load(rest_call, &url, 1, 1), answer),
        )
    });
    let (peer_rest, peer_single) = peer_runs.unzip();
    let soak_load = load(rest_call, &rest_url, rest_clients, rest_streams);
    let runs: Vec<_> = [
        Some((
            "direct",
            load(grpc_call, &grpc_url, args.clients, args.streams),
            Answer::Frame(grpc_frame_bytes),
        )),
        Some((
            "rest",
            load(rest_call, &rest_url, rest_clients, rest_streams),
            Answer::Json(rest_body_bytes),
        )),
        peer_rest,
        Some((
            "direct-single",
            load(grpc_call, &grpc_url, 1, 1),
            Answer::Frame(grpc_frame_bytes),
        )),
        Some((
            "rest-single",
            load(rest_call, &rest_url, 1, 1),
            Answer::Json(rest_body_bytes),
        )),
        peer_single,
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut cut_codes = Codes::new();
    let mut measured = HashMap::with_capacity(runs.len());
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
        // The mesh's CPU and, while it runs, the peer's (idle but for its own runs).
        let ((output, peer_cpu), cpu) = server.cpu_during(|| match &peer {
            Ok(peer) => peer
                .child
                .cpu_during(|| load.run(Some(&log)))
                .map(|(output, cpu)| (output, Some(cpu))),
            Err(_) => load.run(Some(&log)).map(|output| (output, None)),
        })?;
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
        let requests = run.requests;
        measured.insert(
            *name,
            Measurement {
                clients: load.clients,
                streams: load.streams,
                measured: Measured::new(run, cpu, args.duration),
                peer_cpu_us_per_call: peer_cpu.and_then(|cpu| cpu.per_call(requests, 1e6)),
                peer_cpu_percent: peer_cpu.and_then(|cpu| cpu.percent(args.duration)),
            },
        );
        let again = answers()?;
        if again != first {
            return Err(BenchError::Failed(format!(
                "after {name}: the JWKS changed during the run ({again:?})"
            )));
        }
        if let Ok(peer) = &peer {
            peer.check_again(&runtime, &kids, name)?;
        }
    }
    let mut take = |name: &str| {
        measured
            .remove(name)
            .ok_or_else(|| BenchError::Failed(format!("the {name} run is missing")))
    };
    let peer = match peer {
        Ok(RunningPeer {
            child,
            binary,
            body_bytes,
        }) => {
            let addr = child.addr();
            // Stopped by its PID (kill, wait) before the mesh.
            drop(child);
            PeerOutcome::Ran(Box::new(PeerRuns {
                binary,
                addr,
                body_bytes,
                rest: take("peer-rest")?,
                rest_single: take("peer-rest-single")?,
            }))
        }
        Err(why) => PeerOutcome::NotRun(why),
    };
    let direct = take("direct")?;
    let rest = take("rest")?;
    let direct_single = take("direct-single")?;
    let rest_single = take("rest-single")?;
    drop(runtime);
    let rss_after_kib = server.rss_kib();
    let soak = match args.soak_secs {
        0 => None,
        secs => {
            crate::progress(args, &format!("memory soak: {secs} s of {rest_url}…"));
            Some(Soak::run(&server, &soak_load, secs, workdir)?)
        }
    };
    let server_log = server.stop();
    Ok(GatewayReport {
        server_cpu: args.server_cpu,
        load_cpu: args.load_cpu,
        rest_protocol: args.gateway_rest,
        keys: kids.len(),
        grpc_frame_bytes,
        rest_body_bytes,
        direct,
        rest,
        direct_single,
        rest_single,
        peer,
        cut_codes,
        server_log,
        rss_idle_kib,
        rss_after_kib,
        soak,
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
