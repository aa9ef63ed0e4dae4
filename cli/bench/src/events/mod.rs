//! The `events` suite: what the outbox relay delivers to the real audit service against what
//! one producer can write, the delay an event takes at half that load, and what audit's Append
//! costs against plain INSERTs of the same rows (see the module docs of `bench`). Everything
//! runs in this process: no h2load, no child.
//!
//! # Layout
//! - `mod.rs` (this file): one run per backend — SQLite in the work directory, then PostgreSQL
//!   in a fresh database when a server is given ([`FreshDatabase`], dropped afterwards) — with
//!   the audit service started through the launcher for the pipeline, and the figures.
//! - [`pipeline`]: the producer's inserts, the relay end to end, the run at half load.
//! - [`append`]: audit Append in batches against plain INSERTs of the same rows.
//! - [`pace`]: how many events are due after a given time at a steady rate.
//! - [`checks`]: what proves the figures honest — every event in audit's store exactly once,
//!   no dead letter, the scratch table shaped like audit's.
//! - [`report`]: the suite's table section and JSON.

mod append;
mod checks;
mod pace;
mod pipeline;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ironmesh_launcher::mesh;
use ironmesh_runtime::storage::{Backend, MigrationSet};
use ironmesh_runtime::{Config, Database, ServiceKind};

use self::append::AppendRun;
use self::pipeline::Pipeline;
use crate::args::BenchArgs;
use crate::error::BenchError;
use crate::stores::{FreshDatabase, backend_name, failed};

/// Targets from the events issue: relay ÷ the producer's insert rate, Append ÷ plain INSERT.
const TARGET_RELAY_RATIO: f64 = 1.0;
const TARGET_APPEND_RATIO: f64 = 0.5;
/// Rows per transaction on both sides of the Append comparison (audit's most per Append).
const BATCH: usize = ironmesh_audit::domain::MAX_BATCH;
/// The half-load run writes at this share of the slower of insert rate and relay rate.
const HALF: f64 = 0.5;

#[derive(Debug)]
pub struct EventsReport {
    events: u64,
    entries: u64,
    half_load_secs: u64,
    sqlite: BackendRun,
    /// None: no PostgreSQL server was given.
    postgres: Option<BackendRun>,
}

/// Everything one backend measured.
#[derive(Debug)]
struct BackendRun {
    backend: Backend,
    pipeline: Pipeline,
    append: AppendRun,
}

/// `count` things done in `secs` seconds.
#[derive(Clone, Copy, Debug)]
struct Rate {
    count: u64,
    secs: f64,
}

impl Rate {
    fn new(count: u64, took: Duration) -> Self {
        Self {
            count,
            secs: took.as_secs_f64(),
        }
    }

    fn per_sec(self) -> f64 {
        self.count as f64 / self.secs
    }
}

/// Where one backend's stores live.
enum Storage {
    /// A file per store in this directory.
    Sqlite(PathBuf),
    /// One fresh database; each store in its own schema (the runtime names it after the
    /// store), as the services share one database.
    Postgres(String),
}

impl Storage {
    fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL of store `name`.
    fn url(&self, name: &str) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
            Self::Postgres(url) => url.clone(),
        }
    }

    /// Opens store `name` and applies `migrations`.
    async fn open(&self, name: &str, migrations: &MigrationSet) -> Result<Database, BenchError> {
        let db = Database::connect(&self.url(name), name)
            .await
            .map_err(failed(&format!("cannot open the {name} store")))?;
        db.migrate(name, migrations)
            .await
            .map_err(failed(&format!("cannot migrate the {name} store")))?;
        Ok(db)
    }
}

/// Runs the suite on SQLite, then on PostgreSQL if `--database-url` / `BENCH_DATABASE_URL`
/// names a server.
pub fn measure(args: &BenchArgs, workdir: &Path) -> Result<EventsReport, BenchError> {
    // The production runtime's shape (`ironmesh_runtime::process::block_on`): multi-threaded,
    // one worker per core, shared by the producer, the relay and audit.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("cannot start the async runtime"))?;
    let dir = workdir.join("events-sqlite");
    std::fs::create_dir_all(&dir)
        .map_err(BenchError::io(format!("cannot create {}", dir.display())))?;
    let sqlite = runtime.block_on(run_backend(args, &Storage::Sqlite(dir.clone()), &dir))?;
    let postgres = match args.database_url.as_deref().filter(|url| !url.is_empty()) {
        Some(server) => {
            let dir = workdir.join("events-postgres");
            std::fs::create_dir_all(&dir)
                .map_err(BenchError::io(format!("cannot create {}", dir.display())))?;
            Some(runtime.block_on(async {
                let fresh = FreshDatabase::create(server).await?;
                let run = run_backend(args, &Storage::Postgres(fresh.url.clone()), &dir).await;
                fresh.drop_database().await;
                run
            })?)
        }
        None => None,
    };
    Ok(EventsReport {
        events: args.events,
        entries: args.entries,
        half_load_secs: args.duration,
        sqlite,
        postgres,
    })
}

/// The pipeline against a fresh audit service, then Append against plain INSERTs.
async fn run_backend(
    args: &BenchArgs,
    storage: &Storage,
    dir: &Path,
) -> Result<BackendRun, BenchError> {
    let backend = storage.backend();
    let name = backend_name(backend);
    crate::progress(args, &format!("events on {name}: starting audit…"));
    let mut config = crate::serve::mesh_config(dir).map_err(BenchError::Failed)?;
    if let Storage::Postgres(url) = storage {
        config.database_url = Some(url.clone());
    }
    config
        .validate()
        .map_err(|err| BenchError::Failed(format!("the audit config: {err}")))?;
    let pipeline = with_audit(config, |config| async move {
        pipeline::run(args, storage, &config).await
    })
    .await?;
    crate::progress(
        args,
        &format!(
            "events on {name}: {} entries through audit Append, then plain INSERTs…",
            args.entries
        ),
    );
    let append = append::run(args.entries, storage).await?;
    Ok(BackendRun {
        backend,
        pipeline,
        append,
    })
}

/// Starts the audit service through the launcher (every port 0 on loopback), runs `body` with
/// the config it runs with (real ports filled in), then drains and stops it.
async fn with_audit<T, F, Fut>(config: Config, body: F) -> Result<T, BenchError>
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = Result<T, BenchError>>,
{
    let bound = mesh::bind(config, &[ServiceKind::Audit], false)
        .await
        .map_err(failed("cannot bind audit"))?;
    let config = bound.config().clone();
    let running = bound
        .start_healthy(crate::serve::READY_LIMIT, std::future::pending())
        .await
        .map_err(failed("audit did not start"))?;
    let result = body(config).await;
    let errors = running.stop().await;
    let value = result?;
    match errors.first() {
        None => Ok(value),
        Some(err) => Err(BenchError::Failed(format!("audit failed: {err}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        let rate = Rate::new(500, Duration::from_millis(250));
        assert_eq!(rate.per_sec(), 2000.0);
    }
}
