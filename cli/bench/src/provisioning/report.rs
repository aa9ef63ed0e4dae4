//! The provisioning suite's report: its section of the table and its member of the JSON object.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::calls::CHANNELS;
use super::{
    BackendRun, CLIENT_THREADS, JobsRun, PGBENCH_SCALE, PGBENCH_THREADS, Plan, PostgresRun,
    ProvisioningReport, TARGET_PGBENCH_RATIO, WORKERS, WatchRun, backend_name,
};
use crate::args::BenchArgs;
use crate::report::{SuiteReport, num, opt_num, or_na, verdict};

const POSTGRES_NOT_RUN: &str = "BENCH_DATABASE_URL (or --database-url) is not set";
const PGBENCH_MISSING: &str =
    "pgbench is not installed (apt-get install -y postgresql-client): no baseline";

impl JobsRun {
    /// Service CPU per job, µs.
    fn cpu_us(&self) -> Option<f64> {
        self.costs
            .service_cpu
            .filter(|_| self.completed > 0)
            .map(|cpu| cpu * 1e6 / self.completed as f64)
    }

    fn table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "  jobs                   {:>6} in {:>7.3} s = {:>8.1} jobs/s, {WORKERS} workers, \
             service CPU {} µs/job; each request claimed, completed and SUCCEEDED exactly once",
            self.completed,
            self.secs,
            self.per_sec(),
            or_na(self.cpu_us(), |us| format!("{us:.0}")),
        );
    }

    fn json(&self) -> Value {
        json!({
            "completed": self.completed,
            "secs": num(self.secs),
            "jobs_per_sec": num(self.per_sec()),
            "workers": WORKERS,
            "service_cpu_us_per_job": opt_num(self.cpu_us()),
            "exactly_once": true,
        })
    }
}

impl WatchRun {
    fn table(&self, plan: &Plan, out: &mut String) {
        let c = &self.costs;
        let _ = writeln!(
            out,
            "  watchers               {} streams on {} queued requests ({} unwatched CRITICAL \
             ahead), drained at {:.0} jobs/s: {} jobs in {:.1} s; window {:.1} s (drain start → \
             the last stream's end)",
            plan.watchers,
            plan.watchers,
            plan.lead,
            plan.rate,
            self.drained,
            self.drain_secs,
            c.secs
        );
        let _ = writeln!(
            out,
            "    service CPU          {} of a core (the clients {})",
            or_na(c.percent(c.service_cpu), |p| format!("{p:.1} %")),
            or_na(c.percent(c.clients_cpu), |p| format!("{p:.1} %")),
        );
        let _ = writeln!(
            out,
            "    position queries     {:.1}/s (board {:.1}/s, single {:.1}/s)",
            c.rate((c.board_queries + c.single_queries) as f64),
            c.rate(c.board_queries as f64),
            c.rate(c.single_queries as f64),
        );
        if let Some(commits) = c.commits {
            let _ = writeln!(
                out,
                "    PostgreSQL commits   {:.1}/s (pg_stat_database.xact_commit of \
                 provisioning's database; backends report up to a second late)",
                c.rate(commits as f64)
            );
        }
        let _ = writeln!(
            out,
            "    messages received    {:.1}/s ({} in all, {:.1} per watcher after the first); \
             each watcher saw its position fall, its request leave QUEUED, then the end (OK)",
            c.rate(self.messages as f64),
            self.messages,
            self.messages as f64 / plan.watchers.max(1) as f64
        );
    }

    fn json(&self, plan: &Plan) -> Value {
        let c = &self.costs;
        json!({
            "watchers": plan.watchers,
            "lead": plan.lead,
            "drain_rate": num(plan.rate),
            "drained": self.drained,
            "drain_secs": num(self.drain_secs),
            "window_secs": num(c.secs),
            "service_cpu_percent": opt_num(c.percent(c.service_cpu)),
            "clients_cpu_percent": opt_num(c.percent(c.clients_cpu)),
            "position_queries_per_sec": num(c.rate((c.board_queries + c.single_queries) as f64)),
            "board_queries_per_sec": num(c.rate(c.board_queries as f64)),
            "single_queries_per_sec": num(c.rate(c.single_queries as f64)),
            "commits_per_sec": opt_num(c.commits.map(|n| c.rate(n as f64))),
            "messages": self.messages,
            "messages_per_sec": num(c.rate(self.messages as f64)),
            "every_watcher_checked": true,
        })
    }
}

