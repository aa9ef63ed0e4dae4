//! The events suite's report: its section of the table and its member of the JSON object.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::pipeline::{EVENT_TYPE, PRODUCER, SUBSCRIBER};
use super::{
    BATCH, BackendRun, EventsReport, HALF, Rate, TARGET_APPEND_RATIO, TARGET_RELAY_RATIO,
    backend_name,
};
use crate::args::BenchArgs;
use crate::report::{SuiteReport, num, verdict};

/// Below this share of the rate asked for, the half-load row says the writer fell behind.
const BEHIND: f64 = 0.95;
/// Why the PostgreSQL run is missing when it is.
const POSTGRES_NOT_RUN: &str = "BENCH_DATABASE_URL (or --database-url) is not set";

impl BackendRun {
    fn relay_ratio(&self) -> f64 {
        self.pipeline.relay.per_sec() / self.pipeline.insert.per_sec()
    }

    fn append_ratio(&self) -> f64 {
        self.append.append.per_sec() / self.append.plain.per_sec()
    }

    fn table(&self, out: &mut String) {
        let p = &self.pipeline;
        let h = &p.half_load;
        let line = |out: &mut String, label: &str, rate: Rate, unit: &str, note: &str| {
            let _ = writeln!(
                out,
                "  {label:<20} {:>7} {unit:<7} in {:>7.3} s = {:>9.1} {unit}/s{note}",
                rate.count,
                rate.secs,
                rate.per_sec()
            );
        };
        let _ = writeln!(out, "{}", backend_name(self.backend));
        line(
            out,
            "producer inserts",
            p.insert,
            "events",
            " (one per transaction, relay stopped)",
        );
        line(
            out,
            "relay end to end",
            p.relay,
            "events",
            " (relay start → none pending)",
        );
        let behind = if h.written.per_sec() < BEHIND * h.asked_per_sec {
            ": the writer fell behind"
        } else {
            ""
        };
        line(
            out,
            "at half load",
            h.written,
            "events",
            &format!(" (asked {:.1}/s, relay running{behind})", h.asked_per_sec),
        );
        let _ = writeln!(
            out,
            "  {:<20} p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (audit recorded_at − event occurred_at)",
            "  lag", h.lag_p50_ms, h.lag_p99_ms, h.lag_max_ms
        );
        line(
            out,
            "audit Append",
            self.append.append,
            "entries",
            &format!(" ({BATCH} per call)"),
        );
        line(
            out,
            "plain INSERT",
            self.append.plain,
            "rows",
            &format!(" ({BATCH} per transaction)"),
        );
        let relay = self.relay_ratio();
        let _ = writeln!(
            out,
            "  relay ÷ insert = {:.1} ÷ {:.1} = {relay:.2} (target ≥ {TARGET_RELAY_RATIO:.2}) {}",
            p.relay.per_sec(),
            p.insert.per_sec(),
            verdict(relay >= TARGET_RELAY_RATIO)
        );
        let append = self.append_ratio();
        let _ = writeln!(
            out,
            "  Append ÷ INSERT = {:.1} ÷ {:.1} = {append:.2} (target ≥ {TARGET_APPEND_RATIO:.2}) {}",
            self.append.append.per_sec(),
            self.append.plain.per_sec(),
            verdict(append >= TARGET_APPEND_RATIO)
        );
        let _ = writeln!(
            out,
            "  checks: {} pairs delivered ({} retried), no dead letter; audit holds each event once",
            p.deliveries.delivered, p.deliveries.retried
        );
    }

    fn json(&self) -> Value {
        let p = &self.pipeline;
        let h = &p.half_load;
        let relay = self.relay_ratio();
        let append = self.append_ratio();
        json!({
            "run": true,
            "producer_insert": rate_json(p.insert, "events"),
            "relay": rate_json(p.relay, "events"),
            "ratio_relay_insert": num(relay),
            "target_ratio_relay_insert": TARGET_RELAY_RATIO,
            "ratio_relay_insert_met": relay >= TARGET_RELAY_RATIO,
            "half_load": {
                "asked_events_per_sec": num(h.asked_per_sec),
                "events": h.written.count,
                "secs": num(h.written.secs),
                "events_per_sec": num(h.written.per_sec()),
                "lag_p50_ms": num(h.lag_p50_ms),
                "lag_p99_ms": num(h.lag_p99_ms),
                "lag_max_ms": num(h.lag_max_ms),
            },
            "audit_append": rate_json(self.append.append, "entries"),
            "plain_insert": rate_json(self.append.plain, "rows"),
            "ratio_append_insert": num(append),
            "target_ratio_append_insert": TARGET_APPEND_RATIO,
            "ratio_append_insert_met": append >= TARGET_APPEND_RATIO,
            "delivered_pairs": p.deliveries.delivered,
            "retried_pairs": p.deliveries.retried,
            "dead_letters": 0,
        })
    }
}

/// `{unit: count, secs, unit_per_sec}`.
fn rate_json(rate: Rate, unit: &str) -> Value {
    json!({
        unit: rate.count,
        "secs": num(rate.secs),
        format!("{unit}_per_sec"): num(rate.per_sec()),
    })
}

impl SuiteReport for EventsReport {
    fn table(&self, _args: &BenchArgs, out: &mut String) {
        let _ = writeln!(
            out,
            "ironmesh-bench · events: producer → outbox → relay → audit, and audit Append vs plain \
             INSERT · {} events, {} entries, {} s at half load",
            self.events, self.entries, self.half_load_secs
        );
        let _ = writeln!(
            out,
            "producer: one writer, one `{EVENT_TYPE}` event per transaction, each its own \
             aggregate, as `{PRODUCER}` to subscriber `{SUBSCRIBER}` (*); relay: \
             RelayConfig::default() in this process; audit: the real service started through the \
             launcher in this process, reached over loopback gRPC as service:{PRODUCER}; one \
             multi-threaded runtime for all, not pinned; on PostgreSQL the bench does not \
             analyze the tables first (unless autovacuum did, the claim's timeout does, in the run)"
        );
        let _ = writeln!(
            out,
            "half load: {HALF} × the slower of insert and relay rate; Append vs INSERT: a fresh \
             audit store, the rows Append stored INSERTed into a table with the same columns and \
             indexes\n"
        );
        self.sqlite.table(out);
        match &self.postgres {
            Some(run) => run.table(out),
            None => {
                let _ = writeln!(out, "postgres\n  not run: {POSTGRES_NOT_RUN}");
            }
        }
    }

    fn json(&self) -> Value {
        json!({
            "params": {
                "events": self.events,
                "entries": self.entries,
                "half_load_secs": self.half_load_secs,
                "half_load_share": HALF,
                "batch": BATCH,
                "event_type": EVENT_TYPE,
            },
            "sqlite": self.sqlite.json(),
            "postgres": self.postgres.as_ref().map_or_else(
                || json!({ "run": false, "reason": POSTGRES_NOT_RUN }),
                BackendRun::json,
            ),
        })
    }

    fn server_log(&self) -> &str {
        // Audit runs in this process, not in a child; its failures fail the run.
        ""
    }
}
