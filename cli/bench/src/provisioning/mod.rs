//! The `provisioning` suite: how fast 8 workers drain the queue (jobs/s: ClaimJob + CompleteJob
//! per job) against pgbench's simple-update transactions per second on the same PostgreSQL
//! server with as many clients, and what 1,000 `WatchQueuePosition` streams cost the service
//! (its CPU, the position queries it makes, the messages it sends) while the queue under them
//! drains. Auth and provisioning run in this process through the launcher (every port 0 on
//! loopback, provisioning's production settings) on one runtime; the workers, watchers and
//! submitters are tonic clients on another, whose threads are named [`CLIENT_THREADS`], so the
//! service's CPU is read apart from theirs (`costs.rs`). pgbench is a child process.
//!
//! # Layout
//! - `mod.rs` (this file): the plan, one mesh per backend ([`run_backend`]) measuring the jobs
//!   run then the watchers run, the pgbench baseline, the figures.
//! - [`mesh`]: the two runtimes, starting auth and provisioning.
//! - [`calls`]: the operator, the worker's identity, the channels; SubmitRequest in bulk,
//!   ListRequests.
//! - [`drain`]: the workers, flat out or paced.
//! - [`watch`]: opening the streams and following them to their end.
//! - [`costs`]: CPU by thread, position queries, PostgreSQL commits over a window.
//! - [`checks`]: exactly once (claimed, completed, SUCCEEDED), and every watcher's stream.
//! - [`report`]: the suite's table section and JSON.

mod calls;
mod checks;
mod costs;
mod drain;
mod mesh;
mod report;
mod watch;

use std::path::Path;
use std::time::Instant;

use ironmesh_launcher::mesh::Component;
use ironmesh_proto::ironmesh::provisioning::v1::PriorityTier;
use ironmesh_provisioning::settings::ProvisioningConfig;
use ironmesh_runtime::ServiceKind;
use ironmesh_runtime::storage::Backend;

use self::calls::Calls;
use self::costs::{CLIENT_THREADS, Costs, Counters};
use self::mesh::Runtimes;
use crate::args::BenchArgs;
use crate::error::BenchError;
use crate::pgbench::{Pgbench, Script};
use crate::stores::{FreshDatabase, backend_name};

/// Target from the provisioning issue: jobs/s ÷ pgbench simple-update tps (same server, as
/// many clients as workers).
const TARGET_PGBENCH_RATIO: f64 = 0.3;
/// Concurrent workers (from the issue), and pgbench's clients.
const WORKERS: usize = 8;
/// pgbench's threads (`-j`) and scale (`-s`).
const PGBENCH_THREADS: u32 = 2;
const PGBENCH_SCALE: u32 = 1;
/// The unwatched requests ahead of the watched ones last this many board refreshes of the
/// paced drain, so even the first watched request is still queued at a refresh after the
/// drain began and sees its position fall.
const LEAD_REFRESHES: f64 = 2.5;
/// The jobs run's tiers, in turn.
const MIXED: [PriorityTier; 3] = [
    PriorityTier::Standard,
    PriorityTier::Expedited,
    PriorityTier::Critical,
];

#[derive(Debug)]
pub struct ProvisioningReport {
    plan: Plan,
    sqlite: BackendRun,
    /// None: no PostgreSQL server was given.
    postgres: Option<PostgresRun>,
}

/// The sizes of the runs.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Requests the jobs run drains.
    jobs: usize,
    /// Streams of the watchers run, one per watched request.
    watchers: usize,
    /// Unwatched requests ahead of the watched ones (CRITICAL, so served first).
    lead: usize,
    /// The watchers run's claims per second, all workers together.
    rate: f64,
    /// The seconds the paced drain of `lead + watchers` takes.
    period: f64,
    /// Provisioning's board refresh (production's default).
    refresh_ms: u64,
}

impl Plan {
    fn new(args: &BenchArgs) -> Self {
        let refresh_ms = ProvisioningConfig::default().position_refresh_ms;
        let lead_secs = LEAD_REFRESHES * refresh_ms as f64 / 1e3;
        let period = (args.duration as f64).max(2.0 * lead_secs);
        let watchers = usize::try_from(args.watchers).unwrap_or(usize::MAX);
        let rate = watchers as f64 / (period - lead_secs);
        Self {
            jobs: usize::try_from(args.jobs).unwrap_or(usize::MAX),
            watchers,
            lead: (rate * lead_secs).ceil() as usize,
            rate,
            period,
            refresh_ms,
        }
    }
}

