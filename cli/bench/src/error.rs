//! [`BenchError`]: why the bench could not produce a trustworthy result, and the exit code each
//! reason gets.

use std::process::ExitCode;

/// Why the bench could not produce a trustworthy result.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("`{tool}` is not on PATH; install it with `apt-get install -y {package}`")]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

impl BenchError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// Usage problems (a missing tool, bad flags) exit 2; a run that failed exits 1.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::MissingTool { .. } | Self::Usage(_) => ExitCode::from(2),
            Self::Io { .. } | Self::Failed(_) => ExitCode::from(1),
        }
    }
}
