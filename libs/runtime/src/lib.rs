//! What every Ironmesh process shares, so each service only writes its domain.
//!
//! # Layout
//! - [`config`]: the one `Config` (defaults ← optional TOML file ← `IRONMESH_*` env), validated at
//!   start; a bad value is a [`config::ConfigError`] naming the key (the CLI exits 64 on it).
//! - [`telemetry`]: logging — JSON when stdout is not a terminal, pretty when it is.
//! - [`signal`]: the shutdown future (SIGINT / SIGTERM).
//! - [`storage`]: sqlx pools for `sqlite://` and `postgres://`, each service in its own file or
//!   schema, and embedded per-backend migrations.
//! - [`limits`]: the 4 MiB gRPC message limit enforced as RESOURCE_EXHAUSTED before a body is read.
//! - [`health`]: grpc.health.v1 on top of tonic-health, with Watch streams that end once a drain
//!   has been announced.
//! - [`admin`]: the admin HTTP listener (`/healthz`, `/readyz`).
//! - [`server`]: [`server::serve`] — binds nothing itself; takes listeners and a shutdown future,
//!   wires health, reflection (v1 and v1alpha), limits, keepalive and the graceful drain.
//! - [`process`]: `main` for a process: config → logging → bind → run → exit code (64 for bad
//!   config).
//! - [`auth`]: local verification of access tokens against auth's JWKS (fetched over gRPC).
//! - [`tls`]: mTLS server and client settings from the configured PEM files.
//! - [`clients`]: the shared client builder pointed at a configured service.
//! - [`policy`]: the process's per-method policy table, read from every descriptor we serve.
//! - [`status`]: the shared constructors for gRPC statuses every service returns.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod clients;
pub mod config;
pub mod health;
pub mod limits;
pub mod process;
pub mod server;
pub mod signal;
pub mod status;
pub mod storage;
pub mod telemetry;
pub mod tls;

use std::sync::LazyLock;

use ironmesh_interceptors::policy::PolicyTable;

pub use config::{Config, ServiceKind};
pub use server::{GrpcService, Listeners, RunError, run_service, serve};
pub use storage::Database;

/// Applies `limit` as both the decoding and encoding message size of a generated tonic server
/// (those are inherent methods on each generated type, so a macro is the one shared way).
#[macro_export]
macro_rules! limit_sizes {
    ($server:expr, $limit:expr) => {{
        let limit: usize = $limit;
        $server
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }};
}

static POLICY: LazyLock<PolicyTable> = LazyLock::new(|| {
    PolicyTable::from_descriptor_sets(&[
        ironmesh_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ])
    .expect("the compiled descriptor sets decode")
});

/// Every method this build knows — our contracts plus health and reflection — with idempotency
/// from the proto options. Built once per process.
pub fn policy() -> &'static PolicyTable {
    &POLICY
}

/// A service's [`storage::MigrationSet`] from its `migrations/{sqlite,postgres}/` files, one line
/// per migration (the same version and file name on both backends). A line may instead name, in
/// parentheses, a [`storage::BackendSql`] constant a shared crate exports — e.g. the outbox tables
/// of `ironmesh-outbox` — at a version of the service's choosing:
///
/// ```ignore
/// pub const MIGRATIONS: MigrationSet = migrations![
///     1, "initial schema", "0001_initial.sql";
///     2, "accounts", "0002_accounts.sql";
///     3, "outbox", (ironmesh_outbox::schema::OUTBOX);
/// ];
/// ```
#[macro_export]
macro_rules! migrations {
    ($($version:literal, $description:literal, $source:tt);+ $(;)?) => {
        $crate::storage::MigrationSet {
            sqlite: &[$($crate::storage::SqlMigration {
                version: $version,
                description: $description,
                sql: $crate::migration_sql!(sqlite, $source),
            }),+],
            postgres: &[$($crate::storage::SqlMigration {
                version: $version,
                description: $description,
                sql: $crate::migration_sql!(postgres, $source),
            }),+],
        }
    };
}

/// One migration's SQL text for one backend: a file of the calling crate, or a field of a
/// [`storage::BackendSql`] constant. Used by [`migrations!`].
#[doc(hidden)]
#[macro_export]
macro_rules! migration_sql {
    (sqlite, $file:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/sqlite/",
            $file
        ))
    };
    (postgres, $file:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/postgres/",
            $file
        ))
    };
    ($backend:ident, ($shared:path)) => {
        $shared.$backend
    };
}
