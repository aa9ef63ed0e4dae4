//! The `gateway` suite: one cheap public RPC, auth's `GetJwks`, called directly over gRPC and
//! through the REST gateway, in one run (see the module docs of `bench`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ironmesh_launcher::mesh::Component;
use ironmesh_proto::ironmesh::auth::v1::GetJwksRequest;
use ironmesh_proto::ironmesh::auth::v1::auth_service_client::AuthServiceClient;
use ironmesh_runtime::ServiceKind;
use prost::Message;
use serde_json::{Value, json};

use super::auth::{Run, Scrape, read_run, scrape};
use super::h2load::{Call, Load, Summary};
use super::{
    BenchArgs, BenchError, RestProtocol, ServerChild, connect, grpc_failure, num, opt_num, verdict,
};

/// The RPC, as gRPC and as its REST binding (`google.api.http` `get: "/v1/auth/jwks"`).
const GRPC_PATH: &str = "/ironmesh.auth.v1.AuthService/GetJwks";
const REST_PATH: &str = "/v1/auth/jwks";
const METHOD: &str = "GetJwks";
/// An empty `GetJwksRequest` as one gRPC frame.
const REQUEST_FRAME: [u8; 5] = [0; 5];
/// Target from the gateway issue: REST req/s ÷ direct gRPC req/s.
const TARGET_RPS_RATIO: f64 = 0.60;
/// The gateway's rate limit in the bench: so high it never refuses (one address sends all the
/// load), but still checked on every request, as in production.
const UNLIMITED: u32 = 1_000_000_000;
/// How long the child may take to drain and stop once asked (its grace is 5 s).
const STOP_WAIT: Duration = Duration::from_secs(15);

/// What every response of a run must carry.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// gRPC: exactly one response frame of this size per request. An error answer is
    /// trailers-only with HTTP 200 and no body, so the total is what proves grpc-status 0.
    Frame(u64),
    /// REST: HTTP 200 (every logged request) and the JSON body of this size. h2load's data
    /// total may also hold the bodies of requests still completing when `-D` ran out (seen
    /// over HTTP/1.1), which it does not count as done: whole bodies, at most one per request
    /// it sent.
    Json(u64),
}

impl Answer {
    fn check(self, summary: &Summary) -> Result<(), String> {
        match self {
            Self::Frame(bytes) => summary.check(Some(bytes)),
            Self::Json(bytes) => {
                summary.check(None)?;
                let bytes = bytes.max(1);
                let bodies = summary.data_bytes / bytes;
                if !summary.data_bytes.is_multiple_of(bytes)
                    || !(summary.succeeded..=summary.started).contains(&bodies)
                {
                    return Err(format!(
                        "response bodies total {} bytes: not whole {bytes}-byte JSON answers, one \
                         for each of the {} requests that succeeded (or at most the {} sent)",
                        summary.data_bytes, summary.succeeded, summary.started
                    ));
                }
                Ok(())
            }
        }
    }
}

/// One h2load run and what the server process spent on it.
#[derive(Debug)]
struct Measured {
    clients: u32,
    streams: u32,
    run: Run,
    /// Server-process CPU time per request, if /proc could tell.
    cpu_us_per_call: Option<f64>,
    /// Server-process CPU use over the run, in % of one core.
    cpu_percent: Option<f64>,
}

#[derive(Debug)]
pub(super) struct GatewayReport {
    server_cpu: usize,
    load_cpu: usize,
    rest_protocol: RestProtocol,
    /// Keys in the JWKS, and the size of one answer: gRPC frame, REST JSON body.
    keys: usize,
    grpc_frame_bytes: u64,
    rest_body_bytes: u64,
    /// Under load: `-c clients -m streams` (REST over HTTP/1.1: the same number of
    /// connections, one request each).
    direct: Measured,
    rest: Measured,
    /// One request at a time (`-c 1 -m 1`): latency without queueing.
    direct_single: Measured,
    rest_single: Measured,
    /// How auth ended the calls h2load cut when its time ran out (not OK), by code.
    cut_codes: BTreeMap<String, u64>,
    /// What the server process wrote to stderr (its log).
    pub server_log: String,
}

