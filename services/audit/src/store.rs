//! Storage for audit: the schema, per backend. Queries arrive with the behaviour that needs them.

use ironmesh_runtime::storage::{MigrationSet, SqlMigration};

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = MigrationSet {
    sqlite: &[SqlMigration {
        version: 1,
        description: "initial schema",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    }],
    postgres: &[SqlMigration {
        version: 1,
        description: "initial schema",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    }],
};
