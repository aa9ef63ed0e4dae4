//! The notification suite's report: its section of the table and its member of the JSON object.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{
    BackendRun, HANG_TIMEOUT_MS, Isolation, Latency, NotificationReport, RETRY_MS, SENDERS,
    TARGET_ISOLATION_RATIO, TARGET_THROUGHPUT_RATIO, Throughput, Timed, backend_name,
};
use crate::args::BenchArgs;
use crate::report::{SuiteReport, num, opt_num, verdict};

const POSTGRES_NOT_RUN: &str = "BENCH_DATABASE_URL (or --database-url) is not set";
const WRK_MISSING: &str = "wrk is not installed (apt-get install -y wrk): no baseline";

impl Throughput {
    /// Deliveries/s ÷ wrk req/s: (engine alone, end to end).
    fn ratios(&self) -> Option<(f64, f64)> {
        self.wrk.as_ref().map(|w| {
            (
                self.engine.per_sec() / w.per_sec,
                self.end_to_end.per_sec() / w.per_sec,
            )
        })
    }

    fn table(&self, out: &mut String) {
        let line = |out: &mut String, name: &str, t: Timed, what: &str| {
            let _ = writeln!(
                out,
                "  {name:<20} {:>6} in {:>7.3} s = {:>8.1}/s ({what})",
                t.deliveries,
                t.secs,
                t.per_sec()
            );
        };
        line(
            out,
            "end to end",
            self.end_to_end,
            &format!(
                "deliveries, first Send → last received, {SENDERS} concurrent Send callers; the \
                 Sends alone {:.1}/s",
                self.sends.per_sec()
            ),
        );
        line(
            out,
            "engine alone",
            self.engine,
            "deliveries of a queued backlog, receiver released → last received",
        );
        match (&self.wrk, self.ratios()) {
            (Some(w), Some((engine, end_to_end))) => {
                let _ = writeln!(
                    out,
                    "  {:<20} {:>6} in the run = {:>8.1}/s (-t1 -c{}, the first delivery's \
                     headers and body)",
                    "wrk", w.requests, w.per_sec, w.connections
                );
                let _ = writeln!(
                    out,
                    "  deliveries/s ÷ wrk req/s: engine alone {engine:.3} {}, end to end \
                     {end_to_end:.3} {} (target ≥ {TARGET_THROUGHPUT_RATIO:.2})",
                    verdict(engine >= TARGET_THROUGHPUT_RATIO),
                    verdict(end_to_end >= TARGET_THROUGHPUT_RATIO)
                );
            }
            _ => {
                let _ = writeln!(out, "  {:<20} not run: {WRK_MISSING}", "wrk");
            }
        }
    }

    fn json(&self) -> Value {
        let timed = |t: Timed| json!({ "deliveries": t.deliveries, "secs": num(t.secs), "per_sec": num(t.per_sec()) });
        let ratios = self.ratios();
        json!({
            "end_to_end": timed(self.end_to_end),
            "sends": timed(self.sends),
            "engine_alone": timed(self.engine),
            "wrk": self.wrk.as_ref().map_or_else(
                || json!({ "run": false, "reason": WRK_MISSING }),
                |w| json!({
                    "run": true,
                    "requests": w.requests,
                    "per_sec": num(w.per_sec),
                    "connections": w.connections,
                }),
            ),
            "ratio_engine_wrk": opt_num(ratios.map(|r| r.0)),
            "ratio_end_to_end_wrk": opt_num(ratios.map(|r| r.1)),
            "target_ratio": TARGET_THROUGHPUT_RATIO,
            "ratio_engine_wrk_met": ratios.map(|r| r.0 >= TARGET_THROUGHPUT_RATIO),
            "ratio_end_to_end_wrk_met": ratios.map(|r| r.1 >= TARGET_THROUGHPUT_RATIO),
        })
    }
}

impl Latency {
    fn cells(&self) -> String {
        format!(
            "{:>5} deliveries, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.deliveries, self.p50_ms, self.p99_ms, self.max_ms
        )
    }

