//! [`WorkDir`]: the scratch directory of one run.

use std::path::{Path, PathBuf};

use crate::error::BenchError;

/// A private scratch directory (request bodies, h2load logs, the auth store), removed when
/// dropped.
pub struct WorkDir(PathBuf);

impl WorkDir {
    pub fn create() -> Result<Self, BenchError> {
        let path = std::env::temp_dir().join(format!("ironmesh-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(BenchError::io(format!("cannot create {}", path.display())))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
