//! Catalogue and stock: products, adjustments and reservations.
//!
//! # Layout
//! - [`run`]: open the store, migrate, serve `InventoryService` until shutdown — written by
//!   `ironmesh_runtime::stub_service!`, shared by every stub service.
//! - `grpc`: the tonic adapter (proto ⇄ domain, errors → status in one place).
//! - `store`: the embedded migrations for SQLite and PostgreSQL ([`MIGRATIONS`]).
//!
//! The domain (`domain.rs`: types, rules, no proto and no SQL) arrives with the issue that builds
//! this service's behaviour; until then every RPC answers `UNIMPLEMENTED` naming what is missing.
#![forbid(unsafe_code)]

mod grpc;
mod store;

use ironmesh_proto::ironmesh::inventory::v1::inventory_service_server::InventoryServiceServer;
use ironmesh_runtime::ServiceKind;

pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Inventory;

ironmesh_runtime::stub_service!(
    KIND,
    &MIGRATIONS,
    [InventoryServiceServer::new(grpc::InventoryApi),]
);
