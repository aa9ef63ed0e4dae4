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
//!   wires health, reflection (v1 and v1alpha), limits, keepalive, background tasks and the
//!   graceful drain; `server/listeners` binds the [`Listeners`] beforehand, naming who could not.
//! - [`process`]: `main` for a process: config → logging → bind → run → exit code (64 for bad
//!   config).
//! - [`auth`]: local verification of access tokens against auth's JWKS (fetched over gRPC).
//! - [`tls`]: mTLS server and client settings from the configured PEM files.
//! - [`clients`]: the shared client builder pointed at a configured service.
//! - [`try_policy`] / [`policy`]: the process's per-method policy table (idempotency, access),
//!   read from every descriptor we serve; a method without an access option fails start-up.
//! - [`status`]: the shared constructors for gRPC statuses every service returns
//!   (`INVALID_ARGUMENT` with field violations, `FAILED_PRECONDITION` with its subjects, the
//!   generic `INTERNAL`).
//! - [`validation`]: [`validation::Violations`], the field problems a domain collects.
//! - [`paging`]: the page size rule and page tokens bound to a request's filters.
//! - [`stub`]: [`stub_service!`], the whole `run` of a service that only answers `UNIMPLEMENTED` yet.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod clients;
pub mod config;
pub mod health;
pub mod limits;
pub mod paging;
pub mod process;
pub mod server;
pub mod signal;
pub mod status;
pub mod storage;
pub mod stub;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod validation;

use std::sync::LazyLock;

use ironmesh_interceptors::policy::{PolicyError, PolicyTable};

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

/// The descriptor sets every process serves or calls: our contracts plus health and reflection.
const DESCRIPTOR_SETS: [&[u8]; 4] = [
    ironmesh_proto::FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// Built once per process; the error is kept so every caller reports the same one.
static POLICY: LazyLock<Result<PolicyTable, PolicyError>> =
    LazyLock::new(|| PolicyTable::from_descriptor_sets(&DESCRIPTOR_SETS));

/// Every method this build knows, with idempotency and access from the proto options — or why
/// the contracts cannot be enforced (a method without an access option, named). [`serve`] and
/// [`clients::channel`] call this first, so such a build refuses to start with that error.
pub fn try_policy() -> Result<&'static PolicyTable, PolicyError> {
    POLICY.as_ref().map_err(Clone::clone)
}

/// [`try_policy`] for tests and tools, which have no start-up to fail.
///
/// # Panics
/// When the compiled contracts leave a method without an access option; the tests of this crate
/// prove the shipped ones do not.
pub fn policy() -> &'static PolicyTable {
    match try_policy() {
        Ok(table) => table,
        Err(error) => panic!("the compiled contracts cannot be enforced: {error}"),
    }
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

#[cfg(test)]
mod tests {
    /// The descriptors this build serves make a table, so no process fails to start on them and
    /// [`super::policy`] never panics.
    #[test]
    fn the_shipped_contracts_make_a_policy_table() {
        let table = super::try_policy().expect("every method states its access");
        assert!(
            table.get("/ironmesh.auth.v1.AuthService/Login").is_some()
                && table.get("/grpc.health.v1.Health/Check").is_some()
                && table
                    .get("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
                    .is_some()
        );
    }
}
