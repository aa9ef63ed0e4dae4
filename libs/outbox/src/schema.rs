//! The tables, as SQL texts a service includes in its own migrations at a version of its choosing
//! (the `ironmesh_runtime::migrations!` macro takes a parenthesised constant in place of a file):
//!
//! ```ignore
//! pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
//!     1, "initial schema", "0001_initial.sql";
//!     6, "outbox", (ironmesh_outbox::schema::OUTBOX);   // a producer
//!     7, "inbox", (ironmesh_outbox::schema::INBOX);     // a consumer
//! ];
//! ```
//! The texts are frozen once a service has applied them (sqlx checksums migrations); a later
//! change to the tables ships as a new constant for services to add as a new version.

use ironmesh_runtime::storage::BackendSql;

/// `outbox_events`, `outbox_aggregate_versions` and `outbox_deliveries` (delivery state and dead
/// letters) — for services that write events.
pub const OUTBOX: BackendSql = BackendSql {
    sqlite: include_str!("../migrations/sqlite/outbox.sql"),
    postgres: include_str!("../migrations/postgres/outbox.sql"),
};

/// `inbox` — for services that consume events.
pub const INBOX: BackendSql = BackendSql {
    sqlite: include_str!("../migrations/sqlite/inbox.sql"),
    postgres: include_str!("../migrations/postgres/inbox.sql"),
};
