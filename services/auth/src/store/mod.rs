//! Storage for auth: the schema per backend ([`MIGRATIONS`]) and every query, written once in
//! SQL both SQLite and PostgreSQL accept (`$n` parameters, `RETURNING`), run through
//! `with_pool!`. Rows are private to each file and converted to domain types there.
//!
//! - `users`: accounts, and the administrators' listing, roles and locks.
//! - `sessions`: refresh tokens, their rotation, and the sessions they form.
//! - `api_keys`, `totp`, `signing_keys`: one kind of credential each.
//! - `gdpr`: account deletion with its outbox event.

mod api_keys;
mod gdpr;
mod sessions;
mod signing_keys;
mod totp;
mod users;

use ironmesh_runtime::storage::{Database, MigrationSet};

use crate::domain::{AuthError, Fault};

pub use gdpr::OutboxEvent;
pub use sessions::NewRefresh;
pub use users::UserFilter;

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
    2, "accounts", "0002_accounts.sql";
    3, "admin locks", "0003_admin.sql";
    4, "totp", "0004_totp.sql";
    5, "outbox", "0005_outbox.sql";
];

/// A query failed. The source is kept for the log; callers see an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        AuthError::Internal(Fault::Store(Box::new(err)))
    }
}

/// Auth's tables, on whichever backend the database URL chose.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// `Result` of a query.
type Result<T> = std::result::Result<T, StoreError>;
