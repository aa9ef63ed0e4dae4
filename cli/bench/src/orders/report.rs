//! The orders suite's report: its section of the table and its member of the JSON object.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{
    BackendRun, CONTENDERS, CUSTOMERS, OrdersReport, PostgresRun, SCARCE_STOCK,
    TARGET_PGBENCH_RATIO, backend_name,
};
use crate::args::BenchArgs;
use crate::report::{SuiteReport, num, opt_num, or_na, verdict};

const POSTGRES_NOT_RUN: &str = "BENCH_DATABASE_URL (or --database-url) is not set";

impl BackendRun {
    fn table(&self, out: &mut String) {
        let t = &self.throughput;
        let c = &self.contention;
        let _ = writeln!(out, "{}", backend_name(self.backend));
        let _ = writeln!(
            out,
            "  CreateOrder          {:>7} orders in {:>7.3} s = {:>9.1} orders/s, {} callers, \
             p50 {:.2} ms, p99 {:.2} ms",
            t.orders,
            t.secs,
            t.per_sec(),
            self.clients,
            t.p50_ms,
            t.p99_ms
        );
        let _ = writeln!(
            out,
            "  per order            {:.2} inventory RPCs, {} commits (every store and relay)",
            self.costs.inventory_rpcs,
            or_na(self.costs.commits, |n| format!("{n:.2}"))
        );
        let _ = writeln!(
            out,
            "  contention           {CONTENDERS} orders for {SCARCE_STOCK} units in {:.1} ms: \
             {} RESERVED, {} refused, inventory reserved {} — exact",
            c.wall_ms, c.reserved, c.rejected, c.stock_reserved
        );
    }

    fn json(&self) -> Value {
        let t = &self.throughput;
        let c = &self.contention;
        json!({
            "run": true,
            "clients": self.clients,
            "orders": t.orders,
            "secs": num(t.secs),
            "orders_per_sec": num(t.per_sec()),
            "p50_ms": num(t.p50_ms),
            "p99_ms": num(t.p99_ms),
            "inventory_rpcs_per_order": num(self.costs.inventory_rpcs),
            "commits_per_order": opt_num(self.costs.commits),
            "contention": {
                "orders": CONTENDERS,
                "stock": SCARCE_STOCK,
                "wall_ms": num(c.wall_ms),
                "reserved": c.reserved,
                "refused": c.rejected,
                "inventory_reserved": c.stock_reserved,
                "exact": true,
            },
        })
    }
}

impl PostgresRun {
    fn ratio(&self) -> f64 {
        self.run.throughput.per_sec() / self.pgbench_tps
    }

    fn table(&self, out: &mut String) {
        self.run.table(out);
        let ratio = self.ratio();
        let _ = writeln!(
            out,
            "  pgbench tpcb-like    {:.1} tps, {} clients\n  \
             CreateOrder/s ÷ pgbench tps = {:.1} ÷ {:.1} = {ratio:.2} (target ≥ \
             {TARGET_PGBENCH_RATIO:.2}) {}",
            self.pgbench_tps,
            self.run.clients,
            self.run.throughput.per_sec(),
            self.pgbench_tps,
            verdict(ratio >= TARGET_PGBENCH_RATIO)
        );
    }

    fn json(&self) -> Value {
        let mut value = self.run.json();
        let ratio = self.ratio();
        value["pgbench_tps"] = num(self.pgbench_tps);
        value["ratio_orders_pgbench"] = num(ratio);
        value["target_ratio_orders_pgbench"] = json!(TARGET_PGBENCH_RATIO);
        value["ratio_orders_pgbench_met"] = json!(ratio >= TARGET_PGBENCH_RATIO);
        value
    }
}

impl SuiteReport for OrdersReport {
    fn table(&self, _args: &BenchArgs, out: &mut String) {
        let _ = writeln!(
            out,
            "ironmesh-bench · orders: CreateOrder end to end (pricing, reservation, outbox) vs \
             pgbench · {} s per run",
            self.secs
        );
        let _ = writeln!(
            out,
            "auth, inventory, orders and audit started through the launcher in this process, \
             callers are tonic clients on the same runtime (not pinned), {CUSTOMERS} customers; \
             one line of 1 unit per order, stock plenty; an order is BatchGetProducts + Reserve \
             (2 RPCs) and 3 commits on the request path (PENDING + outbox, the reservation + \
             outbox, RESERVED + outbox), the relays' commits beside it\n"
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
            "params": { "secs": self.secs, "customers": CUSTOMERS },
            "sqlite": self.sqlite.json(),
            "postgres": self.postgres.as_ref().map_or_else(
                || json!({ "run": false, "reason": POSTGRES_NOT_RUN }),
                PostgresRun::json,
            ),
        })
    }

    fn server_log(&self) -> &str {
        // The services run in this process; their failures fail the run.
        ""
    }
}
