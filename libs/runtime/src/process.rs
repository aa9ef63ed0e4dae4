//! `main` for a single-service process (each service's thin bin, and `ironmesh serve`): load and
//! validate config, start logging, bind, run until SIGINT/SIGTERM, drain, and turn the outcome
//! into an exit code.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;

use crate::config::{CONFIG_FILE_ENV, Config, ConfigError, ServiceKind};
use crate::server::{Listeners, RunError};

/// Exit status for an unusable configuration: sysexits' `EX_USAGE` (64, "the command was used
/// incorrectly"), as linkerd2-proxy exits for bad config. Not `EX_CONFIG` (78), which the
/// README and operators' scripts do not expect.
pub const EXIT_USAGE: u8 = 64;
/// Any other start-up or run failure (a busy port, an unreachable database).
pub const EXIT_FAILURE: u8 = 1;

/// The shutdown future handed to a service's `run`.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Loads config from `file` (or `$IRONMESH_CONFIG`) and the environment, refusing top-level
/// keys that are neither the runtime's nor in `sections` (the keys of every section the process
/// reads); on error prints it and returns the exit code to use.
pub fn load_config(file: Option<&Path>, sections: &[&str]) -> Result<Config, ExitCode> {
    let usage = |err: ConfigError| {
        eprintln!("ironmesh: {err}");
        ExitCode::from(EXIT_USAGE)
    };
    let config = load_file_and_env(file).map_err(usage)?;
    config.check_sections(sections).map_err(usage)?;
    Ok(config)
}

fn load_file_and_env(file: Option<&Path>) -> Result<Config, ConfigError> {
    let from_env = std::env::var_os(CONFIG_FILE_ENV).map(std::path::PathBuf::from);
    Config::load(file.or(from_env.as_deref()))
}

/// Runs `main` to completion on a multi-threaded runtime, with logging (and trace export, if
/// configured) installed for `config`.
pub fn block_on<F>(config: &Config, main: F) -> ExitCode
where
    F: Future<Output = ExitCode>,
{
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(async {
            let telemetry = crate::telemetry::init(config);
            let code = main.await;
            telemetry.shutdown().await;
            code
        }),
        Err(err) => {
            eprintln!("ironmesh: cannot start the async runtime: {err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `main` of a service's own binary: config from `$IRONMESH_CONFIG` and the environment, then
/// [`run_process`]. `sections` are the keys of the sections this service reads; it validates
/// them itself when it starts. Other unclaimed keys may belong to components this binary does
/// not contain (one file configures the whole mesh), so they are named in a note, not refused —
/// the `ironmesh` binary, which knows every owner, refuses them. The exception is the service's
/// own table: nothing else reads it, so a key there that this service does not read (one
/// beside its listeners, when it has no section of its own) is refused.
pub fn service_main<F, Fut>(kind: ServiceKind, sections: &[&str], run: F) -> ExitCode
where
    F: FnOnce(Config, Listeners, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), RunError>>,
{
    match load_file_and_env(None) {
        Ok(config) => {
            let unknown: Vec<String> = config.unknown_sections(sections).collect();
            let own_table = |key: &&String| key.split('.').next() == Some(kind.name());
            if let Some(key) = unknown.iter().find(own_table) {
                let message = format!("unknown key `{key}`");
                eprintln!("ironmesh: {}", ConfigError::new(key.as_str(), message));
                return ExitCode::from(EXIT_USAGE);
            }
            for key in unknown {
                eprintln!(
                    "ironmesh-{kind}: note: ignoring `{key}`, which this process does not read"
                );
            }
            run_process(kind, config, run)
        }
        Err(err) => {
            eprintln!("ironmesh: {err}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Runs one service as the whole process: bind its listeners, run until SIGINT/SIGTERM, drain.
/// `run` is the service crate's `run`.
pub fn run_process<F, Fut>(kind: ServiceKind, config: Config, run: F) -> ExitCode
where
    F: FnOnce(Config, Listeners, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), RunError>>,
{
    let settings = config.clone();
    block_on(&settings, async move {
        let listeners = match Listeners::bind(&config, kind).await {
            Ok(listeners) => listeners,
            Err(err) => return fail(&err),
        };
        match run(
            config,
            listeners,
            Box::pin(crate::signal::shutdown_signal()),
        )
        .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(RunError::Config(err)) => {
                eprintln!("ironmesh: {err}");
                ExitCode::from(EXIT_USAGE)
            }
            Err(err) => fail(&format_args!("{kind}: {err}")),
        }
    })
}

/// Logs and prints `err`, and returns the failure exit code.
pub fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!(error = %err, "stopped with an error");
    eprintln!("ironmesh: {err}");
    ExitCode::from(EXIT_FAILURE)
}
