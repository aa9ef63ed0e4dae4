//! Notifications, outbound webhooks with Standard Webhooks signatures, and preferences.
//!
//! # Layout
//! - [`run`]: open the store, migrate, serve `NotificationService` until shutdown — written by
//!   `ironmesh_runtime::stub_service!`, shared by every stub service.
//! - `grpc`: the tonic adapter (proto ⇄ domain, errors → status in one place).
//!   Also the `EventSinkService` other services deliver events to.
//! - `store`: the embedded migrations for SQLite and PostgreSQL ([`MIGRATIONS`]).
//! - [`ssrf`]: the SSRF guard for outgoing webhooks (URL rules, forbidden address ranges in
//!   every notation, resolve-and-check) — built and tested ahead of the delivery engine that
//!   will use it; nothing calls it yet.
//! - [`catalog`]: which platform events notify whom, saying what — one table of event types,
//!   payload readers and templates; not wired into the event sink yet.
//! - [`preferences`]: channel preferences per event type (most specific match wins, defaults
//!   in-app and email) — checked and resolved; not wired yet either.
//! - [`signing`]: Standard Webhooks secrets and signatures (both during a rotation), on the
//!   standard's reference crate — likewise ahead of the delivery engine.
//!
//! The domain (`domain.rs`: types, rules, no proto and no SQL) arrives with the issue that builds
//! this service's behaviour; until then every RPC answers `UNIMPLEMENTED` naming what is missing.
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

ironmesh_runtime::stub_service!(
    KIND,
    &MIGRATIONS,
    [
        NotificationServiceServer::new(grpc::NotificationApi),
        EventSinkServiceServer::new(grpc::EventSinkApi),
    ]
);
