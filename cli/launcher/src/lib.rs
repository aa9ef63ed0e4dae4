//! What composes Ironmesh services: the in-process launcher every composition uses — the
//! `ironmesh` binary (`up`, `serve`, `migrate`), the bench's server children and the testkit.
//! It sits above every service and the gateway (DESIGN.md §2: arrows only point down), so no
//! library under `libs/` needs to know a service.
//!
//! # Layout
//! - [`mesh`]: start any set of services (and the gateway) in one process: bind every listener
//!   first (a busy port fails before anything runs, naming the service), point each service's
//!   endpoint at the address actually bound, spawn, wait until healthy, run until told to stop,
//!   drain — one implementation of start → wait healthy → stop.
//! - [`config`]: every component's configuration sections, checked together.
//! - `probe`: the health checks `mesh` waits on (grpc.health.v1 Watch, the gateway's `/readyz`).
//! - [`services`]: the table from [`ironmesh_runtime::ServiceKind`] to each service crate's
//!   `run` and migrations.
#![forbid(unsafe_code)]

pub mod config;
pub mod mesh;
mod probe;
pub mod services;
