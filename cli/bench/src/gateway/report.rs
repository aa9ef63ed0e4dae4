//! The gateway suite's report: its section of the table and its member of the JSON object,
//! with the grpc-gateway peer's figures beside Ironmesh's gateway when the peer ran.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::peer::{PeerOutcome, PeerRuns};
use super::{
    GRPC_PATH, GatewayReport, Measurement, REST_PATH, TARGET_PEER_CPU_RATIO, TARGET_RPS_RATIO,
    UNLIMITED,
};
use crate::args::{BenchArgs, RestProtocol};
use crate::figures::Measured;
use crate::report::{SuiteReport, num, opt_num, or_na, verdict};
use crate::scrape::describe;

impl GatewayReport {
    fn ratio(&self) -> f64 {
        self.rest.measured.run.req_per_sec / self.direct.measured.run.req_per_sec
    }

    fn added_p50_ms(&self) -> f64 {
        self.rest.measured.run.p50_ms - self.direct.measured.run.p50_ms
    }

    fn added_single_p50_ms(&self) -> f64 {
        self.rest_single.measured.run.p50_ms - self.direct_single.measured.run.p50_ms
    }

    /// What the REST path costs the server process per request beyond the direct call: the
    /// gateway's share (HTTP/JSON, limiter, transcoding, its gRPC client).
    fn added_cpu_us(&self) -> Option<f64> {
        Some(self.rest.measured.cpu_us_per_call? - self.direct.measured.cpu_us_per_call?)
    }

    fn peer(&self) -> Option<&PeerRuns> {
        match &self.peer {
            PeerOutcome::Ran(peer) => Some(peer),
            PeerOutcome::NotRun(_) => None,
        }
    }

    /// Ironmesh's gateway CPU per REST request ([`Self::added_cpu_us`]) ÷ the peer process's.
    fn peer_cpu_ratio(&self) -> Option<f64> {
        Some(self.added_cpu_us()? / self.peer()?.rest.peer_cpu_us_per_call?)
    }

    fn rest_label(&self) -> &'static str {
        match self.rest_protocol {
            RestProtocol::H1 => "HTTP/1.1",
            RestProtocol::H2c => "HTTP/2 (h2c)",
        }
    }
}

