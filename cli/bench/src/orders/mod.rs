//! The `orders` suite: what a whole CreateOrder costs — pricing from inventory, the reservation,
//! three commits and the outbox — as orders per second against pgbench's tpcb-like transactions
//! per second on the same PostgreSQL server with as many clients; the same flow on SQLite at
//! 32 clients with its p99; and the 200-orders-for-10-units contention run, timed and checked
//! exact. Everything runs in this process: auth, inventory, orders and audit through the
//! launcher (every port 0 on loopback, the production runtime's shape), the callers as tonic
//! clients on the same runtime; pgbench is a child process.
//!
//! # Layout
//! - `mod.rs` (this file): one run per backend ([`run_backend`]), the PostgreSQL baseline, the
//!   figures.
//! - [`load`]: the shop the runs need (an operator, customers, two products), the closed-loop
//!   CreateOrder load, the contention run and the per-order costs read from the servers.
//! - [`costs`]: inventory RPCs and PostgreSQL commits per order, read from the servers.
//! - The baseline is [`crate::pgbench`]'s tpcb-like run in a fresh database of the same
//!   server.
//! - [`report`]: the suite's table section and JSON.

mod costs;
mod load;
mod report;

use std::path::Path;

use ironmesh_launcher::mesh::{self, Component};
use ironmesh_runtime::storage::Backend;
use ironmesh_runtime::{Config, ServiceKind};

use self::costs::Costs;
use self::load::{Contention, Shop, Throughput};
use crate::args::BenchArgs;
use crate::error::BenchError;
use crate::pgbench::{Pgbench, Script};
use crate::stores::{FreshDatabase, backend_name, failed};

/// Target from the orders issue: CreateOrder/s ÷ pgbench tps (same server, same clients).
const TARGET_PGBENCH_RATIO: f64 = 0.4;
/// Concurrent callers of the SQLite run (from the issue).
const SQLITE_CLIENTS: u32 = 32;
/// The contention run: this many orders of one unit, from this many customers, for this stock.
const CONTENDERS: u32 = 200;
const CUSTOMERS: usize = 20;
const SCARCE_STOCK: i64 = 10;
/// Scale of the pgbench tables: 10 branches, so 10 clients rarely wait on one branch row.
const PGBENCH_SCALE: u32 = 10;

#[derive(Debug)]
pub struct OrdersReport {
    secs: u64,
    sqlite: BackendRun,
    /// None: no PostgreSQL server was given.
    postgres: Option<PostgresRun>,
}

/// What one backend measured.
#[derive(Debug)]
struct BackendRun {
    backend: Backend,
    clients: u32,
    throughput: Throughput,
    costs: Costs,
    contention: Contention,
}

#[derive(Debug)]
struct PostgresRun {
    run: BackendRun,
    pgbench_tps: f64,
}

/// The SQLite run, then (with `--database-url` / `BENCH_DATABASE_URL`) the PostgreSQL run and
/// pgbench with as many clients.
pub fn measure(args: &BenchArgs, workdir: &Path) -> Result<OrdersReport, BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("cannot start the async runtime"))?;
    let dir = workdir.join("orders-sqlite");
    std::fs::create_dir_all(&dir)
        .map_err(BenchError::io(format!("cannot create {}", dir.display())))?;
    let sqlite = runtime.block_on(run_backend(args, &dir, None, SQLITE_CLIENTS))?;
    let postgres = match args.database_url.as_deref().filter(|url| !url.is_empty()) {
        Some(server) => {
            let dir = workdir.join("orders-postgres");
            std::fs::create_dir_all(&dir)
                .map_err(BenchError::io(format!("cannot create {}", dir.display())))?;
            let clients = args.order_clients;
            Some(runtime.block_on(async {
                let fresh = FreshDatabase::create(server).await?;
                let run = run_backend(args, &dir, Some(&fresh.url), clients).await;
                fresh.drop_database().await;
                let run = run?;
                crate::progress(
                    args,
                    &format!("orders: pgbench tpcb-like, {clients} clients…"),
                );
                let pgbench = Pgbench::find().ok_or_else(|| {
                    BenchError::Failed(
                        "cannot run pgbench (apt-get install -y postgresql-client)".into(),
                    )
                })?;
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
                let script = Script {
                    builtin: "tpcb-like",
                    clients,
                    threads,
                    secs: args.duration,
                };
                let baseline = FreshDatabase::create(server).await?;
                let tps = pgbench.tps(&baseline.url, PGBENCH_SCALE, script).await;
                baseline.drop_database().await;
                Ok::<_, BenchError>(PostgresRun {
                    run,
                    pgbench_tps: tps?,
                })
            })?)
        }
        None => None,
    };
    Ok(OrdersReport {
        secs: args.duration,
        sqlite,
        postgres,
    })
}

/// Starts the shop's services on SQLite in `dir` (or PostgreSQL at `database_url`), warms up,
/// measures `clients` closed-loop callers, then the contention run; stops the services.
async fn run_backend(
    args: &BenchArgs,
    dir: &Path,
    database_url: Option<&str>,
    clients: u32,
) -> Result<BackendRun, BenchError> {
    let backend = if database_url.is_some() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let name = backend_name(backend);
    crate::progress(args, &format!("orders on {name}: starting the shop…"));
    let mut config: Config = crate::serve::mesh_config(dir).map_err(BenchError::Failed)?;
    config.database_url = database_url.map(str::to_owned);
    config
        .validate()
        .map_err(|err| BenchError::Failed(format!("the shop's config: {err}")))?;
    let services = [
        ServiceKind::Auth,
        ServiceKind::Inventory,
        ServiceKind::Orders,
        ServiceKind::Audit,
    ];
    let bound = mesh::bind(config, &services, false)
        .await
        .map_err(failed("cannot bind the shop"))?;
    let config = bound.config().clone();
    let running = bound
        .start_healthy(crate::serve::READY_LIMIT, std::future::pending())
        .await
        .map_err(failed("the shop did not start"))?;
    let address = |kind| {
        running
            .address(Component::Service(kind))
            .ok_or_else(|| BenchError::Failed(format!("{} is not in the mesh", kind.name())))
    };
    let addresses = load::Addresses {
        auth: address(ServiceKind::Auth)?.main,
        inventory: address(ServiceKind::Inventory)?.main,
        inventory_admin: address(ServiceKind::Inventory)?.admin,
        orders: address(ServiceKind::Orders)?.main,
    };
    let result = async {
        let shop = Shop::open(&config, &addresses, CUSTOMERS).await?;
        if args.warmup > 0 {
            crate::progress(args, &format!("orders on {name}: warming up…"));
            shop.closed_loop(clients, args.warmup).await?;
        }
        crate::progress(
            args,
            &format!(
                "orders on {name}: {clients} callers for {} s…",
                args.duration
            ),
        );
        let before = shop.costs_mark(database_url).await?;
        let throughput = shop.closed_loop(clients, args.duration).await?;
        let costs = shop
            .costs_since(&before, database_url, throughput.orders)
            .await?;
        crate::progress(
            args,
            &format!("orders on {name}: {CONTENDERS} orders for {SCARCE_STOCK} units…"),
        );
        let contention = shop.contention(CONTENDERS, SCARCE_STOCK).await?;
        Ok::<_, BenchError>(BackendRun {
            backend,
            clients,
            throughput,
            costs,
            contention,
        })
    }
    .await;
    let errors = running.stop().await;
    let run = result?;
    match errors.first() {
        None => Ok(run),
        Some(err) => Err(BenchError::Failed(format!("the shop failed: {err}"))),
    }
}
