//! Where the suite runs: the mesh's runtime and the clients' (so the service's CPU can be read
//! apart from theirs), and auth and provisioning started on it through the launcher.

use std::path::Path;

use ironmesh_launcher::mesh::{self, RunningMesh};
use ironmesh_runtime::{Config, ServiceKind};

use super::costs::CLIENT_THREADS;
use crate::error::BenchError;
use crate::stores::failed;

const SERVICES: [ServiceKind; 2] = [ServiceKind::Auth, ServiceKind::Provisioning];

/// The runtime the mesh runs on (threads `bench-mesh`), and the clients' (threads
/// [`CLIENT_THREADS`]), both multi-threaded as production's is.
pub struct Runtimes {
    pub mesh: tokio::runtime::Runtime,
    pub clients: tokio::runtime::Runtime,
}

impl Runtimes {
    pub fn new() -> Result<Self, BenchError> {
        let runtime = |name: &str| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name(name)
                .enable_all()
                .build()
                .map_err(BenchError::io("cannot start the async runtime"))
        };
        Ok(Self {
            mesh: runtime("bench-mesh")?,
            clients: runtime(CLIENT_THREADS)?,
        })
    }
}

/// Starts auth and provisioning on SQLite in `dir` (or PostgreSQL at `database_url`) with
/// production's provisioning settings; the events section keeps only the subscribers in the
/// mesh.
pub async fn start(
    dir: &Path,
    database_url: Option<&str>,
) -> Result<(RunningMesh, Config), BenchError> {
    let mut config: Config = crate::serve::mesh_config(dir).map_err(BenchError::Failed)?;
    config.database_url = database_url.map(str::to_owned);
    config
        .update_section::<ironmesh_outbox::EventsConfig>(|events| {
            events
                .subscribers
                .retain(|s| s.service_kind().is_none_or(|kind| SERVICES.contains(&kind)));
        })
        .map_err(|err| BenchError::Failed(format!("the events section: {err}")))?;
    config
        .validate()
        .map_err(|err| BenchError::Failed(format!("the mesh's config: {err}")))?;
    let bound = mesh::bind(config, &SERVICES, false)
        .await
        .map_err(failed("cannot bind auth and provisioning"))?;
    let config = bound.config().clone();
    let running = bound
        .start_healthy(crate::serve::READY_LIMIT, std::future::pending())
        .await
        .map_err(failed("auth and provisioning did not start"))?;
    Ok((running, config))
}
