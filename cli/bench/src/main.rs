//! `ironmesh-bench`: what the shared server stack, token verification, password hashing, the
//! REST gateway, the events pipeline, orders, webhook delivery and the provisioning queue cost,
//! as ratios measured in one run.
//!
//! # Suites (`--suite stack|auth|gateway|events|orders|notification|provisioning|all`, default
//! all: every suite)
//!
//! ## `stack`: the server stack, with and without token verification
//! One trivial RPC, `grpc.health.v1.Health/Check` (tonic-health, `""` set to SERVING), is served
//! three times by one server process:
//! - **bare**: `tonic::transport::Server::builder()` with nothing added;
//! - **stack**: [`ironmesh_runtime::server::grpc_server`] — exactly the builder production
//!   servers use (message limit, then the whole interceptor stack of DESIGN.md §4) — built from
//!   `Config::default()`, without an authenticator;
//! - **stack+auth**: the same builder with the production authenticator
//!   (`ironmesh_runtime::auth::credentials`) over a static JWKS holding an Ed25519 key the bench
//!   generates, and Health/Check made `Authenticated` in the policy table. h2load sends an access
//!   token minted as auth mints them (EdDSA, `typ` `at+jwt`, `kid`, iss/aud from
//!   `config.tokens`, exp = now + 900 s, role `customer`), so every call verifies a signature.
//!   Before the run, a call without a token and one with a forged token (same `kid`, other key)
//!   must be refused with UNAUTHENTICATED, and one with the token must succeed.
//!
//! All get the same listener setup as production (`TCP_NODELAY`), and the server process runs
//! the production logging subscriber, so the stack's per-call spans are live, not no-ops. OTLP
//! export is switched off for it. `h2load` drives each server in turn with the same parameters
//! (`-D` seconds after a warm-up, `-c` connections × `-m` streams). Targets (from the interceptor
//! issue, for both stack and stack+auth against bare): req/s ratio ≥ 0.90, p99 ≤ 1.25 × bare. The
//! server CPU time per call is reported too (the least noisy figure), and one verification timed
//! alone in the bench process.
//!
//! Pinning: the servers run in a child process (`ironmesh-bench --serve stack`) under
//! `taskset -c <server-cpu>`, on a tokio runtime with one worker thread, so the whole server is on
//! one core; `h2load` (one thread) runs under `taskset -c <load-cpu>`.
//!
//! ## `auth`: logins against the argon2 bound, a cheap RPC during a login flood
//! The real auth service runs in a child process (`ironmesh-bench --serve auth`) through
//! [`ironmesh_launcher::mesh`], on the production runtime, SQLite in a temp dir, every port 0 on
//! loopback, lockout thresholds raised so the flood is never locked out. It is **not pinned**:
//! the argon2 bound assumes hashing gets every core. h2load runs unpinned too (one thread each).
//! The bench registers one user and logs in once over gRPC for an access token.
//! - **argon2 bound**: N argon2id hashes at the production parameters (m = 19456 KiB, t = 2,
//!   p = 1, v0x13) one after another on one thread of the bench process, in one block of memory
//!   reused by every hash (argon2's own work, free of allocator and page-fault noise), while the
//!   server idles, right before and right after the Login run → mean seconds per hash; bound =
//!   available cores ÷ seconds per hash (logins/s). Target: measured logins/s ≥ 0.8 × bound. For
//!   diagnosis (no target) the same hashes are also timed the way the server computes them (on a
//!   worker thread, allocating 19 MiB per hash) and with one thread per core at once.
//! - **login throughput**: h2load `Login` (`-c 2×cores -m 1`) with the encoded `LoginRequest`.
//! - **GetMe p99 under a login flood**: h2load `GetMe` with the access token at a fixed rate
//!   (`--rps` per connection), idle, then while a second h2load floods `Login`. Target: flood p99
//!   ≤ 1.5 × idle p99. The p99 is h2load's (client scheduling included); the server's own p99
//!   from its handling-time histogram (a bucket bound) is shown beside it.
//!
//! ## `gateway`: the same RPC directly over gRPC and through the REST gateway
//! The whole mesh (every service and the gateway, [`ironmesh_launcher::mesh`], SQLite in a temp dir,
//! every port 0 on loopback) runs in a child process (`ironmesh-bench --serve gateway`) on the
//! production runtime under `taskset -c <server-cpu>` (so one tokio worker), with the gateway's
//! rate limiter on but at a limit the run never reaches. h2load (one thread) runs under
//! `taskset -c <load-cpu>`. The RPC is auth's public `GetJwks`: gRPC
//! `/ironmesh.auth.v1.AuthService/GetJwks` against auth's port (`-c` × `-m` like the stack
//! suite), then REST `GET /v1/auth/jwks` against the gateway with the same number of requests
//! in flight — HTTP/1.1 by default (`--gateway-rest h1`: `-c` × `-m` connections, one request
//! at a time each, no pipelining), or h2c with the gRPC run's `-c`/`-m` (`--gateway-rest h2c`).
//! Target (from the gateway issue): REST req/s ÷ direct req/s ≥ 0.60. Reported beside it: the
//! added p50 per request (REST − direct) under that load, where it includes queueing, and from a
//! second pair of runs with one request at a time (`-c 1 -m 1`), where it does not; and the
//! server CPU per request of each path (REST − direct: the gateway's share).
//!
//! ## `events`: the outbox relay against the producer, audit Append against plain INSERTs
//! Everything runs in the bench process, on one multi-threaded tokio runtime (the production
//! runtime's shape) that the producer, the relay and audit share, not pinned; no h2load. First on
//! SQLite (a file per store in the work directory); then, when `--database-url` /
//! `BENCH_DATABASE_URL` names a PostgreSQL server, again in a fresh database created for the run
//! and dropped after it (each store in its own schema, as services share one database);
//! otherwise the PostgreSQL figures are reported as not run. On each backend:
//! - **producer inserts**: a fresh producer store holding only the outbox tables
//!   (`ironmesh_outbox::schema::OUTBOX`) and an [`ironmesh_outbox::Outbox`] of `auth` with one
//!   subscriber, `audit` (`*`). One writer writes `--events` N events (`auth.login.failed`, each
//!   its own aggregate, so per-aggregate order holds none back), one per transaction with
//!   `Outbox::write` inside `with_pool!`, as a producer writes beside its change; the relay is
//!   not running → events/s.
//! - **relay end to end**: the real audit service, started through [`ironmesh_launcher::mesh`]
//!   (configured as the auth and gateway children are), is the subscriber's sink, reached over
//!   the shared client stack as `service:auth` (`Deliver` is internal). The relay
//!   (`RelayConfig::default()`) starts with the N events pending and is timed until no delivery
//!   is pending (looked up every 20 ms) → events/s. Target (from the events issue): relay ÷
//!   producer inserts ≥ 1.0, i.e. the relay keeps up with the fastest producer. On PostgreSQL
//!   the tables have no statistics yet when the relay starts (nothing analyzes them first): the
//!   relay's first claim times out after 5 s and analyzes them, inside the timed run, as a
//!   relay starting on a backlog in production does.
//! - **lag at half load**: with the relay running, the writer writes at half the slower of those
//!   two rates for `--duration` seconds (paced on a 1 ms timer, waking the relay after each
//!   commit), then waits until every event is delivered; lag = audit's `recorded_at` − the
//!   event's `occurred_at`, over those entries → p50, p99 and max, beside the rate achieved
//!   (all the events asked for are written; a writer slower than asked takes longer).
//! - **Append vs plain INSERT**: a second fresh audit store (`ironmesh_audit::MIGRATIONS`);
//!   `Audit::append` of `--entries` M valid entries in batches of 500 → entries/s; then the rows
//!   it stored (the chain hashes as plain bytes) INSERTed into a scratch table with the columns
//!   and indexes of `entries`, in the same store, 500 rows per transaction → rows/s. Target:
//!   Append ÷ INSERT ≥ 0.5.
//!
//! ## `orders`: CreateOrder end to end against pgbench
//! Auth, inventory, orders and audit run in the bench process through the launcher (as the
//! events suite runs audit); an operator (made out of band) creates a product with plenty of
//! stock, 20 customers register. Closed-loop callers (tonic clients on the same runtime, four
//! connections) place one-line orders of one unit for `--duration` seconds after `--warmup`;
//! every order must come back RESERVED → orders/s, p50, p99. On SQLite with 32 callers; on
//! PostgreSQL (`--database-url` / `BENCH_DATABASE_URL`, a fresh database) with
//! `--order-clients` (8) callers, then pgbench's built-in tpcb-like script with as many clients
//! for as long in another fresh database of the same server. Target (from the orders issue):
//! CreateOrder/s ÷ pgbench tps ≥ 0.4. Per order it reports the inventory RPCs orders made (from
//! inventory's handled counters) and, on PostgreSQL, every transaction committed on the server
//! (`pg_stat_database.xact_commit`: the request path's three plus the relays' and audit's). Then
//! the contention run: 200 one-unit orders at once from the 20 customers for a product with 10
//! units → wall time; exactly 10 RESERVED, 190 refused FAILED_PRECONDITION and 10 units reserved
//! in inventory, or the run fails.
//!
//! ## `notification`: webhook deliveries against wrk, a healthy endpoint beside a hanging one
//! Auth and notification run in the bench process through [`ironmesh_launcher::mesh`] (as the
//! orders suite runs its services), a fresh mesh for each of the two measurements; an operator
//! (made out of band) Sends webhook-only notifications (`channels: [CHANNEL_WEBHOOK]`) to
//! customers who registered over gRPC and created their endpoints with CreateWebhookEndpoint.
//! The receiver is a hyper HTTP/1.1 server on 127.0.0.1 on its own one-thread tokio runtime in
//! the bench process, answering 204 once the body is read and recording every request's
//! arrival time and `webhook-id`. Its URL is `http://127.0.0.1:…`, so both meshes set
//! `notification.allow_insecure_webhooks` and `allow_private_webhook_targets` — test-only
//! switches, never for a deployment — because the receiver is plain http on loopback; every
//! other engine setting is production's default (4 attempts in flight per endpoint, 64 in all,
//! a circuit opening after 5 failures) except the attempt timeouts named below. On SQLite, then
//! on PostgreSQL (`--database-url` / `BENCH_DATABASE_URL`, a fresh database per mesh, dropped
//! after it), otherwise reported as not run.
//! - **throughput** (attempt timeout 300 s, so held attempts are answered, not timed out): the
//!   first delivery's headers and body are captured and its `webhook-signature` verified with
//!   the endpoint's secret. Then `--notifications` N (2000) Sends from 16 concurrent callers to
//!   one endpoint, delivered while they are made: **end to end** = N ÷ (first Send → last
//!   delivery received), Send path included (the Sends' own rate is shown beside it). Then N
//!   more Sends while the receiver holds every request it gets unanswered (the engine's 4
//!   attempts to the endpoint wait, the rest queue as PENDING); once all are queued the
//!   receiver answers: **engine alone** = N ÷ (release → last delivery received), the delivery
//!   engine draining a backlog with no Send in the way. Baseline: `wrk -t1 -c4 -d<duration>s
//!   -s post.lua` (the Lua script, written in the work directory, sets the method, the captured
//!   body and headers) against the same receiver → requests/s; the same 4 requests in flight as
//!   the engine allows one endpoint. Target (from the notification issue): deliveries/s ÷ wrk
//!   req/s ≥ 0.5, judged for both. Without `wrk` on PATH the row says so and the rest runs.
//! - **isolation** (attempt timeout 1 s, retries 1 s apart up to 20 attempts, circuit
//!   cool-down 1 s: the hanging endpoint keeps the engine busy): Sends at a fixed
//!   `--notification-rate` R (50/s) to a healthy customer's endpoint and R/s to a second
//!   customer, open loop, for `--duration` seconds after a `--warmup`; latency = the Send's
//!   `created_at` → the request's arrival at the receiver, over the healthy deliveries → p50,
//!   p99, max. First with the second customer having no endpoint (its Sends make the
//!   notification only), then with its endpoint pointing at a listener that accepts TCP and
//!   never answers. Target: p99 with the hanging endpoint ÷ p99 without ≤ 1.2. What the hanging
//!   endpoint got (connections, deliveries, attempts) is shown beside it.
//!
//! ## `provisioning`: jobs/s against pgbench, the cost of 1,000 queue-position watchers
//! Auth and provisioning (production settings) run in this process through the launcher on one
//! runtime; the clients (an operator, a `service:worker-bench` identity) run on a second one
//! whose threads are named `bench-clients`, over 10 connections. SQLite, then PostgreSQL
//! (`--database-url` / `BENCH_DATABASE_URL`, a fresh database), otherwise not run.
//! - **jobs/s**: `--jobs` N (2000) requests submitted beforehand (mixed tiers); 8 worker tasks
//!   ClaimJob (100 ms long-poll) + CompleteJob until a claim finds nothing → N ÷ (start → last
//!   CompleteJob). Baseline on PostgreSQL: pgbench `-b simple-update` (`-N`) `-c 8 -j 2 -T
//!   --duration` after `-i -s 1` in another fresh database (PATH or
//!   `/usr/lib/postgresql/*/bin`; if missing, said so). Target: jobs/s ÷ tps ≥ 0.3.
//! - **watchers**: `--watchers` W (1000) requests queued behind L unwatched critical ones, a
//!   `WatchQueuePosition` stream on each; 8 workers drain them paced over `--duration` s (≥ 5)
//!   → the service's CPU (this process's threads but main and `bench-clients`, from /proc; not
//!   the PostgreSQL server's), position queries/s (provisioning's `/metrics` counter), commits/s
//!   (`pg_stat_database`, PostgreSQL) and stream messages/s. No target.
//!
//! # Correctness checks (a failed check exits 1)
//! `h2load` does not read `grpc-status`. So before and after each run one tonic call must answer
//! OK; after it every request in h2load's per-request log must have HTTP status 200 and h2load
//! must report no failed or errored request. Health/Check bodies must add up to exactly one
//! 7-byte SERVING frame per request (an error answer is trailers-only and carries no body). Auth
//! answers vary in size, so there the server's own `ironmesh_grpc_server_handled_total` counters
//! (its admin `/metrics`) are read around each run: at least as many OK as h2load counted
//! successes, and no other code except CANCELLED (requests cut when h2load's `-D` ends). The
//! gateway suite checks both ways: one tonic GetJwks (≥ 1 key) and one REST GET (200, the same
//! `keys`) before and after each run; every response must be exactly that answer (h2load's
//! data bytes = requests × the gRPC frame or JSON body size), and auth's handled counters must
//! show every request of either path OK. The events suite checks that audit's store holds exactly
//! the events written, each once with its id as `idempotency_key` and nothing else; that the
//! outbox records every pair delivered and no dead letter (pairs the relay retried are counted
//! and shown); that Append returned its entries in sequence and chained; and that the scratch
//! table has the columns and the index count of `entries` and every row INSERTed. The
//! notification suite checks, for every run on the healthy endpoint, that each notification
//! sent has exactly one delivery to it, DELIVERED (looked up with ListDeliveries once none is
//! PENDING), whose `webhook-id` reached the receiver exactly once, and that nothing else
//! arrived; that the captured delivery's signature verifies; that wrk reported no socket error
//! or non-2xx answer and the receiver counted at least the requests wrk did. The provisioning
//! suite checks that every request was claimed once, completed once and is listed SUCCEEDED
//! once (ListRequests), and that every watcher's position fell, then its request left QUEUED
//! and the stream ended OK.
//!
//! It is a benchmark, not a test: `make bench` runs it, `make test` never does. It is its own
//! binary crate so that neither its code nor its dependencies (argon2 timing, token minting,
//! h2load plumbing) ship in the `ironmesh` binary.
//!
//! # Layout
//! - `main` (this file): the command line, and one run: the suites asked for, then the report.
//! - [`args`]: the options ([`BenchArgs`]) and what they choose ([`Suite`], [`Role`],
//!   [`RestProtocol`]).
//! - [`error`]: [`BenchError`], why a run produced no trustworthy result, and its exit code.
//! - [`report`]: [`Report`], the suites' results as a table or one JSON object, and the number
//!   and verdict formatting the suites share.
//! - [`stores`]: a fresh PostgreSQL database per run, its commit counter, error chains (events,
//!   orders, notification and provisioning suites).
//! - The suites, each a directory: `mod.rs` measures, `checks.rs` holds the calls and counter
//!   checks that prove the figures honest, `report.rs` prints them:
//!   - [`stack`]: bare vs the server stack vs the stack with token verification;
//!     `stack/server.rs` is its server child (the three servers);
//!   - [`auth`]: logins against the argon2 bound, GetMe during a login flood; `auth/argon2.rs`
//!     times the hashing the bound is made of;
//!   - [`gateway`]: one RPC directly over gRPC and through the REST gateway;
//!   - [`events`]: the relay against the producer's inserts and the lag at half load
//!     (`events/pipeline.rs`, paced by `events/pace.rs`), audit Append against plain INSERTs
//!     (`events/append.rs`); no child, no h2load;
//!   - [`orders`]: CreateOrder against pgbench (`orders/load.rs`, `orders/costs.rs`), no
//!     child;
//!   - [`notification`]: webhook deliveries against wrk (`notification/throughput.rs`,
//!     `notification/wrk.rs`), a healthy endpoint's p99 beside a hanging one
//!     (`notification/isolation.rs`); the receivers are `notification/receiver.rs`, the calls
//!     `notification/load.rs`; no child, no h2load;
//!   - [`provisioning`]: jobs/s against pgbench (`drain.rs`), 1,000 watchers (`watch.rs`) and
//!     what they cost (`costs.rs`); no child, no h2load.
//! - What the suites share:
//!   - [`h2load`]: driving h2load, reading its summary and per-request log;
//!   - [`figures`]: one run's figures ([`figures::Run`]), with the server CPU it took;
//!   - [`scrape`]: the server's admin `/metrics` read (handled counters, handling-time buckets,
//!     any family by one label);
//!   - [`pgbench`]: the PostgreSQL peer of the orders and provisioning suites;
//!   - [`cpu`]: CPU time per thread from /proc (a child's total, this process's split);
//!   - [`calls`]: the runtime, channel and error text of the check calls around every run, and
//!     an operator's token;
//!   - [`frame`]: request bodies as gRPC frames in files, for h2load;
//!   - [`child`]: the parent's handle on a server child (start, READY, CPU time, stop);
//!   - [`serve`]: the child's side (announce READY, stop when stdin closes, the in-process mesh
//!     the auth and gateway suites serve from);
//!   - [`token`]: the bench's signing key, minted tokens and the authenticator that checks them;
//!   - [`workdir`]: the scratch directory of one run.
#![forbid(unsafe_code)]

