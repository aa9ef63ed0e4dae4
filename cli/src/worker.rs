//! `ironmesh worker --exec PROGRAM`: run provisioning jobs with an operator's program (see
//! `ironmesh_provisioning::worker`). It finds provisioning and its credential through the same
//! config as the services: next to `make run`, the default endpoint and `data_dir/service.key`;
//! in Kubernetes, the endpoint from config and `service_identity.secret` from a Secret.
//! SIGTERM (or Ctrl-C) stops claiming and lets running jobs finish within `--grace-secs`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ironmesh_provisioning::worker::{self, DEFAULT_LEASE, WorkerOptions};
use ironmesh_runtime::Config;
use ironmesh_runtime::process::EXIT_FAILURE;
use tokio_util::sync::CancellationToken;

/// The command's options.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The program run for each job: the job as JSON on its stdin; exit 0 with a JSON object on
    /// stdout succeeds, 75 retries, anything else fails.
    #[arg(long, value_name = "PROGRAM")]
    exec: PathBuf,
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// This worker's id on its jobs (default: the host name).
    #[arg(long, env = "IRONMESH_WORKER_ID")]
    worker_id: Option<String>,
    /// How long running jobs may take to finish after SIGTERM before they are failed as
    /// retryable.
    #[arg(long, default_value_t = 30)]
    grace_secs: u64,
}

pub async fn run(config: Config, args: WorkerArgs) -> ExitCode {
    let worker_id = args.worker_id.unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".to_owned())
    });
    let options = WorkerOptions {
        program: args.exec,
        concurrency: args.concurrency.clamp(1, 256),
        worker_id,
        grace: Duration::from_secs(args.grace_secs),
        lease: DEFAULT_LEASE,
    };
    let stop = CancellationToken::new();
    let signalled = stop.clone();
    tokio::spawn(async move {
        ironmesh_runtime::signal::shutdown_signal().await;
        tracing::info!("stopping: no more claims; running jobs finish within the grace");
        signalled.cancel();
    });
    tracing::info!(program = %options.program.display(), concurrency = options.concurrency, "worker started");
    match worker::run(&config, options, stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ironmesh worker: {err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
