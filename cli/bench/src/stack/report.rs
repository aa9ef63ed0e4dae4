//! The stack suite's report: its section of the table and its member of the JSON object.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Measurement, RPC_PATH, StackReport, TARGET_P99_RATIO, TARGET_RPS_RATIO, VERIFY_CALLS};
use crate::args::BenchArgs;
use crate::figures::{Measured, Run};
use crate::report::{SuiteReport, num, opt_num, or_na, verdict};

impl StackReport {
    fn ratio(&self, m: &Measurement, field: impl Fn(&Run) -> f64) -> f64 {
        field(&m.measured.run) / field(&self.bare.measured.run)
    }

    fn cpu_ratio(&self, m: &Measurement) -> Option<f64> {
        Some(m.measured.cpu_us_per_call? / self.bare.measured.cpu_us_per_call?)
    }

    /// The verification's share of a call: CPU per call stack+auth − stack.
    fn verify_cpu_us(&self) -> Option<f64> {
        Some(self.stack_auth.measured.cpu_us_per_call? - self.stack.measured.cpu_us_per_call?)
    }
}

impl SuiteReport for StackReport {
    fn table(&self, args: &BenchArgs, out: &mut String) {
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
            let Measured {
                run,
                cpu_us_per_call,
                cpu_percent,
            } = &m.measured;
            let _ = writeln!(
                out,
                "{:<10} {:>11.1} {:>9.3} {:>9.3} {:>10} {:>11} {:>11}",
                m.target.name(),
                run.req_per_sec,
                run.p50_ms,
                run.p99_ms,
                run.requests,
                or_na(*cpu_us_per_call, |v| format!("{v:.2}")),
                or_na(*cpu_percent, |v| format!("{v:.0}%")),
            );
        }
        for (title, m) in [
            ("stack (interceptors, no authentication)", &self.stack),
            ("stack + token verification", &self.stack_auth),
        ] {
            let name = m.target.name();
            let rps = self.ratio(m, |run| run.req_per_sec);
            let p99 = self.ratio(m, |run| run.p99_ms);
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
        for e in &self.exported {
            let m = &e.measurement;
            let rps = self.ratio(m, |run| run.req_per_sec);
            let p99 = self.ratio(m, |run| run.p99_ms);
            let _ = writeln!(
                out,
                "stack with OTLP export at {:.0} % sampling: {:.1} req/s, p99 {:.3} ms, {} µs/call; \
                 ÷ bare: req/s {rps:.2}, p99 {p99:.2}, CPU {}; {} spans received",
                e.ratio * 100.0,
                m.measured.run.req_per_sec,
                m.measured.run.p99_ms,
                or_na(m.measured.cpu_us_per_call, |v| format!("{v:.2}")),
                or_na(self.cpu_ratio(m), |v| format!("{v:.2}")),
                e.spans
            );
        }
        match &self.allocations {
            Ok(a) => {
                let _ = writeln!(
                    out,
                    "allocations per call (ironmesh-bench-alloc: {} sequential calls, client and \
                     server together, system allocator counted): bare {:.1}, stack {:.1} (+{:.1}), \
                     stack+auth {:.1} (+{:.1})",
                    a.calls,
                    a.bare,
                    a.stack,
                    a.stack - a.bare,
                    a.stack_auth,
                    a.stack_auth - a.bare
                );
            }
            Err(why) => {
                let _ = writeln!(out, "allocations per call: not measured ({why})");
            }
        }
        let _ = writeln!(
            out,
            "checks: Health/Check OK+SERVING before and after each run (stack+auth: with the token); \
             stack+auth refuses no token and a forged token with UNAUTHENTICATED; every request \
             HTTP 200 with one SERVING frame"
        );
    }

    fn json(&self) -> Value {
        let ratios = |m: &Measurement| {
            let rps = self.ratio(m, |run| run.req_per_sec);
            let p99 = self.ratio(m, |run| run.p99_ms);
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
            "exported": self.exported.iter().map(|e| json!({
                "sampling_ratio": e.ratio,
                "run": e.measurement.json(),
                "vs_bare": ratios(&e.measurement),
                "spans_received": e.spans,
            })).collect::<Vec<_>>(),
            "allocations_per_call": match &self.allocations {
                Ok(a) => json!({
                    "calls": a.calls,
                    "bare": num(a.bare),
                    "stack": num(a.stack),
                    "stack_auth": num(a.stack_auth),
                }),
                Err(why) => json!({ "not_measured": why }),
            },
        })
    }

    fn server_log(&self) -> &str {
        &self.server_log
    }
}

impl Measurement {
    fn json(&self) -> Value {
        self.measured
            .json(&[("addr", json!(self.addr.to_string()))])
    }
}