mod args;
mod auth;
mod calls;
mod child;
mod cpu;
mod error;
mod events;
mod figures;
mod frame;
mod gateway;
mod h2load;
mod health;
mod notification;
mod orders;
mod pgbench;
mod provisioning;
mod report;
mod scrape;
mod serve;
mod stack;
mod stores;
mod token;
mod workdir;

use std::process::ExitCode;

use args::{BenchArgs, Role, Suite};
use error::BenchError;
use report::Report;
use workdir::WorkDir;

/// mimalloc, as in the `ironmesh` binary: the bench measures the allocator production runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The command line of `ironmesh-bench`.
#[derive(clap::Parser, Debug)]
#[command(
    name = "ironmesh-bench",
    version,
    about = "Ironmesh benchmarks (the stack, auth and gateway suites need `h2load`, stack and \
             gateway also `taskset`; events needs neither): the shared server stack with and \
             without token verification against a bare tonic server, the auth service's login \
             throughput against the argon2 bound and GetMe p99 under a login flood, one RPC \
             through the REST gateway against the same RPC over gRPC, and the outbox relay \
             against the producer's inserts and audit Append against plain INSERTs (SQLite, and \
             PostgreSQL with BENCH_DATABASE_URL), CreateOrder against pgbench, webhook \
             deliveries against wrk (notification needs `wrk`), and provisioning jobs/s against \
             pgbench with the cost of 1,000 queue-position watchers; prints the figures, ratios \
             and targets."
)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    run(&cli.args)
}

