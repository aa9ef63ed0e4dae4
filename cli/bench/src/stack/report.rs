//! The stack suite's report: its section of the table and its member of the JSON object.
//!
//! Every ratio is taken within a round (a server ÷ the bare run just before it) and reported as
//! the median of the rounds, the rounds' own values beside it. The exported runs come after the
//! rounds, so they are compared with the median bare figures.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{
    Measurement, RPC_PATH, Round, StackReport, TARGET_P99_RATIO, TARGET_RPS_RATIO, VERIFY_CALLS,
};
use crate::args::BenchArgs;
use crate::figures::Measured;
use crate::report::{SuiteReport, num, opt_num, or_na, verdict};

/// One figure of a server ÷ bare: the median of the rounds, and each round's.
struct Ratio {
    median: f64,
    rounds: Vec<f64>,
}

impl Ratio {
    fn of(rounds: Vec<f64>) -> Option<Self> {
        Some(Self {
            median: median(&rounds)?,
            rounds,
        })
    }

    /// `0.85 (rounds 0.80 0.85 0.88)`.
    fn show(&self) -> String {
        let rounds: Vec<String> = self.rounds.iter().map(|r| format!("{r:.2}")).collect();
        format!("{:.2} (rounds {})", self.median, rounds.join(" "))
    }

    fn json(&self) -> Value {
        json!({
            "median": num(self.median),
            "rounds": self.rounds.iter().copied().map(num).collect::<Vec<_>>(),
        })
    }
}

/// The median of `values`, if there are any.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn rps(m: &Measured) -> Option<f64> {
    Some(m.run.req_per_sec)
}

fn p99(m: &Measured) -> Option<f64> {
    Some(m.run.p99_ms)
}

fn cpu(m: &Measured) -> Option<f64> {
    m.cpu_us_per_call
}

type Pick = fn(&Round) -> &Measurement;

const STACK: Pick = |r| &r.stack;
const STACK_AUTH: Pick = |r| &r.stack_auth;

impl StackReport {
    /// `field` of the server `pick` ÷ the same round's bare, over the rounds.
    fn ratio(&self, pick: Pick, field: fn(&Measured) -> Option<f64>) -> Option<Ratio> {
        let per_round = self
            .rounds
            .iter()
            .map(|round| Some(field(&pick(round).measured)? / field(&round.bare.measured)?));
        Ratio::of(per_round.collect::<Option<Vec<f64>>>()?)
    }

    /// `field` of `m` (run after the rounds) ÷ the median bare figure.
    fn vs_median_bare(&self, m: &Measurement, field: fn(&Measured) -> Option<f64>) -> Option<f64> {
        let bare: Option<Vec<f64>> = self
            .rounds
            .iter()
            .map(|r| field(&r.bare.measured))
            .collect();
        Some(field(&m.measured)? / median(&bare?)?)
    }

    /// The verification's share of a call: CPU per call stack+auth − stack, median of rounds.
    fn verify_cpu_us(&self) -> Option<f64> {
        let per_round: Option<Vec<f64>> = self
            .rounds
            .iter()
            .map(|r| Some(cpu(&r.stack_auth.measured)? - cpu(&r.stack.measured)?))
            .collect();
        median(&per_round?)
    }

    fn ratios_json(&self, pick: Pick) -> Value {
        let rps = self.ratio(pick, rps);
        let p99 = self.ratio(pick, p99);
        json!({
            "ratio_rps": rps.as_ref().map_or(Value::Null, Ratio::json),
            "target_ratio_rps": TARGET_RPS_RATIO,
            "ratio_rps_met": rps.is_some_and(|r| r.median >= TARGET_RPS_RATIO),
            "ratio_p99": p99.as_ref().map_or(Value::Null, Ratio::json),
            "target_ratio_p99": TARGET_P99_RATIO,
            "ratio_p99_met": p99.is_some_and(|r| r.median <= TARGET_P99_RATIO),
            "ratio_cpu_per_call": self.ratio(pick, cpu).as_ref().map_or(Value::Null, Ratio::json),
        })
    }
}