/// Runs the suite against a fresh mesh (every service and the gateway) in one pinned process.
pub(super) fn measure(args: &BenchArgs, workdir: &Path) -> Result<GatewayReport, BenchError> {
    super::require_tool("taskset", "util-linux")?;
    if args.server_cpu == args.load_cpu {
        return Err(BenchError::Usage(format!(
            "--server-cpu and --load-cpu must differ (both are {})",
            args.server_cpu
        )));
    }
    let data_dir = workdir.join("gateway-data");
    std::fs::create_dir_all(&data_dir).map_err(BenchError::io(format!(
        "cannot create {}",
        data_dir.display()
    )))?;
    let body = workdir.join("get-jwks.bin");
    std::fs::write(&body, REQUEST_FRAME).map_err(BenchError::io(format!(
        "cannot write the request body {}",
        body.display()
    )))?;

    super::progress(
        args,
        &format!(
            "starting the mesh (6 services + gateway, SQLite) pinned to CPU {}…",
            args.server_cpu
        ),
    );
    let server_log = workdir.join("gateway-server.log");
    let server = ServerChild::start(
        Some(args.server_cpu),
        &[
            std::ffi::OsStr::new("--serve"),
            std::ffi::OsStr::new("gateway"),
            std::ffi::OsStr::new("--serve-dir"),
            data_dir.as_os_str(),
        ],
        &server_log,
        STOP_WAIT,
    )?;
    let [grpc, rest, admin] = server.ready_addrs::<3>()?;
    // Declared after `server`, so it is dropped (closing its connections) before it.
    let runtime = super::calls_runtime()?;
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
    let mut cut_codes = BTreeMap::new();
    let mut measured = Vec::with_capacity(runs.len());
    for (name, load, answer) in &runs {
        super::progress(
            args,
            &format!(
                "{name}: {} -c {} -m {} ({} s warm-up + {} s)…",
                load.url, load.clients, load.streams, args.warmup, args.duration
            ),
        );
        // A separate h2load run rather than `--warm-up-time`: h2load counts the warm-up's
        // response bytes in its `data` total but not its requests, which would break the exact
        // body check. Requests it cuts when its time runs out may end on the server just after
        // it exits, inside the measured window: they are allowed for below.
        let mut cut = 0;
        if args.warmup > 0 {
            let mut warm = load.clone();
            warm.secs = args.warmup;
            let output = warm.run(None)?;
            let summary = Summary::parse(&output).map_err(|why| {
                BenchError::Failed(format!(
                    "{name} warm-up: {why}\n--- h2load output ---\n{output}"
                ))
            })?;
            cut += summary.started.saturating_sub(summary.done);
        }
        let before = runtime
            .block_on(scrape(admin))
            .map_err(failed("auth metrics".to_owned()))?;
        let log = workdir.join(format!("gateway-{name}.log"));
        let cpu_before = server.cpu_time();
        let output = load.run(Some(&log))?;
        let cpu_after = server.cpu_time();
        let after = runtime
            .block_on(scrape(admin))
            .map_err(failed("auth metrics".to_owned()))?;
        let run = read_run(&output, &log, name)?;
        // Every answer exactly the one checked before.
        let summary = Summary::parse(&output)
            .and_then(|summary| answer.check(&summary).map(|()| summary))
            .map_err(|why| {
                BenchError::Failed(format!("{name}: {why}\n--- h2load output ---\n{output}"))
            })?;
        cut += summary.started.saturating_sub(summary.done);
        // And auth really answered each one (nothing served from a cache on the way).
        let ends = cut_calls(&before, &after, run.requests, cut)
            .map_err(failed(format!("{name}: auth ({grpc}) GetJwks")))?;
        for (code, n) in ends {
            *cut_codes.entry(code).or_default() += n;
        }
        let cpu = cpu_before
            .zip(cpu_after)
            .map(|(before, after)| after.saturating_sub(before).as_secs_f64());
        measured.push(Measured {
            clients: load.clients,
            streams: load.streams,
            cpu_us_per_call: cpu
                .filter(|_| run.requests > 0)
                .map(|cpu| cpu * 1e6 / run.requests as f64),
            cpu_percent: cpu.map(|cpu| 100.0 * cpu / args.duration as f64),
            run,
        });
        let again = answers()?;
        if again != (keys, grpc_frame_bytes, rest_body_bytes) {
            return Err(BenchError::Failed(format!(
                "after {name}: the JWKS changed during the run ({again:?})"
            )));
        }
    }
    drop(runtime);
    drop(server);
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
        server_log: std::fs::read_to_string(&server_log).unwrap_or_default(),
    })
}

