//! Logging, to stderr (stdout is kept for command output such as `ironmesh up`'s table). JSON
//! lines when stderr is not a terminal (containers, CI), pretty text on a terminal. `RUST_LOG` refines the configured level when set. Every line carries the
//! fields of the spans it is in (`service`, and per request the ones the interceptor stack adds).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber. Safe to call more than once (later calls are no-ops), so
/// tests and the CLI can both call it.
pub fn init(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // Our crates at the configured level; noisy dependencies one level quieter.
        EnvFilter::new(format!(
            "{level},h2=warn,hyper=warn,hyper_util=warn,tower=warn,sqlx=warn",
            level = config.log_level.as_str()
        ))
    });
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    // Already installed (a test harness or an earlier call): keep the first one.
    let _ = result;
}