/// What one backend measured.
#[derive(Debug)]
struct BackendRun {
    backend: Backend,
    jobs: JobsRun,
    watch: WatchRun,
}

#[derive(Debug)]
struct JobsRun {
    completed: u64,
    /// Start of the drain → the last CompleteJob answered.
    secs: f64,
    costs: Costs,
}

impl JobsRun {
    fn per_sec(&self) -> f64 {
        self.completed as f64 / self.secs
    }
}

#[derive(Debug)]
struct WatchRun {
    /// Start of the paced drain → the last stream's end.
    costs: Costs,
    /// Messages received after each stream's first, in all.
    messages: u64,
    /// The paced drain's jobs and their seconds.
    drained: u64,
    drain_secs: f64,
}

#[derive(Debug)]
struct PostgresRun {
    run: BackendRun,
    /// None: pgbench is not installed.
    pgbench_tps: Option<f64>,
}

/// The SQLite run, then (with `--database-url` / `BENCH_DATABASE_URL`) the PostgreSQL run and
/// pgbench simple-update with as many clients as workers.
pub fn measure(args: &BenchArgs, workdir: &Path) -> Result<ProvisioningReport, BenchError> {
    let rts = Runtimes::new()?;
    let plan = Plan::new(args);
    let sqlite = run_backend(args, &rts, workdir, None, plan)?;
    let postgres = match args.database_url.as_deref().filter(|url| !url.is_empty()) {
        Some(server) => {
            let run = run_backend(args, &rts, workdir, Some(server), plan)?;
            let pgbench_tps = match Pgbench::find() {
                Some(pgbench) => {
                    crate::progress(
                        args,
                        &format!("provisioning: pgbench simple-update, {WORKERS} clients…"),
                    );
                    let script = Script {
                        builtin: "simple-update",
                        clients: WORKERS as u32,
                        threads: PGBENCH_THREADS,
                        secs: args.duration,
                    };
                    Some(rts.clients.block_on(async {
                        let baseline = FreshDatabase::create(server).await?;
                        let tps = pgbench.tps(&baseline.url, PGBENCH_SCALE, script).await;
                        baseline.drop_database().await;
                        tps
                    })?)
                }
                None => {
                    crate::progress(args, "provisioning: pgbench is not installed: no baseline");
                    None
                }
            };
            Some(PostgresRun { run, pgbench_tps })
        }
        None => None,
    };
    Ok(ProvisioningReport {
        plan,
        sqlite,
        postgres,
    })
}

/// On SQLite in `workdir`, or on a fresh database of the PostgreSQL `server`: one mesh, the
/// jobs run, then the watchers run; the database is dropped after.
fn run_backend(
    args: &BenchArgs,
    rts: &Runtimes,
    workdir: &Path,
    server: Option<&str>,
    plan: Plan,
) -> Result<BackendRun, BenchError> {
    let backend = if server.is_some() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let dir = workdir.join(format!("provisioning-{}", backend_name(backend)));
    std::fs::create_dir_all(&dir)
        .map_err(BenchError::io(format!("cannot create {}", dir.display())))?;
    let database = server
        .map(|server| rts.clients.block_on(FreshDatabase::create(server)))
        .transpose()?;
    let url = database.as_ref().map(|d| d.url.as_str());
    let on = OnBackend {
        args,
        backend,
        plan,
    };
    let run = on.run(rts, &dir, url);
    if let Some(database) = database {
        rts.clients.block_on(database.drop_database());
    }
    run
}

/// One backend's runs.
struct OnBackend<'a> {
    args: &'a BenchArgs,
    backend: Backend,
    plan: Plan,
}

