//! The auth suite's report: its section of the table and its member of the JSON object.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::argon2::{HashTiming, ITERATIONS, MEMORY_KIB, PARALLELISM};
use super::{
    AuthReport, GET_ME_PATH, LOGIN_PATH, PROBE_STREAMS, TARGET_FLOOD_P99_RATIO, TARGET_LOGIN_RATIO,
};
use crate::args::BenchArgs;
use crate::report::{SuiteReport, num, opt_num, verdict};

impl AuthReport {
    fn login_ratio(&self) -> f64 {
        self.login.req_per_sec / self.bound
    }

    fn flood_ratio(&self) -> f64 {
        self.flood.p99_ms / self.idle.p99_ms
    }
}

impl SuiteReport for AuthReport {
    fn table(&self, args: &BenchArgs, out: &mut String) {
        let probe_rate = self.probe_clients * self.probe_rps;
        let ms = |secs: f64| secs * 1e3;
        let _ = writeln!(
            out,
            "ironmesh-bench · auth: the real auth service (SQLite, temp dir) · {} s measured after {} s warm-up",
            args.duration, args.warmup
        );
        let _ = writeln!(
            out,
            "server: production runtime, process NOT pinned, all {} cores (the argon2 bound assumes \
             hashing gets every core); h2load: 1 thread per run, NOT pinned (shares those cores)",
            self.cores
        );
        let [before, after] = &self.hashing;
        let _ = writeln!(
            out,
            "argon2id m={MEMORY_KIB} KiB t={ITERATIONS} p={PARALLELISM}, {} hashes one after another \
             on one thread in reused memory, right before / right after the Login run: {:.2} / {:.2} \
             ms/hash (fastest {:.2} / {:.2})",
            self.hashes,
            ms(before.secs_per_hash),
            ms(after.secs_per_hash),
            ms(before.fastest_secs_per_hash),
            ms(after.fastest_secs_per_hash),
        );
        let _ = writeln!(
            out,
            "  bound = {} cores ÷ {:.4} s (mean) = {:.1} logins/s",
            self.cores, self.secs_per_hash, self.bound
        );
        let _ = writeln!(
            out,
            "  no target: hashing the server's way (a worker thread allocating 19 MiB per hash) \
             {:.2} / {:.2} ms/hash; {} threads at once {:.1} / {:.1} hashes/s\n",
            ms(before.server_way_secs_per_hash),
            ms(after.server_way_secs_per_hash),
            self.cores,
            before.parallel_rate,
            after.parallel_rate
        );
        let _ = writeln!(
            out,
            "{:<26} {:>9} {:>9} {:>9} {:>10} {:>14}",
            "RUN", "REQ/S", "P50 MS", "P99 MS", "REQUESTS", "SERVER P99 MS"
        );
        let bucket = |p99: Option<f64>| match p99 {
            Some(v) if v.is_finite() => format!("≤ {v}"),
            Some(_) => "> 10000".to_owned(),
            None => "n/a".to_owned(),
        };
        let rows = [
            (
                format!("Login (-c {} -m 1)", self.login_clients),
                &self.login,
                String::new(),
            ),
            (
                format!("GetMe idle ({probe_rate}/s)"),
                &self.idle,
                bucket(self.idle_server_p99_ms),
            ),
            (
                "GetMe during Login flood".to_owned(),
                &self.flood,
                bucket(self.flood_server_p99_ms),
            ),
            (
                format!("Login flood (-c {})", self.login_clients),
                &self.flood_logins,
                String::new(),
            ),
        ];
        for (name, run, server) in rows {
            let _ = writeln!(
                out,
                "{:<26} {:>9.1} {:>9.3} {:>9.3} {:>10} {:>14}",
                name, run.req_per_sec, run.p50_ms, run.p99_ms, run.requests, server
            );
        }
        let _ = writeln!(out, "\nauth");
        let ratio = self.login_ratio();
        let _ = writeln!(
            out,
            "  logins/s ÷ argon2 bound = {:.1} ÷ {:.1} = {ratio:.2} (target ≥ {TARGET_LOGIN_RATIO:.2}) {}",
            self.login.req_per_sec,
            self.bound,
            verdict(ratio >= TARGET_LOGIN_RATIO)
        );
        if let (Some(per_login), Some(percent)) = (self.cpu_ms_per_login, self.login_cpu_percent) {
            let _ = writeln!(
                out,
                "  server CPU during the Login run: {percent:.0}% of one core, {per_login:.2} ms per login \
                 (one hash ≈ {:.2} ms)",
                ms(self.secs_per_hash)
            );
        }
        let ratio = self.flood_ratio();
        let _ = writeln!(
            out,
            "  GetMe p99 during flood ÷ idle = {:.3} ÷ {:.3} ms = {ratio:.2} (target ≤ {TARGET_FLOOD_P99_RATIO:.2}) {}",
            self.flood.p99_ms,
            self.idle.p99_ms,
            verdict(ratio <= TARGET_FLOOD_P99_RATIO)
        );
        let _ = writeln!(
            out,
            "  (SERVER P99: the server's own handling-time histogram, bucket bound; P99 MS is h2load's, \
             client scheduling included)"
        );
        let _ = writeln!(
            out,
            "checks: Register + Login + GetMe OK over gRPC before and after; every request HTTP 200; \
             the server's handled counters show only OK ({} CANCELLED when a run's time ran out)",
            self.cancelled
        );
    }

