//! Storage for inventory: the schema per backend ([`MIGRATIONS`]) and every query, written once
//! in SQL both SQLite and PostgreSQL accept (`$n` parameters in order of first use, `RETURNING`,
//! `ON CONFLICT`), run through `with_pool!`; the one backend branch is PostgreSQL's `NOTIFY`.
//! Rows are private to each file and converted to domain types there.
//!
//! - `products`: the catalogue (create with its zero stock row, read, list, update).
//! - `stock`: levels and the adjustment ledger (one conditional UPDATE per adjustment).
//! - `reservations`: Reserve, Commit, Release and expiry.
//!
//! **Atomicity without locks in this process.** Every change is a transaction whose first
//! statement writes, and every stock change is one conditional UPDATE (`… WHERE on_hand -
//! reserved >= $q`, `… WHERE status = 'HELD'`). On PostgreSQL the UPDATE takes the row's lock
//! until commit and READ COMMITTED re-checks its condition on the newest row after a wait, so
//! replicas sharing the database queue per row and never oversell or return units twice; rows
//! are always locked in product-id order, so two transactions never wait on each other in a
//! cycle. On SQLite the first write takes the database's write lock at once (what `BEGIN
//! IMMEDIATE` does), waiting under the busy timeout instead of failing on a later upgrade.
//! Events go through the outbox in the same transaction; the relay is woken after commit.

mod products;
mod reservations;
mod stock;

use ironmesh_outbox::{NewEvent, Outbox, OutboxConnection, OutboxError};
use ironmesh_runtime::storage::{Backend, Database, MigrationSet};

use crate::domain::InventoryError;

pub use products::{Column, ListPage};
pub use reservations::{Finish, ReserveOutcome, Transition};
pub use stock::{AdjustOutcome, KeyClaim};

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
    2, "catalogue, stock, ledger, reservations", "0002_catalogue.sql";
    3, "outbox", (ironmesh_outbox::schema::OUTBOX);
    4, "idempotency keys", (ironmesh_idempotency::schema::KEYS);
];

/// The PostgreSQL channel every replica listens on for product changes (payload
/// `<product id>:<revision>`), sent inside the update's transaction so it fires at commit.
pub const PRODUCT_CHANNEL: &str = "ironmesh_inventory_products";

/// A query failed. The source is kept for the log; callers see an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("writing an event failed")]
    Event(#[from] OutboxError),
    #[error("a stored row does not hold a valid {0}")]
    Corrupt(&'static str),
}

impl From<StoreError> for InventoryError {
    fn from(err: StoreError) -> Self {
        InventoryError::Internal(Box::new(err))
    }
}

/// Inventory's tables, on whichever backend the database URL chose.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
    outbox: Outbox,
}

impl Store {
    /// Inventory's tables in `db`; events go through `outbox`.
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn postgres(&self) -> bool {
        self.db.backend() == Backend::Postgres
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

/// `$first, $first+1, …` for `count` values (an `IN (…)` list).
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
