//! Accounts, passwords, tokens (EdDSA JWT + JWKS), refresh sessions, API keys, TOTP and GDPR export/delete.
//!
//! # Layout
//! - [`run`]: open the store, migrate, serve `AuthService` until shutdown.
//! - `grpc`: the tonic adapter (proto ⇄ domain, errors → status in one place).
//! - `store`: the embedded migrations for SQLite and PostgreSQL ([`MIGRATIONS`]).
//!
//! The domain (`domain.rs`: types, rules, no proto and no SQL) arrives with the issue that builds
//! this service's behaviour; until then every RPC answers `UNIMPLEMENTED` naming what is missing.
#![forbid(unsafe_code)]

mod grpc;
mod store;

use std::future::Future;

use ironmesh_proto::ironmesh::auth::v1::auth_service_server::AuthServiceServer;
use ironmesh_runtime::{Config, GrpcService, Listeners, RunError, ServiceKind, limit_sizes};

pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Auth;

/// Serves auth on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.max_message_bytes;
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, |_db| {
        GrpcService::new(KIND)
            .add_service(limit_sizes!(AuthServiceServer::new(grpc::AuthApi), limit))
    })
    .await
}