/// One GetJwks over gRPC that must answer OK with at least one key; returns the key ids and
/// the size of the answer as one gRPC frame.
async fn check_direct(addr: SocketAddr) -> Result<(Vec<String>, u64), String> {
    let response = AuthServiceClient::new(connect(addr).await?)
        .get_jwks(GetJwksRequest {})
        .await
        .map_err(|status| grpc_failure("GetJwks", &status))?
        .into_inner();
    if response.keys.is_empty() {
        return Err("GetJwks answered OK without a key".to_owned());
    }
    let frame = 5 + response.encoded_len() as u64;
    Ok((
        response.keys.into_iter().map(|key| key.kid).collect(),
        frame,
    ))
}

/// One `GET /v1/auth/jwks` through the gateway that must answer 200 with a JSON `keys` list;
/// returns the key ids and the size of the body.
async fn check_rest(addr: SocketAddr) -> Result<(Vec<String>, u64), String> {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{REST_PATH}"))
        .timeout(super::CALL_TIMEOUT)
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|err| err.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!(
            "HTTP {status}, not 200: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let json: Value = serde_json::from_slice(&body).map_err(|err| format!("not JSON: {err}"))?;
    let kids: Vec<String> = json
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no `keys` list in {json}"))?
        .iter()
        .map(|key| key.get("kid").and_then(Value::as_str).map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("a key without `kid` in {json}"))?;
    if kids.is_empty() {
        return Err("200 with an empty `keys` list".to_owned());
    }
    Ok((kids, body.len() as u64))
}

/// What auth counted for GetJwks between two scrapes: at least `succeeded` OK, and no more
/// calls ending otherwise than h2load cut (`cut`: sent, then abandoned when its time ran out,
/// so never counted by it). Returns those other endings by code.
fn cut_calls(
    before: &Scrape,
    after: &Scrape,
    succeeded: u64,
    cut: u64,
) -> Result<BTreeMap<String, u64>, String> {
    let mut codes = BTreeMap::new();
    for ((method, code), count) in &after.handled {
        let earlier = before
            .handled
            .get(&(method.clone(), code.clone()))
            .copied()
            .unwrap_or(0);
        let n = count.saturating_sub(earlier);
        if method == METHOD && n > 0 {
            codes.insert(code.clone(), n);
        }
    }
    let ok = codes.remove("OK").unwrap_or(0);
    if ok < succeeded {
        return Err(format!(
            "h2load counted {succeeded} successful calls but auth only {ok} OK"
        ));
    }
    let others: u64 = codes.values().sum();
    if others > cut {
        return Err(format!(
            "auth ended {others} calls not OK ({}), more than the {cut} h2load cut when its time ran out",
            describe(&codes)
        ));
    }
    Ok(codes)
}

/// `3 × CANCELLED, 1 × INTERNAL`.
fn describe(codes: &BTreeMap<String, u64>) -> String {
    if codes.is_empty() {
        return "none".to_owned();
    }
    codes
        .iter()
        .map(|(code, n)| format!("{n} × {code}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Output.

impl GatewayReport {
    fn ratio(&self) -> f64 {
        self.rest.run.req_per_sec / self.direct.run.req_per_sec
    }

    fn added_p50_ms(&self) -> f64 {
        self.rest.run.p50_ms - self.direct.run.p50_ms
    }

    fn added_single_p50_ms(&self) -> f64 {
        self.rest_single.run.p50_ms - self.direct_single.run.p50_ms
    }

    /// What the REST path costs the server process per request beyond the direct call: the
    /// gateway's share (HTTP/JSON, limiter, transcoding, its gRPC client).
    fn added_cpu_us(&self) -> Option<f64> {
        Some(self.rest.cpu_us_per_call? - self.direct.cpu_us_per_call?)
    }

    fn rest_label(&self) -> &'static str {
        match self.rest_protocol {
            RestProtocol::H1 => "HTTP/1.1",
            RestProtocol::H2c => "HTTP/2 (h2c)",
        }
    }

    pub fn table(&self, args: &BenchArgs, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "ironmesh-bench · gateway: {GRPC_PATH} direct (gRPC) vs GET {REST_PATH} through the \
             gateway (REST over {}) · {} s measured after {} s warm-up",
            self.rest_label(),
            args.duration,
            args.warmup
        );
        let _ = writeln!(
            out,
            "server: the whole mesh (6 services + gateway, SQLite, temp dir) in one process on the \
             production runtime, pinned to CPU {} (so 1 tokio worker); rate limiter on, limit {UNLIMITED}/s; \
             h2load: 1 thread pinned to CPU {}",
            self.server_cpu, self.load_cpu
        );
        let _ = writeln!(
            out,
            "answer: {} key(s), {} B gRPC frame, {} B JSON body\n",
            self.keys, self.grpc_frame_bytes, self.rest_body_bytes
        );
        let _ = writeln!(
            out,
            "{:<14} {:>6} {:>11} {:>9} {:>9} {:>10} {:>11} {:>11}",
            "RUN", "-c×-m", "REQ/S", "P50 MS", "P99 MS", "REQUESTS", "CPU µs/CALL", "SERVER CPU"
        );
        for (name, m) in [
            ("direct gRPC", &self.direct),
            ("REST", &self.rest),
            ("direct gRPC", &self.direct_single),
            ("REST", &self.rest_single),
        ] {
            let _ = writeln!(
                out,
                "{:<14} {:>6} {:>11.1} {:>9.3} {:>9.3} {:>10} {:>11} {:>11}",
                name,
                format!("{}×{}", m.clients, m.streams),
                m.run.req_per_sec,
                m.run.p50_ms,
                m.run.p99_ms,
                m.run.requests,
                m.cpu_us_per_call
                    .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}")),
                m.cpu_percent
                    .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}%")),
            );
        }
        let ratio = self.ratio();
        let _ = writeln!(out, "\ngateway");
        let _ = writeln!(
            out,
            "  req/s REST ÷ direct = {:.1} ÷ {:.1} = {ratio:.2} (target ≥ {TARGET_RPS_RATIO:.2}) {}",
            self.rest.run.req_per_sec,
            self.direct.run.req_per_sec,
            verdict(ratio >= TARGET_RPS_RATIO)
        );
        let _ = writeln!(
            out,
            "  added p50 per request, under load: {:.3} − {:.3} = {:+.3} ms (queueing included: \
             {} requests in flight)",
            self.rest.run.p50_ms,
            self.direct.run.p50_ms,
            self.added_p50_ms(),
            self.direct.clients * self.direct.streams
        );
        let _ = writeln!(
            out,
            "  added p50 per request, one at a time: {:.3} − {:.3} = {:+.3} ms",
            self.rest_single.run.p50_ms,
            self.direct_single.run.p50_ms,
            self.added_single_p50_ms()
        );
        if let Some(cpu) = self.added_cpu_us() {
            let _ = writeln!(
                out,
                "  server CPU per request, REST − direct = {cpu:.1} µs (the gateway's share; no target)"
            );
        }
        let _ = writeln!(
            out,
            "checks: GetJwks over gRPC and GET {REST_PATH} answer the same keys before and after \
             each run; every request HTTP 200 with exactly that answer (gRPC: one {} B frame, so \
             grpc-status 0); auth's handled counters show every request OK",
            self.grpc_frame_bytes
        );
        let _ = writeln!(
            out,
            "  calls h2load cut when a run's time ran out ended on auth as: {}",
            describe(&self.cut_codes)
        );
    }

    pub fn json(&self) -> Value {
        let ratio = self.ratio();
        json!({
            "grpc_rpc": GRPC_PATH,
            "rest_path": REST_PATH,
            "rest_protocol": match self.rest_protocol {
                RestProtocol::H1 => "http/1.1",
                RestProtocol::H2c => "h2c",
            },
            "params": {
                "server_cpu": self.server_cpu,
                "load_cpu": self.load_cpu,
                "rate_limit_per_sec": UNLIMITED,
                "rate_limit_burst": UNLIMITED,
            },
            "keys": self.keys,
            "grpc_frame_bytes": self.grpc_frame_bytes,
            "rest_body_bytes": self.rest_body_bytes,
            "direct": self.direct.json(),
            "rest": self.rest.json(),
            "direct_single": self.direct_single.json(),
            "rest_single": self.rest_single.json(),
            "ratio_rps": num(ratio),
            "target_ratio_rps": TARGET_RPS_RATIO,
            "ratio_rps_met": ratio >= TARGET_RPS_RATIO,
            "added_p50_ms": num(self.added_p50_ms()),
            "added_p50_ms_single": num(self.added_single_p50_ms()),
            "added_cpu_us_per_call": opt_num(self.added_cpu_us()),
            "cut_calls_by_code": self.cut_codes,
        })
    }
}