    fn json(&self) -> Value {
        let login_ratio = self.login_ratio();
        let flood_ratio = self.flood_ratio();
        json!({
            "cores": self.cores,
            "server_pinned": false,
            "argon2": {
                "memory_kib": MEMORY_KIB,
                "iterations": ITERATIONS,
                "parallelism": PARALLELISM,
                "hashes": self.hashes,
                "before_login_run": self.hashing[0].json(),
                "after_login_run": self.hashing[1].json(),
                "secs_per_hash": num(self.secs_per_hash),
                "bound_logins_per_sec": num(self.bound),
                "parallel_hashes_per_sec": num(self.parallel_rate),
            },
            "login": {
                "rpc": LOGIN_PATH,
                "clients": self.login_clients,
                "streams": 1,
                "run": self.login.json(),
                "server_cpu_ms_per_login": opt_num(self.cpu_ms_per_login),
                "server_cpu_percent": opt_num(self.login_cpu_percent),
                "ratio_to_bound": num(login_ratio),
                "target_ratio_to_bound": TARGET_LOGIN_RATIO,
                "ratio_to_bound_met": login_ratio >= TARGET_LOGIN_RATIO,
                "ratio_to_parallel_rate": num(self.login.req_per_sec / self.parallel_rate),
            },
            "get_me": {
                "rpc": GET_ME_PATH,
                "clients": self.probe_clients,
                "streams": PROBE_STREAMS,
                "rps_per_client": self.probe_rps,
                "idle": self.idle.json(),
                "during_flood": self.flood.json(),
                "idle_server_p99_ms_bucket": opt_num(self.idle_server_p99_ms),
                "during_flood_server_p99_ms_bucket": opt_num(self.flood_server_p99_ms),
                "flood_logins": self.flood_logins.json(),
                "ratio_p99": num(flood_ratio),
                "target_ratio_p99": TARGET_FLOOD_P99_RATIO,
                "ratio_p99_met": flood_ratio <= TARGET_FLOOD_P99_RATIO,
            },
            "cancelled_calls": self.cancelled,
        })
    }

    fn server_log(&self) -> &str {
        &self.server_log
    }
}

impl HashTiming {
    fn json(&self) -> Value {
        json!({
            "secs_per_hash": num(self.secs_per_hash),
            "fastest_secs_per_hash": num(self.fastest_secs_per_hash),
            "server_way_secs_per_hash": num(self.server_way_secs_per_hash),
            "parallel_hashes_per_sec": num(self.parallel_rate),
        })
    }
}
