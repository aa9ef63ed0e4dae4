//! Storage for audit: the schema per backend ([`MIGRATIONS`]) and every query, written once in
//! SQL both SQLite and PostgreSQL accept, run through `with_pool!`. Rows are converted to domain
//! types here. Appends are below; `read` holds Query, VerifyChain's walk and Export's batches;
//! `signed` the signing keys, checkpoints, anchors and retention's purge.
//!
//! **How appends serialize.** Every append transaction starts with
//! `UPDATE chain_head SET sequence = sequence WHERE id = 1 RETURNING sequence, hash`. On
//! PostgreSQL the UPDATE takes the head row's lock (what `SELECT … FOR UPDATE` would) until
//! commit, so appends from every replica queue on that one row and each sees the head the
//! previous one committed — READ COMMITTED re-reads the row after the wait. On SQLite the first
//! statement being a write makes the deferred transaction take the database's write lock at
//! once (what `BEGIN IMMEDIATE` does), waiting under the busy timeout, instead of reading first
//! and failing with `SQLITE_BUSY` when it later upgrades. One statement text, both backends, no
//! lock in this process; the new head is written before commit, and sequences cannot gap
//! because a rolled-back transaction leaves the head where it was.

use chrono::Utc;
use ironmesh_outbox::Inbox;
use ironmesh_proto::ironmesh::events::v1::Event;
use ironmesh_runtime::storage::{Database, MigrationSet};
use ironmesh_runtime::with_pool;

mod read;
mod signed;

pub use signed::StoredKey;

use crate::domain::{AuditError, Entry, NewEntry, Outcome, from_nanos, to_nanos};

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
    2, "hash chain", "0002_chain.sql";
    3, "inbox", (ironmesh_outbox::schema::INBOX);
    4, "signing keys, checkpoints, retention anchors", "0004_signatures.sql";
];

/// A query failed. The source is kept for the log; callers see an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("inbox")]
    Inbox(#[from] ironmesh_outbox::OutboxError),
    #[error("stored entry {0} is unreadable")]
    Corrupt(i64),
}

impl From<StoreError> for AuditError {
    fn from(err: StoreError) -> Self {
        AuditError::Internal(Box::new(err))
    }
}

type Result<T> = std::result::Result<T, StoreError>;

const LOCK_HEAD: &str =
    "UPDATE chain_head SET sequence = sequence WHERE id = 1 RETURNING sequence, hash";
const SET_HEAD: &str = "UPDATE chain_head SET sequence = $1, hash = $2 WHERE id = 1";
const COLUMNS: &str = "sequence, entry_id, occurred_at_ns, recorded_at_ns, actor, action, resource, \
                       outcome, source_service, request_id, idempotency_key, details, prev_hash, hash";
const INSERT: &str = "INSERT INTO entries (sequence, entry_id, occurred_at_ns, recorded_at_ns, actor, \
                      action, resource, outcome, source_service, request_id, idempotency_key, details, \
                      prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// An entries row as stored, in [`COLUMNS`] order (a tuple: sqlx's derive is not enabled).
type RawRow = (
    i64,
    String,
    i64,
    i64,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
);

