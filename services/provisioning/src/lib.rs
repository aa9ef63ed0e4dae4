//! The priority onboarding queue: requests, worker leases, dead letters and inbound webhooks.
//!
//! # Layout
//! - [`run`]: open the store, migrate, serve `ProvisioningService` until shutdown.
//! - `grpc`: the tonic adapter (proto ⇄ domain, errors → status in one place).
//! - `store`: the embedded migrations for SQLite and PostgreSQL ([`MIGRATIONS`]).
//!
//! The domain (`domain.rs`: types, rules, no proto and no SQL) arrives with the issue that builds
//! this service's behaviour; until then every RPC answers `UNIMPLEMENTED` naming what is missing.
#![forbid(unsafe_code)]

mod grpc;
mod store;

use std::future::Future;

use ironmesh_proto::ironmesh::provisioning::v1::provisioning_service_server::ProvisioningServiceServer;
use ironmesh_runtime::{Config, GrpcService, Listeners, RunError, ServiceKind, limit_sizes};

pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Provisioning;

/// Serves provisioning on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.max_message_bytes;
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, |_db| {
        GrpcService::new(KIND).add_service(limit_sizes!(
            ProvisioningServiceServer::new(grpc::ProvisioningApi),
            limit
        ))
    })
    .await
}