impl Measured {
    fn json(&self) -> Value {
        json!({
            "clients": self.clients,
            "streams": self.streams,
            "req_per_sec": num(self.run.req_per_sec),
            "requests": self.run.requests,
            "p50_ms": num(self.run.p50_ms),
            "p99_ms": num(self.run.p99_ms),
            "cpu_us_per_call": opt_num(self.cpu_us_per_call),
            "server_cpu_percent": opt_num(self.cpu_percent),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The server child.

/// `ironmesh-bench --serve gateway --serve-dir DIR`: every service and the gateway through the
/// in-process mesh, on the production runtime, until stdin closes. READY: auth's gRPC address,
/// the gateway's REST address, auth's admin address.
pub(super) fn serve_child(dir: Option<&Path>) -> ExitCode {
    let unlimited = |config: &mut ironmesh_runtime::Config| {
        config.gateway.rate_limit_per_sec = UNLIMITED;
        config.gateway.rate_limit_burst = UNLIMITED;
        // The bench's path is in the default `auth` route group: give it the same budget.
        for group in &mut config.gateway.route_limits {
            group.per_sec = UNLIMITED;
            group.burst = UNLIMITED;
        }
    };
    super::serve_mesh(
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

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
finished in 10.00s, 100.00 req/s, 2.14MB/s
requests: 1000 total, 1010 started, 1000 done, 1000 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1000 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 300KB (300000) total, 100KB (100000) headers (space savings 0.00%), 158KB (158000) data
";

    fn handled(lines: &[(&str, &str, u64)]) -> Scrape {
        let text: String = lines
            .iter()
            .map(|(method, code, n)| {
                format!(
                    "ironmesh_grpc_server_handled_total{{grpc_code=\"{code}\",grpc_method=\"{method}\",grpc_service=\"x\",service=\"auth\"}} {n}\n"
                )
            })
            .collect();
        Scrape::parse(&text)
    }

    #[test]
    fn json_bodies_may_include_late_ones() {
        let summary = Summary::parse(OUTPUT).unwrap();
        Answer::Json(158).check(&summary).unwrap();
        // Bodies of requests still completing at the end: whole, and no more than were sent.
        let late = OUTPUT.replace("(158000) data", "(159580) data");
        Answer::Json(158)
            .check(&Summary::parse(&late).unwrap())
            .unwrap();
        for bad in ["(157999) data", "(157842) data", "(161000) data"] {
            let output = OUTPUT.replace("(158000) data", bad);
            assert!(
                Answer::Json(158)
                    .check(&Summary::parse(&output).unwrap())
                    .is_err(),
                "{bad}"
            );
        }
        // gRPC frames stay exact: a missing frame is an error answer.
        assert!(Answer::Frame(158).check(&summary).is_ok());
        let late = Summary::parse(&OUTPUT.replace("(158000) data", "(158158) data")).unwrap();
        assert!(Answer::Frame(158).check(&late).is_err());
    }

    #[test]
    fn only_cut_calls_may_end_otherwise() {
        let before = handled(&[("GetJwks", "OK", 10), ("GetJwks", "INTERNAL", 1)]);
        let after = handled(&[
            ("GetJwks", "OK", 110),
            ("GetJwks", "INTERNAL", 2),
            ("GetJwks", "CANCELLED", 3),
            ("Login", "INTERNAL", 50),
        ]);
        let codes = cut_calls(&before, &after, 100, 4).unwrap();
        assert_eq!(describe(&codes), "3 × CANCELLED, 1 × INTERNAL");
        assert!(cut_calls(&before, &after, 100, 3).is_err(), "more than cut");
        assert!(cut_calls(&before, &after, 101, 4).is_err(), "fewer OK");
        assert_eq!(describe(&BTreeMap::new()), "none");
    }
}