/// [`RawRow`] with names.
struct Row {
    sequence: i64,
    entry_id: String,
    occurred_at_ns: i64,
    recorded_at_ns: i64,
    actor: String,
    action: String,
    resource: String,
    outcome: i64,
    source_service: String,
    request_id: String,
    idempotency_key: String,
    details: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl From<RawRow> for Row {
    fn from(r: RawRow) -> Self {
        Self {
            sequence: r.0,
            entry_id: r.1,
            occurred_at_ns: r.2,
            recorded_at_ns: r.3,
            actor: r.4,
            action: r.5,
            resource: r.6,
            outcome: r.7,
            source_service: r.8,
            request_id: r.9,
            idempotency_key: r.10,
            details: r.11,
            prev_hash: r.12,
            hash: r.13,
        }
    }
}

impl Row {
    fn into_entry(self) -> Result<Entry> {
        let corrupt = || StoreError::Corrupt(self.sequence);
        let outcome = Outcome::from_number(self.outcome).ok_or_else(corrupt)?;
        let details = serde_json::from_str(&self.details).map_err(|_| corrupt())?;
        Ok(Entry {
            sequence: self.sequence,
            entry_id: self.entry_id,
            recorded_at: from_nanos(self.recorded_at_ns),
            body: NewEntry {
                occurred_at: from_nanos(self.occurred_at_ns),
                actor: self.actor,
                action: self.action,
                resource: self.resource,
                outcome,
                source_service: self.source_service,
                request_id: self.request_id,
                idempotency_key: self.idempotency_key,
                details,
            },
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// Audit's tables, on whichever backend the database URL chose.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
}

/// Appends `$entries` in the open transaction `$tx` (head already locked at `$head`): existing
/// idempotency keys return their entry, new ones are chained. Written once as a macro because
/// the transaction's type differs per backend.
macro_rules! append_locked {
    ($tx:expr, $head:expr, $entries:expr) => {{
        let (mut sequence, mut prev): (i64, Vec<u8>) = $head;
        let mut stored: Vec<Entry> = Vec::with_capacity($entries.len());
        let recorded_at = Utc::now();
        let recorded_ns = to_nanos(recorded_at).unwrap_or_default();
        for new in $entries {
            // Within the batch first (a key twice in one request is one entry), then the log.
            if let Some(same) = stored
                .iter()
                .find(|e| e.body.idempotency_key == new.idempotency_key)
            {
                let same = same.clone();
                stored.push(same);
                continue;
            }
            let existing: Option<RawRow> = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM entries WHERE idempotency_key = $1"
            ))
            .bind(&new.idempotency_key)
            .fetch_optional(&mut *$tx)
            .await?;
            if let Some(row) = existing {
                stored.push(Row::from(row).into_entry()?);
                continue;
            }
            sequence += 1;
            let mut entry = Entry {
                sequence,
                entry_id: uuid::Uuid::now_v7().to_string(),
                recorded_at: from_nanos(recorded_ns),
                body: new.clone(),
                prev_hash: std::mem::take(&mut prev),
                hash: Vec::new(),
            };
            entry.hash = entry.computed_hash().to_vec();
            let details = serde_json::to_string(&entry.body.details).unwrap_or_default();
            sqlx::query(INSERT)
                .bind(entry.sequence)
                .bind(&entry.entry_id)
                .bind(to_nanos(entry.body.occurred_at).unwrap_or_default())
                .bind(recorded_ns)
                .bind(&entry.body.actor)
                .bind(&entry.body.action)
                .bind(&entry.body.resource)
                .bind(i64::from(entry.body.outcome.number()))
                .bind(&entry.body.source_service)
                .bind(&entry.body.request_id)
                .bind(&entry.body.idempotency_key)
                .bind(details)
                .bind(&entry.prev_hash)
                .bind(&entry.hash)
                .execute(&mut *$tx)
                .await?;
            prev.clone_from(&entry.hash);
            stored.push(entry);
        }
        sqlx::query(SET_HEAD)
            .bind(sequence)
            .bind(&prev)
            .execute(&mut *$tx)
            .await?;
        stored
    }};
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The database underneath (for tests that change rows out of band).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Appends `entries` atomically and in order at the head (see the module docs for how
    /// concurrent appends serialize); returns the stored entries in request order, existing ones
    /// for idempotency keys already recorded.
    pub async fn append(&self, entries: &[NewEntry]) -> Result<Vec<Entry>> {
        let stored = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let head: (i64, Vec<u8>) = sqlx::query_as(LOCK_HEAD).fetch_one(&mut *tx).await?;
            let stored = append_locked!(tx, head, entries);
            tx.commit().await?;
            stored
        });
        Ok(stored)
    }

    /// Records each event in `inbox` and appends its entry, all in one transaction: per event,
    /// true when it was new (its entry appended), false when the inbox already had it (nothing
    /// appended). An error means nothing was recorded. The head is locked before any inbox row
    /// is written, so two deliveries of the same events queue on the head instead of deadlocking
    /// on each other's inbox rows.
    pub async fn append_events(
        &self,
        inbox: &Inbox,
        events: &[(&Event, NewEntry)],
    ) -> Result<Vec<bool>> {
        let fresh = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let head: (i64, Vec<u8>) = sqlx::query_as(LOCK_HEAD).fetch_one(&mut *tx).await?;
            let mut fresh = Vec::with_capacity(events.len());
            let mut entries = Vec::new();
            for (event, entry) in events {
                let new = inbox.record(&mut *tx, event).await?;
                if new {
                    entries.push(entry);
                }
                fresh.push(new);
            }
            append_locked!(tx, head, entries);
            tx.commit().await?;
            fresh
        });
        Ok(fresh)
    }

    /// The entry at `sequence`.
    pub async fn entry(&self, sequence: i64) -> Result<Option<Entry>> {
        let sql = format!("SELECT {COLUMNS} FROM entries WHERE sequence = $1");
        let row: Option<RawRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&sql).bind(sequence).fetch_optional(pool).await?
        });
        row.map(|r| Row::from(r).into_entry()).transpose()
    }

    /// The committed head's sequence (0 for an empty log).
    pub async fn head(&self) -> Result<i64> {
        let head: i64 = with_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT sequence FROM chain_head WHERE id = 1")
                .fetch_one(pool)
                .await?
        });
        Ok(head)
    }
}