impl BackendRun {
    fn table(&self, plan: &Plan, pgbench: Option<&PostgresRun>, out: &mut String) {
        let _ = writeln!(out, "{}", backend_name(self.backend));
        self.jobs.table(out);
        if let Some(pg) = pgbench {
            pg.baseline_table(out);
        }
        self.watch.table(plan, out);
    }

    fn json(&self, plan: &Plan) -> Value {
        json!({
            "run": true,
            "jobs": self.jobs.json(),
            "watchers": self.watch.json(plan),
        })
    }
}

impl PostgresRun {
    fn ratio(&self) -> Option<f64> {
        self.pgbench_tps.map(|tps| self.run.jobs.per_sec() / tps)
    }

    fn baseline_table(&self, out: &mut String) {
        match (self.pgbench_tps, self.ratio()) {
            (Some(tps), Some(ratio)) => {
                let _ = writeln!(
                    out,
                    "  pgbench simple-update  {tps:.1} tps, {WORKERS} clients, {PGBENCH_THREADS} \
                     threads, scale {PGBENCH_SCALE}\n  \
                     jobs/s ÷ pgbench tps = {:.1} ÷ {tps:.1} = {ratio:.2} (target ≥ \
                     {TARGET_PGBENCH_RATIO:.2}) {}",
                    self.run.jobs.per_sec(),
                    verdict(ratio >= TARGET_PGBENCH_RATIO)
                );
            }
            _ => {
                let _ = writeln!(out, "  pgbench simple-update  not run: {PGBENCH_MISSING}");
            }
        }
    }

    fn json(&self, plan: &Plan) -> Value {
        let mut value = self.run.json(plan);
        let ratio = self.ratio();
        value["pgbench"] = self.pgbench_tps.map_or_else(
            || json!({ "run": false, "reason": PGBENCH_MISSING }),
            |tps| {
                json!({
                    "run": true,
                    "script": "simple-update",
                    "tps": num(tps),
                    "clients": WORKERS,
                    "threads": PGBENCH_THREADS,
                    "scale": PGBENCH_SCALE,
                })
            },
        );
        value["ratio_jobs_pgbench"] = opt_num(ratio);
        value["target_ratio_jobs_pgbench"] = json!(TARGET_PGBENCH_RATIO);
        value["ratio_jobs_pgbench_met"] = json!(ratio.map(|r| r >= TARGET_PGBENCH_RATIO));
        value
    }
}

impl SuiteReport for ProvisioningReport {
    fn table(&self, _args: &BenchArgs, out: &mut String) {
        let plan = &self.plan;
        let _ = writeln!(
            out,
            "ironmesh-bench · provisioning: jobs/s of {WORKERS} workers vs pgbench simple-update, \
             what {} queue-position watchers cost · {} jobs per drain, the watchers' drain paced \
             over {:.1} s",
            plan.watchers, plan.jobs, plan.period
        );
        let _ = writeln!(
            out,
            "auth and provisioning started through the launcher in this process on one runtime \
             (production settings: the position board refreshed every {} ms); workers, watchers \
             and submitters are tonic clients on a second runtime (threads {CLIENT_THREADS}) over \
             {CHANNELS} HTTP/2 connections; a job is ClaimJob (100 ms long-poll) + CompleteJob \
             with a result map, requests submitted by an operator beforehand (mixed tiers); \
             service CPU = every thread of this process but the main one and the clients' (the \
             PostgreSQL server's own processes not included)\n",
            plan.refresh_ms
        );
        self.sqlite.table(plan, None, out);
        match &self.postgres {
            Some(pg) => pg.run.table(plan, Some(pg), out),
            None => {
                let _ = writeln!(out, "postgres\n  not run: {POSTGRES_NOT_RUN}");
            }
        }
    }

    fn json(&self) -> Value {
        let plan = &self.plan;
        json!({
            "params": {
                "jobs": plan.jobs,
                "workers": WORKERS,
                "watchers": plan.watchers,
                "lead": plan.lead,
                "watch_period_secs": num(plan.period),
                "position_refresh_ms": plan.refresh_ms,
                "channels": CHANNELS,
            },
            "sqlite": self.sqlite.json(plan),
            "postgres": self.postgres.as_ref().map_or_else(
                || json!({ "run": false, "reason": POSTGRES_NOT_RUN }),
                |pg| pg.json(plan),
            ),
        })
    }

    fn server_log(&self) -> &str {
        // The services run in this process; their failures fail the run.
        ""
    }
}
