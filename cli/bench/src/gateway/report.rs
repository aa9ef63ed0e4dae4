//! The gateway suite's report: its section of the table and its member of the JSON object.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{GRPC_PATH, GatewayReport, Measurement, REST_PATH, TARGET_RPS_RATIO, UNLIMITED};
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
            let Measured {
                run,
                cpu_us_per_call,
                cpu_percent,
            } = &m.measured;
            let _ = writeln!(
                out,
                "{:<14} {:>6} {:>11.1} {:>9.3} {:>9.3} {:>10} {:>11} {:>11}",
                name,
                format!("{}×{}", m.clients, m.streams),
                run.req_per_sec,
                run.p50_ms,
                run.p99_ms,
                run.requests,
                or_na(*cpu_us_per_call, |v| format!("{v:.1}")),
                or_na(*cpu_percent, |v| format!("{v:.0}%")),
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
                "  server CPU per request, REST − direct = {cpu:.1} µs (the gateway's share; no target)"
            );
        }
        let mib =
            |kib: Option<u64>| or_na(kib.map(|k| k as f64 / 1024.0), |m| format!("{m:.1} MiB"));
        let requests: u64 = [
            &self.direct,
            &self.rest,
            &self.direct_single,
            &self.rest_single,
        ]
        .iter()
        .map(|m| m.measured.run.requests)
        .sum();
        let _ = writeln!(
            out,
            "mesh memory (RSS of the whole `ironmesh up`-like process): idle {}, after the runs \
             ({requests} requests) {}",
            mib(self.rss_idle_kib),
            mib(self.rss_after_kib)
        );
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

    fn server_log(&self) -> &str {
        &self.server_log
    }
}

impl Measurement {
    fn json(&self) -> Value {
        self.measured.json(&[
            ("clients", self.clients.into()),
            ("streams", self.streams.into()),
        ])
    }
}
