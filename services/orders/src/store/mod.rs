//! Storage for orders: the schema per backend ([`MIGRATIONS`]) and every query, written once in
//! SQL both SQLite and PostgreSQL accept, run through `with_pool!`.
//!
//! **One winner per change, across replicas.** An order is read, the domain decides the next
//! state ([`crate::domain::lifecycle`]), and [`Store::save`] writes it with ONE UPDATE
//! conditional on the version (and status) it was decided from, in the same transaction as the
//! event it emits. Of two concurrent changes of one order — a PayOrder and a CancelOrder, two
//! replicas' recovery — the second UPDATE matches no row and its caller decides again from the
//! newer state. Creation claims the idempotency key and inserts the order in one transaction,
//! so the key exists exactly when the order does.

mod orders;

use ironmesh_outbox::{Outbox, OutboxError};
use ironmesh_runtime::storage::{Database, MigrationSet};

use crate::domain::OrdersError;

pub use orders::{Inserted, ListFilter, orders_key_scope};

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
    2, "orders and their lines", "0002_orders.sql";
    3, "outbox", (ironmesh_outbox::schema::OUTBOX);
    4, "idempotency keys", (ironmesh_idempotency::schema::KEYS);
];

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

impl From<StoreError> for OrdersError {
    fn from(err: StoreError) -> Self {
        OrdersError::Internal(Box::new(err))
    }
}

/// `Result` of a query.
type Result<T> = std::result::Result<T, StoreError>;

/// Orders' tables, on whichever backend the database URL chose.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
    outbox: Outbox,
}

impl Store {
    /// Orders' tables in `db`; events go through `outbox`.
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }
}
