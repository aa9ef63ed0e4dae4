//! The `ironmesh` command's library half.
//!
//! # Layout
//! - [`mesh`]: start any set of services (and the gateway) in one process: bind every listener
//!   first (a busy port fails before anything runs, naming the service), point each service's
//!   endpoint at the address actually bound, spawn, wait until healthy, stop with one token.
//!   `ironmesh up` and `ironmesh-testkit` both use it.
//! - [`services`]: the table from [`ironmesh_runtime::ServiceKind`] to each service crate's
//!   `run` and migrations.
//!
//! The binary (`src/main.rs`) parses the command line and calls into these.
#![forbid(unsafe_code)]

pub mod mesh;
pub mod services;