impl SuiteReport for StackReport {
    fn table(&self, args: &BenchArgs, out: &mut String) {
        let _ = writeln!(
            out,
            "ironmesh-bench · stack: {RPC_PATH} · h2load -c {} -m {} · {} s measured after {} s \
             warm-up · {} interleaved rounds, ratios are the rounds' medians",
            self.clients,
            self.streams,
            args.duration,
            args.warmup,
            self.rounds.len()
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
            "{:<14} {:>11} {:>9} {:>9} {:>10} {:>11} {:>11}",
            "SERVER", "REQ/S", "P50 MS", "P99 MS", "REQUESTS", "CPU µs/CALL", "SERVER CPU"
        );
        for (n, round) in self.rounds.iter().enumerate() {
            for m in [&round.bare, &round.stack, &round.stack_auth] {
                let Measured {
                    run,
                    cpu_us_per_call,
                    cpu_percent,
                } = &m.measured;
                let _ = writeln!(
                    out,
                    "{:<14} {:>11.1} {:>9.3} {:>9.3} {:>10} {:>11} {:>11}",
                    format!("{} #{}", m.target.name(), n + 1),
                    run.req_per_sec,
                    run.p50_ms,
                    run.p99_ms,
                    run.requests,
                    or_na(*cpu_us_per_call, |v| format!("{v:.2}")),
                    or_na(*cpu_percent, |v| format!("{v:.0}%")),
                );
            }
        }
        for (title, name, pick) in [
            ("stack (interceptors, no authentication)", "stack", STACK),
            ("stack + token verification", "stack+auth", STACK_AUTH),
        ] {
            let _ = writeln!(out, "\n{title}");
            if let Some(r) = self.ratio(pick, rps) {
                let _ = writeln!(
                    out,
                    "  req/s {name}/bare = {} (target ≥ {TARGET_RPS_RATIO:.2}) {}",
                    r.show(),
                    verdict(r.median >= TARGET_RPS_RATIO)
                );
            }
            if let Some(r) = self.ratio(pick, p99) {
                let _ = writeln!(
                    out,
                    "  p99   {name}/bare = {} (target ≤ {TARGET_P99_RATIO:.2}) {}",
                    r.show(),
                    verdict(r.median <= TARGET_P99_RATIO)
                );
            }
            if let Some(r) = self.ratio(pick, cpu) {
                let _ = writeln!(
                    out,
                    "  server CPU per call {name}/bare = {} (no target; the least noisy figure)",
                    r.show()
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
            let _ = writeln!(
                out,
                "stack with OTLP export at {:.0} % sampling: {:.1} req/s, p99 {:.3} ms, {} µs/call; \
                 ÷ median bare: req/s {}, p99 {}, CPU {}; {} spans received",
                e.ratio * 100.0,
                m.measured.run.req_per_sec,
                m.measured.run.p99_ms,
                or_na(m.measured.cpu_us_per_call, |v| format!("{v:.2}")),
                or_na(self.vs_median_bare(m, rps), |v| format!("{v:.2}")),
                or_na(self.vs_median_bare(m, p99), |v| format!("{v:.2}")),
                or_na(self.vs_median_bare(m, cpu), |v| format!("{v:.2}")),
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
        json!({
            "rpc": RPC_PATH,
            "params": {
                "clients": self.clients,
                "streams": self.streams,
                "server_cpu": self.server_cpu,
                "load_cpu": self.load_cpu,
                "server_worker_threads": 1,
                "rounds": self.rounds.len(),
            },
            "rounds": self.rounds.iter().map(|r| json!({
                "bare": r.bare.json(),
                "stack": r.stack.json(),
                "stack_auth": r.stack_auth.json(),
            })).collect::<Vec<_>>(),
            "stack_vs_bare": self.ratios_json(STACK),
            "stack_auth_vs_bare": self.ratios_json(STACK_AUTH),
            "token_verify_us": num(self.verify_us),
            "token_verify_server_cpu_us": opt_num(self.verify_cpu_us()),
            "exported": self.exported.iter().map(|e| json!({
                "sampling_ratio": e.ratio,
                "run": e.measurement.json(),
                "vs_median_bare": {
                    "ratio_rps": opt_num(self.vs_median_bare(&e.measurement, rps)),
                    "ratio_p99": opt_num(self.vs_median_bare(&e.measurement, p99)),
                    "ratio_cpu_per_call": opt_num(self.vs_median_bare(&e.measurement, cpu)),
                },
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

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[0.9, 0.7, 0.8]), Some(0.8));
        assert_eq!(median(&[0.6, 0.9, 0.7, 0.8]), Some(0.75));
    }
}