impl SuiteReport for GatewayReport {
    fn table(&self, args: &BenchArgs, out: &mut String) {
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
        let peer = self.peer();
        match &self.peer {
            PeerOutcome::Ran(peer) => {
                let _ = writeln!(
                    out,
                    "peer: grpc-gateway (v1, Debian's) {} on {}, pinned to CPU {} beside the \
                     mesh, backend auth's gRPC port; CPU µs/CALL is the mesh process's, PEER \
                     µs/CALL the peer's, SERVER CPU both\n",
                    peer.binary.display(),
                    peer.addr,
                    self.server_cpu
                );
            }
            PeerOutcome::NotRun(why) => {
                let _ = writeln!(out, "grpc-gateway peer: not run ({why})\n");
            }
        }
        let peer_column = |cell: String| {
            if peer.is_some() {
                format!(" {cell:>12}")
            } else {
                String::new()
            }
        };
        let _ = writeln!(
            out,
            "{:<14} {:>6} {:>11} {:>9} {:>9} {:>10} {:>11}{} {:>11}",
            "RUN",
            "-c×-m",
            "REQ/S",
            "P50 MS",
            "P99 MS",
            "REQUESTS",
            "CPU µs/CALL",
            peer_column("PEER µs/CALL".to_owned()),
            "SERVER CPU"
        );
        let rows = [
            Some(("direct gRPC", &self.direct)),
            Some(("REST", &self.rest)),
            peer.map(|peer| ("grpc-gw REST", &peer.rest)),
            Some(("direct gRPC", &self.direct_single)),
            Some(("REST", &self.rest_single)),
            peer.map(|peer| ("grpc-gw REST", &peer.rest_single)),
        ];
        for (name, m) in rows.into_iter().flatten() {
            let Measured {
                run,
                cpu_us_per_call,
                cpu_percent,
            } = &m.measured;
            let server_percent = match (cpu_percent, m.peer_cpu_percent) {
                (Some(mesh), Some(peer)) => Some(mesh + peer),
                (mesh, _) => *mesh,
            };
            let _ = writeln!(
                out,
                "{:<14} {:>6} {:>11.1} {:>9.3} {:>9.3} {:>10} {:>11}{} {:>11}",
                name,
                format!("{}×{}", m.clients, m.streams),
                run.req_per_sec,
                run.p50_ms,
                run.p99_ms,
                run.requests,
                or_na(*cpu_us_per_call, |v| format!("{v:.1}")),
                peer_column(or_na(m.peer_cpu_us_per_call, |v| format!("{v:.1}"))),
                or_na(server_percent, |v| format!("{v:.0}%")),
            );
        }
        let ratio = self.ratio();
        let _ = writeln!(out, "\ngateway");
        let _ = writeln!(
            out,
            "  req/s REST ÷ direct = {:.1} ÷ {:.1} = {ratio:.2} (target ≥ {TARGET_RPS_RATIO:.2}) {}",
            self.rest.measured.run.req_per_sec,
            self.direct.measured.run.req_per_sec,
            verdict(ratio >= TARGET_RPS_RATIO)
        );
        let _ = writeln!(
            out,
            "  added p50 per request, under load: {:.3} − {:.3} = {:+.3} ms (queueing included: \
             {} requests in flight)",
            self.rest.measured.run.p50_ms,
            self.direct.measured.run.p50_ms,
            self.added_p50_ms(),
            self.direct.clients * self.direct.streams
        );
        let _ = writeln!(
            out,
            "  added p50 per request, one at a time: {:.3} − {:.3} = {:+.3} ms",
            self.rest_single.measured.run.p50_ms,
            self.direct_single.measured.run.p50_ms,
            self.added_single_p50_ms()
        );
        if let Some(cpu) = self.added_cpu_us() {
            let _ = writeln!(
                out,
                "  server CPU per request, REST − direct = {cpu:.1} µs (the gateway's share; {})",
                if peer.is_some() {
                    "against grpc-gateway's below"
                } else {
                    "no target without the peer"
                }
            );
        }
        if let Some(peer) = peer {
            self.peer_table(peer, out);
        }
        let mib =
            |kib: Option<u64>| or_na(kib.map(|k| k as f64 / 1024.0), |m| format!("{m:.1} MiB"));
        let requests: u64 = [
            Some(&self.direct),
            Some(&self.rest),
            peer.map(|peer| &peer.rest),
            Some(&self.direct_single),
            Some(&self.rest_single),
            peer.map(|peer| &peer.rest_single),
        ]
        .into_iter()
        .flatten()
        .map(|m| m.measured.run.requests)
        .sum();
        let _ = writeln!(
            out,
            "mesh memory (RSS of the whole `ironmesh up`-like process): idle {}, after the runs \
             ({requests} requests) {}",
            mib(self.rss_idle_kib),
            mib(self.rss_after_kib)
        );
        if let Some(soak) = &self.soak {
            out.push_str(&soak.table());
        }
        let _ = writeln!(
            out,
            "checks: GetJwks over gRPC and GET {REST_PATH} answer the same keys before and after \
             each run{}; every request HTTP 200 with exactly that answer (gRPC: one {} B frame, so \
             grpc-status 0); auth's handled counters show every request OK",
            peer.map_or(String::new(), |peer| format!(
                " (through the peer too: {} B of JSON)",
                peer.body_bytes
            )),
            self.grpc_frame_bytes
        );
        let _ = writeln!(
            out,
            "  calls h2load cut when a run's time ran out ended on auth as: {}",
            describe(&self.cut_codes)
        );
    }

    fn json(&self) -> Value {
        let ratio = self.ratio();
        json!({
            "grpc_rpc": GRPC_PATH,
            "rest_path": REST_PATH,
            "rest_protocol": match self.rest_protocol {
                RestProtocol::H1 => "http/1.1",
                RestProtocol::H2c => "h2c",
            },
            "rss_kib": { "idle": self.rss_idle_kib, "after_runs": self.rss_after_kib },
            "soak": self.soak.as_ref().map(super::soak::Soak::json),
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
            "peer": self.peer_json(),
        })
    }

    fn server_log(&self) -> &str {
        &self.server_log
    }
}