/// Entry point of `ironmesh-bench`.
fn run(args: &BenchArgs) -> ExitCode {
    match args.serve {
        Some(Role::Stack) => return stack::serve_child(args.serve_jwk.as_deref()),
        Some(Role::Auth) => return auth::serve_child(args.serve_dir.as_deref()),
        Some(Role::Gateway) => return gateway::serve_child(args.serve_dir.as_deref()),
        None => {}
    }
    match measure(args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            report.note_server_logs();
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("ironmesh-bench: FAILED: {err}");
            err.exit_code()
        }
    }
}

fn measure(args: &BenchArgs) -> Result<Report, BenchError> {
    let runs = |suite: Suite| args.suite == suite || args.suite == Suite::All;
    if [Suite::Stack, Suite::Auth, Suite::Gateway]
        .into_iter()
        .any(runs)
    {
        require_tool("h2load", "nghttp2-client")?;
    }
    let workdir = WorkDir::create()?;
    let stack = runs(Suite::Stack)
        .then(|| stack::measure(args, workdir.path()))
        .transpose()?;
    let auth = runs(Suite::Auth)
        .then(|| auth::measure(args, workdir.path()))
        .transpose()?;
    let gateway = runs(Suite::Gateway)
        .then(|| gateway::measure(args, workdir.path()))
        .transpose()?;
    let events = runs(Suite::Events)
        .then(|| events::measure(args, workdir.path()))
        .transpose()?;
    let orders = runs(Suite::Orders)
        .then(|| orders::measure(args, workdir.path()))
        .transpose()?;
    let notification = runs(Suite::Notification)
        .then(|| notification::measure(args, workdir.path()))
        .transpose()?;
    let provisioning = runs(Suite::Provisioning)
        .then(|| provisioning::measure(args, workdir.path()))
        .transpose()?;
    Ok(Report {
        args: args.clone(),
        stack,
        auth,
        gateway,
        events,
        orders,
        notification,
        provisioning,
    })
}

/// Fails with install instructions unless `tool` is an executable file on PATH.
fn require_tool(tool: &'static str, package: &'static str) -> Result<(), BenchError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()) {
        Ok(())
    } else {
        Err(BenchError::MissingTool { tool, package })
    }
}

/// What the pinned suites (stack, gateway) need: `taskset`, and the server and h2load on
/// different CPUs.
fn require_pinning(args: &BenchArgs) -> Result<(), BenchError> {
    require_tool("taskset", "util-linux")?;
    if args.server_cpu == args.load_cpu {
        return Err(BenchError::Usage(format!(
            "--server-cpu and --load-cpu must differ (both are {})",
            args.server_cpu
        )));
    }
    Ok(())
}

/// Prints a progress line on stderr (not with `--json`).
fn progress(args: &BenchArgs, message: &str) {
    if !args.json {
        eprintln!("ironmesh-bench: {message}");
    }
}
