//! The `notification` suite: webhook deliveries per second to a local receiver against wrk
//! POSTing the same request to it, and the p99 delivery latency to a healthy endpoint while
//! another user's endpoint hangs against the same without it. Auth and notification run in
//! this process through the launcher (every port 0 on loopback), the receivers on their own
//! one-thread runtime (`receiver.rs`), wrk as a child process. Both meshes set
//! `allow_insecure_webhooks` and `allow_private_webhook_targets` — test-only switches — because
//! the receivers are plain http on loopback.
//!
//! # Layout
//! - `mod.rs` (this file): the figures, one mesh of auth and notification per run
//!   ([`OnBackend`]), the backends.
//! - [`throughput`]: end to end, the engine alone, wrk; [`isolation`]: p99 with and without a
//!   hanging neighbour.
//! - [`receiver`]: the 204 receiver (records, holds) and the hanging listener.
//! - [`load`]: users, endpoints, Sends (a concurrent batch, a paced stream), ListDeliveries
//!   (once the deliveries have settled).
//! - [`wrk`]: the wrk baseline (its Lua script and summary).
//! - [`checks`]: exactly once, DELIVERED, the signature.
//! - [`report`]: the suite's table section and JSON.

mod checks;
mod isolation;
mod load;
mod receiver;
mod report;
mod throughput;
mod wrk;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ironmesh_launcher::mesh::{self, Component, RunningMesh};
use ironmesh_notification::settings::NotificationConfig;
use ironmesh_runtime::storage::Backend;
use ironmesh_runtime::{Config, ServiceKind};

use self::load::Calls;
use self::receiver::{Hanging, Receiver};
use crate::args::BenchArgs;
use crate::error::BenchError;
use crate::stores::{FreshDatabase, backend_name, failed};

pub use self::wrk::WrkRun;

/// Target from the notification issue: deliveries/s ÷ wrk requests/s to the same receiver.
const TARGET_THROUGHPUT_RATIO: f64 = 0.5;
/// Target: healthy endpoint's p99 with a hanging neighbour ÷ without.
const TARGET_ISOLATION_RATIO: f64 = 1.2;
/// Concurrent Send callers of the throughput runs.
const SENDERS: usize = 16;
/// The isolation mesh: a hanging attempt times out after this, is retried after
/// [`RETRY_MS`], and its circuit (production's 5 failures) cools down for as long.
const HANG_TIMEOUT_MS: u64 = 1_000;
const RETRY_MS: u64 = 1_000;
/// The throughput mesh's attempt timeout: longer than any backlog takes to queue, so the
/// held attempts are answered, not timed out.
const HOLD_TIMEOUT_MS: u64 = 300_000;

#[derive(Debug)]
pub struct NotificationReport {
    secs: u64,
    notifications: u64,
    rate: u32,
    /// Attempts in flight per endpoint (production's default), wrk's connections.
    concurrency: usize,
    sqlite: BackendRun,
    postgres: Option<BackendRun>,
}

#[derive(Debug)]
struct BackendRun {
    backend: Backend,
    throughput: Throughput,
    isolation: Isolation,
}

/// `deliveries` in `secs`.
#[derive(Debug, Clone, Copy)]
struct Timed {
    deliveries: u64,
    secs: f64,
}

impl Timed {
    fn per_sec(self) -> f64 {
        self.deliveries as f64 / self.secs
    }
}

#[derive(Debug)]
struct Throughput {
    /// First Send to last delivery received, Sends concurrent with delivery.
    end_to_end: Timed,
    /// The Sends alone in that run.
    sends: Timed,
    /// A queued backlog: release of the receiver to the last delivery received.
    engine: Timed,
    /// None: wrk is not installed.
    wrk: Option<WrkRun>,
}

#[derive(Debug)]
struct Latency {
    deliveries: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug)]
struct Isolation {
    baseline: Latency,
    hanging: Latency,
    /// What the hanging endpoint got: connections accepted, its deliveries, attempts made.
    hang_connections: u64,
    hang_deliveries: usize,
    hang_attempts: i64,
    hang_delivered: usize,
}

/// The SQLite run, then (with `--database-url` / `BENCH_DATABASE_URL`) the PostgreSQL run.
pub fn measure(args: &BenchArgs, workdir: &Path) -> Result<NotificationReport, BenchError> {
    let concurrency = NotificationConfig::default().per_target_concurrency;
    let wrk = crate::require_tool("wrk", "wrk").is_ok();
    if !wrk {
        crate::progress(args, "notification: wrk is not installed: no baseline");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("cannot start the async runtime"))?;
    let receivers = receiver::Runtime::start()?;
    let hook = Receiver::start(&receivers)?;
    let run = |backend: Backend, server: Option<&str>| {
        let dir = workdir.join(format!("notification-{}", backend_name(backend)));
        std::fs::create_dir_all(&dir)
            .map_err(BenchError::io(format!("cannot create {}", dir.display())))?;
        let hanging = Hanging::start(&receivers)?;
        let on = OnBackend::new(args, &dir, backend, server, &hook, concurrency, wrk);
        runtime.block_on(async {
            let throughput = on.throughput().await?;
            let isolation = on.isolation(&hanging).await?;
            Ok::<_, BenchError>(BackendRun {
                backend,
                throughput,
                isolation,
            })
        })
    };
    let sqlite = run(Backend::Sqlite, None)?;
    let postgres = match args.database_url.as_deref().filter(|url| !url.is_empty()) {
        Some(server) => Some(run(Backend::Postgres, Some(server))?),
        None => None,
    };
    Ok(NotificationReport {
        secs: args.duration,
        notifications: args.notifications,
        rate: args.notification_rate,
        concurrency,
        sqlite,
        postgres,
    })
}