impl GatewayReport {
    /// The peer's lines of the gateway section: both gateways' own CPU per request, their
    /// ratio against the target, and req/s ÷ direct for each.
    fn peer_table(&self, peer: &PeerRuns, out: &mut String) {
        let us = |v: Option<f64>| or_na(v, |v| format!("{v:.1} µs"));
        let peer_own = peer.rest.peer_cpu_us_per_call;
        let _ = writeln!(
            out,
            "grpc-gateway peer (same RPC, same load as the REST run)"
        );
        let _ = writeln!(
            out,
            "  gateway's own CPU per REST request: Ironmesh {} (REST − direct, mesh process), \
             grpc-gateway {} (peer process)",
            us(self.added_cpu_us()),
            us(peer_own)
        );
        let ratio = self.peer_cpu_ratio();
        let _ = writeln!(
            out,
            "  Ironmesh ÷ grpc-gateway = {} (target ≤ {TARGET_PEER_CPU_RATIO:.2}) {}",
            or_na(ratio, |v| format!("{v:.2}")),
            ratio.map_or("n/a", |ratio| verdict(ratio <= TARGET_PEER_CPU_RATIO))
        );
        let direct = self.direct.measured.run.req_per_sec;
        let peer_rps = peer.rest.measured.run.req_per_sec;
        let _ = writeln!(
            out,
            "  req/s REST ÷ direct: Ironmesh {:.2}, grpc-gateway {peer_rps:.1} ÷ {direct:.1} = \
             {:.2}; Ironmesh REST ÷ grpc-gateway REST = {:.2}",
            self.ratio(),
            peer_rps / direct,
            self.rest.measured.run.req_per_sec / peer_rps
        );
        let behind = peer.rest.measured.cpu_us_per_call;
        let total = behind.zip(peer_own).map(|(mesh, peer)| mesh + peer);
        let _ = writeln!(
            out,
            "  server CPU per REST request: Ironmesh {} (gateway + auth, one process), \
             grpc-gateway {} (peer + the mesh behind it, {}; direct: {})",
            us(self.rest.measured.cpu_us_per_call),
            us(total),
            us(behind),
            us(self.direct.measured.cpu_us_per_call)
        );
        let single = self.direct_single.measured.run.p50_ms;
        let _ = writeln!(
            out,
            "  added p50 per request, one at a time: Ironmesh {:+.3} ms, grpc-gateway {:+.3} ms",
            self.added_single_p50_ms(),
            peer.rest_single.measured.run.p50_ms - single
        );
    }

    fn peer_json(&self) -> Value {
        let peer = match &self.peer {
            PeerOutcome::NotRun(why) => return json!({ "run": false, "reason": why }),
            PeerOutcome::Ran(peer) => peer,
        };
        let ratio = self.peer_cpu_ratio();
        let direct = &self.direct.measured.run;
        let peer_run = &peer.rest.measured.run;
        json!({
            "run": true,
            "binary": peer.binary.display().to_string(),
            "addr": peer.addr.to_string(),
            "rest_body_bytes": peer.body_bytes,
            "rest": peer.rest.json(),
            "rest_single": peer.rest_single.json(),
            "ironmesh_gateway_cpu_us_per_call": opt_num(self.added_cpu_us()),
            "peer_cpu_us_per_call": opt_num(peer.rest.peer_cpu_us_per_call),
            "mesh_cpu_us_per_call_behind_peer": opt_num(peer.rest.measured.cpu_us_per_call),
            "ratio_cpu_ironmesh_to_peer": opt_num(ratio),
            "target_ratio_cpu": TARGET_PEER_CPU_RATIO,
            "ratio_cpu_met": ratio.map(|ratio| ratio <= TARGET_PEER_CPU_RATIO),
            "ratio_rps_peer_to_direct": num(peer_run.req_per_sec / direct.req_per_sec),
            "ratio_rps_ironmesh_to_peer": num(
                self.rest.measured.run.req_per_sec / peer_run.req_per_sec
            ),
            "added_p50_ms_single": num(
                peer.rest_single.measured.run.p50_ms - self.direct_single.measured.run.p50_ms
            ),
        })
    }
}

impl Measurement {
    fn json(&self) -> Value {
        self.measured.json(&[
            ("clients", self.clients.into()),
            ("streams", self.streams.into()),
            ("peer_cpu_us_per_call", opt_num(self.peer_cpu_us_per_call)),
            ("peer_cpu_percent", opt_num(self.peer_cpu_percent)),
        ])
    }
}
