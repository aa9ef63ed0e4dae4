//! Notifications, outbound webhooks with Standard Webhooks signatures, and preferences.
//!
//! # Layout
//! - [`run`]: open the store, migrate, serve `NotificationService` (preferences built, every
//!   other RPC UNIMPLEMENTED) and the `EventSinkService` stub until shutdown.
//! - `grpc`: the tonic adapter (proto ⇄ domain, errors → status in one place).
//!   Also the `EventSinkService` other services deliver events to.
//! - `store`: the migrations for SQLite and PostgreSQL ([`MIGRATIONS`]) and the preferences
//!   queries.
//! - [`ssrf`]: the SSRF guard for outgoing webhooks (URL rules, forbidden address ranges in
//!   every notation, resolve-and-check) — built and tested ahead of the delivery engine that
//!   will use it; nothing calls it yet.
//! - [`catalog`]: which platform events notify whom, saying what — one table of event types,
//!   payload readers and templates; not wired into the event sink yet.
//! - [`preferences`]: channel preferences per event type (most specific match wins, defaults
//!   in-app and email), checked — stored and served by Get/SetPreferences; their resolution
//!   waits for the fan-out.
//! - [`signing`]: Standard Webhooks secrets and signatures (both during a rotation), on the
//!   standard's reference crate — likewise ahead of the delivery engine.
//!
//! What is not built yet answers `UNIMPLEMENTED` naming what is missing.
#![forbid(unsafe_code)]

pub mod catalog;
mod grpc;
pub mod preferences;
pub mod signing;
pub mod ssrf;
mod store;

use ironmesh_proto::ironmesh::events::v1::event_sink_service_server::EventSinkServiceServer;
use ironmesh_proto::ironmesh::notification::v1::notification_service_server::NotificationServiceServer;
use ironmesh_runtime::ServiceKind;

pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Notification;

/// Serves notification on `listeners` until `shutdown` resolves, then drains: its store opened
/// and migrated, `NotificationService` (preferences built, the rest UNIMPLEMENTED) and the
/// `EventSinkService` stub.
pub async fn run(
    config: ironmesh_runtime::Config,
    listeners: ironmesh_runtime::Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ironmesh_runtime::RunError> {
    let limit = config.max_message_bytes;
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
        let api = grpc::NotificationApi::new(store::Store::new(db));
        ironmesh_runtime::GrpcService::new(KIND)
            .add_service(ironmesh_runtime::limit_sizes!(
                NotificationServiceServer::new(api),
                limit
            ))
            .add_service(ironmesh_runtime::limit_sizes!(
                EventSinkServiceServer::new(grpc::EventSinkApi),
                limit
            ))
    })
    .await
}
