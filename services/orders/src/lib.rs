//! Orders: idempotent creation, payment, fulfilment, cancellation and refunds.
//!
//! # Layout
//! - [`run`]: open the store, migrate, serve `OrdersService` until shutdown — written by
//!   `ironmesh_runtime::stub_service!`, shared by every stub service.
//! - `grpc`: the tonic adapter (proto ⇄ domain, errors → status in one place).
//! - `store`: the embedded migrations for SQLite and PostgreSQL ([`MIGRATIONS`]).
//!
//! The domain (`domain.rs`: types, rules, no proto and no SQL) arrives with the issue that builds
//! this service's behaviour; until then every RPC answers `UNIMPLEMENTED` naming what is missing.
#![forbid(unsafe_code)]

mod grpc;
mod store;

use ironmesh_proto::ironmesh::orders::v1::orders_service_server::OrdersServiceServer;
use ironmesh_runtime::ServiceKind;

pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Orders;

ironmesh_runtime::stub_service!(
    KIND,
    &MIGRATIONS,
    [OrdersServiceServer::new(grpc::OrdersApi),]
);
