//! Notifications, outbound webhooks with Standard Webhooks signatures, and preferences.
//!
//! # Layout
//! - [`run`]: open the store, migrate, serve `NotificationService` until shutdown.
//! - `grpc`: the tonic adapter (proto ⇄ domain, errors → status in one place).
//!   Also the `EventSinkService` other services deliver events to.
//! - `store`: the embedded migrations for SQLite and PostgreSQL ([`MIGRATIONS`]).
//!
//! The domain (`domain.rs`: types, rules, no proto and no SQL) arrives with the issue that builds
//! this service's behaviour; until then every RPC answers `UNIMPLEMENTED` naming what is missing.
#![forbid(unsafe_code)]

mod grpc;
mod store;

use std::future::Future;

use ironmesh_proto::ironmesh::events::v1::event_sink_service_server::EventSinkServiceServer;
use ironmesh_proto::ironmesh::notification::v1::notification_service_server::NotificationServiceServer;
use ironmesh_runtime::{Config, GrpcService, Listeners, RunError, ServiceKind, limit_sizes};

pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Notification;

/// Serves notification on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.max_message_bytes;
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, |_db| {
        GrpcService::new(KIND)
            .add_service(limit_sizes!(
                NotificationServiceServer::new(grpc::NotificationApi),
                limit
            ))
            .add_service(limit_sizes!(
                EventSinkServiceServer::new(grpc::EventSinkApi),
                limit
            ))
    })
    .await
}