    fn json(&self) -> Value {
        json!({
            "deliveries": self.deliveries,
            "p50_ms": num(self.p50_ms),
            "p99_ms": num(self.p99_ms),
            "max_ms": num(self.max_ms),
        })
    }
}

impl Isolation {
    fn ratio(&self) -> f64 {
        self.hanging.p99_ms / self.baseline.p99_ms
    }

    fn table(&self, rate: u32, out: &mut String) {
        let _ = writeln!(
            out,
            "  isolation            the healthy endpoint at {rate}/s, Send created_at → received, \
             beside {rate}/s Sends to another user"
        );
        let _ = writeln!(out, "    no endpoint        {}", self.baseline.cells());
        let _ = writeln!(out, "    hanging endpoint   {}", self.hanging.cells());
        let _ = writeln!(
            out,
            "                       (it accepted {} connections, {} deliveries, {} attempts, {} \
             delivered)",
            self.hang_connections, self.hang_deliveries, self.hang_attempts, self.hang_delivered
        );
        let ratio = self.ratio();
        let _ = writeln!(
            out,
            "  p99 hanging ÷ none   {:.2} ÷ {:.2} = {ratio:.2} (target ≤ \
             {TARGET_ISOLATION_RATIO:.2}) {}",
            self.hanging.p99_ms,
            self.baseline.p99_ms,
            verdict(ratio <= TARGET_ISOLATION_RATIO)
        );
    }

    fn json(&self) -> Value {
        let ratio = self.ratio();
        json!({
            "without_hanging": self.baseline.json(),
            "with_hanging": self.hanging.json(),
            "hanging_endpoint": {
                "connections": self.hang_connections,
                "deliveries": self.hang_deliveries,
                "attempts": self.hang_attempts,
                "delivered": self.hang_delivered,
            },
            "ratio_p99": num(ratio),
            "target_ratio_p99": TARGET_ISOLATION_RATIO,
            "ratio_p99_met": ratio <= TARGET_ISOLATION_RATIO,
        })
    }
}

impl BackendRun {
    fn table(&self, rate: u32, out: &mut String) {
        let _ = writeln!(out, "{}", backend_name(self.backend));
        self.throughput.table(out);
        self.isolation.table(rate, out);
    }

    fn json(&self) -> Value {
        json!({
            "run": true,
            "throughput": self.throughput.json(),
            "isolation": self.isolation.json(),
        })
    }
}

impl SuiteReport for NotificationReport {
    fn table(&self, _args: &BenchArgs, out: &mut String) {
        let _ = writeln!(
            out,
            "ironmesh-bench · notification: webhook deliveries vs wrk to the same receiver, a \
             healthy endpoint's p99 beside a hanging one · {} notifications per throughput run, \
             {} s per isolation run",
            self.notifications, self.secs
        );
        let _ = writeln!(
            out,
            "auth and notification started through the launcher in this process (test-only \
             allow_insecure_webhooks and allow_private_webhook_targets: the receiver is http on \
             loopback), engine defaults ({} attempts in flight per endpoint); the receiver is \
             hyper HTTP/1.1 on its own one-thread runtime, answering 204; the hanging endpoint \
             accepts and never answers (attempts time out after {HANG_TIMEOUT_MS} ms, retried \
             after {RETRY_MS} ms, circuit cool-down {RETRY_MS} ms)\n",
            self.concurrency
        );
        self.sqlite.table(self.rate, out);
        match &self.postgres {
            Some(run) => run.table(self.rate, out),
            None => {
                let _ = writeln!(out, "postgres\n  not run: {POSTGRES_NOT_RUN}");
            }
        }
    }

    fn json(&self) -> Value {
        json!({
            "params": {
                "notifications": self.notifications,
                "rate_per_user": self.rate,
                "secs": self.secs,
                "senders": SENDERS,
                "per_target_concurrency": self.concurrency,
            },
            "sqlite": self.sqlite.json(),
            "postgres": self.postgres.as_ref().map_or_else(
                || json!({ "run": false, "reason": POSTGRES_NOT_RUN }),
                BackendRun::json,
            ),
        })
    }

    fn server_log(&self) -> &str {
        // The services run in this process; their failures fail the run.
        ""
    }
}
