//! Storage for orders: the schema, per backend. Queries arrive with the behaviour that needs them.

use ironmesh_runtime::storage::MigrationSet;

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
];
