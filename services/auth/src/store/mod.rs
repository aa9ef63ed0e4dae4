//! Storage for auth: the schema per backend ([`MIGRATIONS`]) and every query, written once in
//! SQL both SQLite and PostgreSQL accept (`$n` parameters, `RETURNING`), run through
//! `with_pool!`. Rows are private to each file and converted to domain types there.
//!
//! - `users`: accounts, and the administrators' listing, roles and locks.
//! - `sessions`: refresh tokens, their rotation, and the sessions they form.
//! - `api_keys`, `totp`, `signing_keys`: one kind of credential each.
//! - `gdpr`: account deletion.
//!
//! Every change a security event describes writes that event through the outbox in the same
//! transaction ([`Store::outbox`]), and wakes the relay after the commit.

mod api_keys;
mod gdpr;
mod sessions;
mod signing_keys;
mod totp;
mod users;

use ironmesh_outbox::{NewEvent, Outbox, OutboxConnection, OutboxError};
use ironmesh_runtime::storage::{Database, MigrationSet};
use ironmesh_runtime::with_pool;

use crate::domain::{AuthError, Fault};

pub use sessions::NewRefresh;
pub use users::UserFilter;

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
    2, "accounts", "0002_accounts.sql";
    3, "admin locks", "0003_admin.sql";
    4, "totp", "0004_totp.sql";
    5, "outbox", "0005_outbox.sql";
    6, "shared outbox", (ironmesh_outbox::schema::OUTBOX);
    7, "legacy outbox moved to the shared one", "0007_legacy_outbox.sql";
    8, "signing keys published before they sign", "0008_key_publication.sql";
];

/// A query failed. The source is kept for the log; callers see an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("writing an event failed")]
    Event(#[from] OutboxError),
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
    outbox: Outbox,
}

impl Store {
    /// Auth's tables in `db`; events go through `outbox`.
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    /// A migrated store on a fresh SQLite file in a temporary directory (kept alive by the
    /// returned guard), with no event subscribers: for unit tests below the gRPC surface.
    #[cfg(test)]
    pub async fn for_test() -> (tempfile::TempDir, Self) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("auth.db").display());
        let db = Database::connect(&url, "auth")
            .await
            .expect("a SQLite database");
        db.migrate("auth", &crate::MIGRATIONS)
            .await
            .expect("auth's migrations");
        (dir, Self::new(db, Outbox::new("auth", Vec::new())))
    }

    /// Records `event` on its own: a fact with no row of its own (a failed login).
    pub async fn record_event(&self, event: NewEvent) -> Result<()> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            self.outbox.write(&mut *tx, event).await?;
            tx.commit().await?;
        });
        self.outbox.wake();
        Ok(())
    }

    /// Writes `event` on `conn`, inside the transaction of the change it describes; the caller
    /// commits and then calls [`Self::committed`].
    async fn write_event<C: OutboxConnection>(&self, conn: &mut C, event: NewEvent) -> Result<()> {
        self.outbox.write(conn, event).await?;
        Ok(())
    }

    /// Wakes the relay after a commit that wrote events.
    fn committed(&self) {
        self.outbox.wake();
    }
}

/// `Result` of a query.
type Result<T> = std::result::Result<T, StoreError>;