/// One backend's runs.
struct OnBackend<'a> {
    args: &'a BenchArgs,
    dir: &'a Path,
    backend: Backend,
    server: Option<&'a str>,
    hook: &'a Receiver,
    concurrency: usize,
    wrk: bool,
}

/// A mesh of auth and notification, and the calls to it.
struct Running {
    mesh: RunningMesh,
    calls: Calls,
    database: Option<FreshDatabase>,
}

impl Running {
    async fn stop(self) -> Result<(), BenchError> {
        drop(self.calls);
        let errors = self.mesh.stop().await;
        if let Some(database) = self.database {
            database.drop_database().await;
        }
        match errors.first() {
            None => Ok(()),
            Some(err) => Err(BenchError::Failed(format!(
                "auth or notification failed: {err}"
            ))),
        }
    }
}

impl<'a> OnBackend<'a> {
    fn new(
        args: &'a BenchArgs,
        dir: &'a Path,
        backend: Backend,
        server: Option<&'a str>,
        hook: &'a Receiver,
        concurrency: usize,
        wrk: bool,
    ) -> Self {
        Self {
            args,
            dir,
            backend,
            server,
            hook,
            concurrency,
            wrk,
        }
    }

    fn progress(&self, what: &str) {
        crate::progress(
            self.args,
            &format!("notification on {}: {what}", backend_name(self.backend)),
        );
    }

    /// Starts auth and notification with `settings` (on a fresh PostgreSQL database, or SQLite
    /// in `dir/name`), and makes the operator.
    async fn start(&self, name: &str, settings: NotificationConfig) -> Result<Running, BenchError> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(BenchError::io(format!("cannot create {}", dir.display())))?;
        let database = match self.server {
            Some(server) => Some(FreshDatabase::create(server).await?),
            None => None,
        };
        let mut config: Config = crate::serve::mesh_config(&dir).map_err(BenchError::Failed)?;
        config.database_url = database.as_ref().map(|d| d.url.clone());
        config.set_section(&settings);
        let services = [ServiceKind::Auth, ServiceKind::Notification];
        config
            .update_section::<ironmesh_outbox::EventsConfig>(|events| {
                events
                    .subscribers
                    .retain(|s| s.service_kind().is_none_or(|kind| services.contains(&kind)));
            })
            .map_err(|err| BenchError::Failed(format!("the events section: {err}")))?;
        config
            .validate()
            .map_err(|err| BenchError::Failed(format!("the mesh's config: {err}")))?;
        let bound = mesh::bind(config, &services, false)
            .await
            .map_err(failed("cannot bind auth and notification"))?;
        let config = bound.config().clone();
        let running = bound
            .start_healthy(crate::serve::READY_LIMIT, std::future::pending())
            .await
            .map_err(failed("auth and notification did not start"))?;
        let address = |kind: ServiceKind| -> Result<SocketAddr, BenchError> {
            Ok(running
                .address(Component::Service(kind))
                .ok_or_else(|| BenchError::Failed(format!("{} is not in the mesh", kind.name())))?
                .main)
        };
        let calls = Calls::open(
            &config,
            address(ServiceKind::Auth)?,
            address(ServiceKind::Notification)?,
        )
        .await;
        match calls {
            Ok(calls) => Ok(Running {
                mesh: running,
                calls,
                database,
            }),
            Err(err) => {
                running.stop().await;
                if let Some(database) = database {
                    database.drop_database().await;
                }
                Err(err)
            }
        }
    }

    fn settings(attempt_timeout_ms: u64) -> NotificationConfig {
        NotificationConfig {
            allow_insecure_webhooks: true,
            allow_private_webhook_targets: true,
            attempt_timeout_ms,
            ..NotificationConfig::default()
        }
    }

    /// How long to wait for `n` deliveries before the run fails.
    fn patience(n: u64) -> Duration {
        Duration::from_secs(60 + n / 20)
    }

    async fn arrive(&self, what: &str, n: u64) -> Result<Vec<receiver::Arrival>, BenchError> {
        if !self.hook.wait_for(n, Self::patience(n)).await {
            return Err(BenchError::Failed(format!(
                "{what}: only {} of {n} deliveries arrived within {:?}",
                self.hook.answered(),
                Self::patience(n)
            )));
        }
        Ok(self.hook.take())
    }
}

fn notification_state_delivered() -> i32 {
    ironmesh_proto::ironmesh::notification::v1::DeliveryState::Delivered as i32
}

fn latency(trips: &[checks::Trip]) -> Latency {
    let mut us: Vec<u64> = trips
        .iter()
        .map(|t| u64::try_from(t.received_us - t.created_us).unwrap_or(0))
        .collect();
    us.sort_unstable();
    Latency {
        deliveries: us.len() as u64,
        p50_ms: crate::h2load::percentile_ms(&us, 0.50),
        p99_ms: crate::h2load::percentile_ms(&us, 0.99),
        max_ms: us.last().map_or(0.0, |&m| m as f64 / 1e3),
    }
}