impl OnBackend<'_> {
    fn progress(&self, what: &str) {
        crate::progress(
            self.args,
            &format!("provisioning on {}: {what}", backend_name(self.backend)),
        );
    }

    fn run(&self, rts: &Runtimes, dir: &Path, url: Option<&str>) -> Result<BackendRun, BenchError> {
        self.progress("starting auth and provisioning…");
        let (running, config) = rts.mesh.block_on(mesh::start(dir, url))?;
        let address = |kind: ServiceKind| {
            running
                .address(Component::Service(kind))
                .ok_or_else(|| BenchError::Failed(format!("{} is not in the mesh", kind.name())))
        };
        let addresses = address(ServiceKind::Auth)
            .and_then(|auth| Ok((auth.main, address(ServiceKind::Provisioning)?)));
        let measured = addresses.and_then(|(auth, provisioning)| {
            let counters = Counters {
                admin: provisioning.admin,
                database_url: url,
            };
            rts.clients.block_on(async {
                let calls = Calls::open(&config, auth, provisioning.main).await?;
                // PostgreSQL reports commits up to a second late: too coarse for a drain of
                // a few seconds, so only the watchers' run counts them.
                let without_commits = Counters {
                    database_url: None,
                    ..counters
                };
                let jobs = self.jobs(&calls, without_commits).await?;
                let watch = self.watch(&calls, counters, jobs.1).await?;
                Ok(BackendRun {
                    backend: self.backend,
                    jobs: jobs.0,
                    watch,
                })
            })
        });
        let errors = rts.mesh.block_on(running.stop());
        let run = measured?;
        match errors.first() {
            None => Ok(run),
            Some(err) => Err(BenchError::Failed(format!(
                "auth or provisioning failed: {err}"
            ))),
        }
    }

    /// The jobs run: submit, drain flat out, check; also the ids submitted.
    async fn jobs(
        &self,
        calls: &Calls,
        counters: Counters<'_>,
    ) -> Result<(JobsRun, Vec<String>), BenchError> {
        let n = self.plan.jobs;
        self.progress(&format!("submitting {n} requests…"));
        let ids = calls.submit(n, |i| MIXED[i % MIXED.len()]).await?;
        self.progress(&format!("{WORKERS} workers draining {n} jobs…"));
        let mark = counters.mark().await?;
        let drained = drain::drain(calls, WORKERS, None).await?;
        let costs = counters.since(&mark, Instant::now()).await?;
        let succeeded = calls.succeeded().await?;
        let what = format!("jobs on {}", backend_name(self.backend));
        checks::exactly_once(&what, &ids, &drained, &ids, &succeeded)?;
        let run = JobsRun {
            completed: drained.completed,
            secs: drained.secs,
            costs,
        };
        Ok((run, ids))
    }

    /// The watchers run: queue the lead and the watched requests, open a stream on each
    /// watched one, drain at the plan's rate while they follow, check.
    async fn watch(
        &self,
        calls: &Calls,
        counters: Counters<'_>,
        mut all: Vec<String>,
    ) -> Result<WatchRun, BenchError> {
        let Plan {
            watchers,
            lead,
            rate,
            ..
        } = self.plan;
        self.progress(&format!(
            "{watchers} watchers on {watchers} queued requests behind {lead}…"
        ));
        let mut ids = calls.submit(lead, |_| PriorityTier::Critical).await?;
        let watched = calls.submit(watchers, |_| PriorityTier::Standard).await?;
        let opened = watch::open(calls, &watched).await?;
        let open = counters.watchers().await?;
        if open != watchers as u64 {
            return Err(BenchError::Failed(format!(
                "{watchers} watchers opened but provisioning counts {open}"
            )));
        }
        self.progress(&format!("draining at {rate:.0} jobs/s under the watchers…"));
        let mark = counters.mark().await?;
        let followers = watch::follow(opened);
        let drained = drain::drain(calls, WORKERS, Some(rate)).await;
        let seen = watch::seen(followers).await?;
        let drained = drained?;
        let end = seen
            .iter()
            .map(|s| s.ended)
            .max()
            .unwrap_or_else(Instant::now);
        let costs = counters.since(&mark, end).await?;
        checks::watchers(&seen, lead)?;
        ids.extend(watched);
        all.extend(ids.iter().cloned());
        let succeeded = calls.succeeded().await?;
        let what = format!("the watchers' drain on {}", backend_name(self.backend));
        checks::exactly_once(&what, &ids, &drained, &all, &succeeded)?;
        Ok(WatchRun {
            costs,
            messages: seen.iter().map(|s| s.messages).sum(),
            drained: drained.completed,
            drain_secs: drained.secs,
        })
    }
}
