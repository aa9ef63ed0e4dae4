//! The tamper-evident audit log: hash-chained entries, checkpoints and export.
//!
//! # Layout
//! - [`run`]: open the store, migrate, serve `AuditService` until shutdown — written by
//!   `ironmesh_runtime::stub_service!`, shared by every stub service.
//! - `grpc`: the tonic adapter (proto ⇄ domain, errors → status in one place).
//!   Also the `EventSinkService` other services deliver events to.
//! - `store`: the embedded migrations for SQLite and PostgreSQL ([`MIGRATIONS`]).
//!
//! The domain (`domain.rs`: types, rules, no proto and no SQL) arrives with the issue that builds
//! this service's behaviour; until then every RPC answers `UNIMPLEMENTED` naming what is missing.
#![forbid(unsafe_code)]

mod grpc;
mod store;

use ironmesh_proto::ironmesh::audit::v1::audit_service_server::AuditServiceServer;
use ironmesh_proto::ironmesh::events::v1::event_sink_service_server::EventSinkServiceServer;
use ironmesh_runtime::ServiceKind;

pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Audit;

ironmesh_runtime::stub_service!(
    KIND,
    &MIGRATIONS,
    [
        AuditServiceServer::new(grpc::AuditApi),
        EventSinkServiceServer::new(grpc::EventSinkApi),
    ]
);
