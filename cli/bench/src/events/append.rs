//! Audit's Append against plain INSERTs of the same rows in the same store: a fresh audit store,
//! `Audit::append` in batches of [`BATCH`], then the entries it stored — hashes and all, as
//! plain values — INSERTed into a scratch table shaped like `entries` (same columns, same
//! indexes), [`BATCH`] rows per transaction. What separates the two is Append's own work: the
//! input rules, the head row it locks and moves, the idempotency lookup per entry, the hashes.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use ironmesh_audit::domain::{Entry, NewEntry, Outcome, to_nanos};
use ironmesh_audit::service::Audit;
use ironmesh_audit::store::Store;
use ironmesh_runtime::storage::Backend;
use ironmesh_runtime::{Database, with_pool};

use super::checks;
use super::{BATCH, Rate, Storage, failed};
use crate::error::BenchError;

/// The store's name (its file, or its PostgreSQL schema): not the pipeline's audit.
const STORE: &str = "audit_append";
/// The scratch table the plain INSERTs go to.
pub(super) const PLAIN_TABLE: &str = "bench_plain_entries";

/// `entries` of services/audit/migrations/*/0002_chain.sql under another name, with its indexes
/// ([`checks::same_shape`] proves the columns and the index count equal). Not its
/// append-only triggers: they fire on UPDATE and DELETE, never on INSERT.
const PLAIN_SQLITE: &str = "CREATE TABLE bench_plain_entries (
    sequence        INTEGER PRIMARY KEY,
    entry_id        TEXT NOT NULL UNIQUE,
    occurred_at_ns  INTEGER NOT NULL,
    recorded_at_ns  INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    outcome         INTEGER NOT NULL,
    source_service  TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    details         TEXT NOT NULL,
    prev_hash       BLOB NOT NULL,
    hash            BLOB NOT NULL
);";
const PLAIN_POSTGRES: &str = "CREATE TABLE bench_plain_entries (
    sequence        BIGINT PRIMARY KEY,
    entry_id        TEXT NOT NULL UNIQUE,
    occurred_at_ns  BIGINT NOT NULL,
    recorded_at_ns  BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    outcome         BIGINT NOT NULL,
    source_service  TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    details         TEXT NOT NULL,
    prev_hash       BYTEA NOT NULL,
    hash            BYTEA NOT NULL
);";
/// The same on both backends.
const PLAIN_INDEXES: &str = "
CREATE INDEX bench_plain_entries_actor ON bench_plain_entries (actor, sequence);
CREATE INDEX bench_plain_entries_resource ON bench_plain_entries (resource, sequence);
CREATE INDEX bench_plain_entries_action ON bench_plain_entries (action, sequence);
CREATE INDEX bench_plain_entries_occurred ON bench_plain_entries (occurred_at_ns, sequence);";
/// One row, as audit's store writes it.
const INSERT: &str = "INSERT INTO bench_plain_entries (sequence, entry_id, occurred_at_ns, \
     recorded_at_ns, actor, action, resource, outcome, source_service, request_id, \
     idempotency_key, details, prev_hash, hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// What the comparison measured.
#[derive(Debug)]
pub(super) struct AppendRun {
    /// Entries through `Audit::append`, [`BATCH`] per call.
    pub append: Rate,
    /// The same rows through plain INSERTs, [`BATCH`] per transaction.
    pub plain: Rate,
}

/// One stored entry's column values, in [`INSERT`]'s order.
struct PlainRow {
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

impl PlainRow {
    fn of(entry: &Entry) -> Self {
        let body = &entry.body;
        Self {
            sequence: entry.sequence,
            entry_id: entry.entry_id.clone(),
            occurred_at_ns: to_nanos(body.occurred_at).unwrap_or_default(),
            recorded_at_ns: to_nanos(entry.recorded_at).unwrap_or_default(),
            actor: body.actor.clone(),
            action: body.action.clone(),
            resource: body.resource.clone(),
            outcome: i64::from(body.outcome.number()),
            source_service: body.source_service.clone(),
            request_id: body.request_id.clone(),
            idempotency_key: body.idempotency_key.clone(),
            // As the store keeps details: JSON of the sorted map.
            details: serde_json::to_string(&body.details).unwrap_or_default(),
            prev_hash: entry.prev_hash.clone(),
            hash: entry.hash.clone(),
        }
    }
}

/// Appends `count` entries to a fresh audit store, then INSERTs the same rows plainly.
pub(super) async fn run(count: u64, storage: &Storage) -> Result<AppendRun, BenchError> {
    let db = storage.open(STORE, &ironmesh_audit::MIGRATIONS).await?;
    // Append never signs (checkpoints do), but the service owns its signing keys: a keyring
    // over a throwaway master key.
    let store = Store::new(db.clone());
    let sealing = ironmesh_sealing::Keyring::new(ironmesh_sealing::Key::derived(&rand_key()));
    let audit = Audit::new(
        store.clone(),
        ironmesh_audit::keys::SigningKeys::new(store, sealing),
    );
    // Built before the clock starts: the batches as a caller hands them over.
    let entries: Vec<NewEntry> = (0..count).map(|_| new_entry()).collect();
    let batches: Vec<Vec<NewEntry>> = entries.chunks(super::BATCH).map(<[_]>::to_vec).collect();
    drop(entries);

    let started = Instant::now();
    let mut stored = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for batch in batches {
        stored.extend(audit.append(batch).await.map_err(failed("Append failed"))?);
    }
    let append = Rate::new(count, started.elapsed());
    checks::appended(&stored, count)?;

    let create = match db.backend() {
        Backend::Sqlite => PLAIN_SQLITE,
        Backend::Postgres => PLAIN_POSTGRES,
    };
    with_pool!(&db, pool => {
        sqlx::raw_sql(&format!("{create}{PLAIN_INDEXES}"))
            .execute(pool)
            .await
            .map_err(failed("cannot create the scratch table"))?;
    });
    checks::same_shape(&db, PLAIN_TABLE).await?;
    let rows: Vec<PlainRow> = stored.iter().map(PlainRow::of).collect();
    drop(stored);

    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        insert(&db, chunk).await?;
    }
    let plain = Rate::new(count, started.elapsed());
    checks::row_count(&db, PLAIN_TABLE, count).await?;
    db.close().await;
    Ok(AppendRun { append, plain })
}

/// `rows` in one transaction, one INSERT each.
async fn insert(db: &Database, rows: &[PlainRow]) -> Result<(), BenchError> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await.map_err(failed("cannot begin an INSERT transaction"))?;
        for row in rows {
            sqlx::query(INSERT)
                .bind(row.sequence)
                .bind(&row.entry_id)
                .bind(row.occurred_at_ns)
                .bind(row.recorded_at_ns)
                .bind(&row.actor)
                .bind(&row.action)
                .bind(&row.resource)
                .bind(row.outcome)
                .bind(&row.source_service)
                .bind(&row.request_id)
                .bind(&row.idempotency_key)
                .bind(&row.details)
                .bind(&row.prev_hash)
                .bind(&row.hash)
                .execute(&mut *tx)
                .await
                .map_err(failed("INSERT failed"))?;
        }
        tx.commit().await.map_err(failed("cannot commit an INSERT transaction"))?;
    });
    Ok(())
}

/// A valid entry shaped like one a successful login becomes: a user, its session, a few details.
fn new_entry() -> NewEntry {
    let user = uuid::Uuid::now_v7().to_string();
    let details = BTreeMap::from([
        ("address".to_owned(), "127.0.0.1".to_owned()),
        ("aggregate_version".to_owned(), "1".to_owned()),
        ("second_factor".to_owned(), "false".to_owned()),
        ("session_id".to_owned(), uuid::Uuid::now_v7().to_string()),
        ("user_id".to_owned(), user.clone()),
    ]);
    NewEntry {
        occurred_at: Utc::now(),
        resource: format!("user/{user}"),
        actor: user,
        action: "auth.login.succeeded".to_owned(),
        outcome: Outcome::Success,
        source_service: "auth".to_owned(),
        request_id: uuid::Uuid::now_v7().to_string(),
        idempotency_key: uuid::Uuid::now_v7().to_string(),
        details,
    }
}

/// 32 random bytes (the throwaway master key).
fn rand_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .expect("the system's random source");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench's entries pass the rules Append enforces (a refused batch would fail the run,
    /// not skew it, but it should not happen at all).
    #[test]
    fn bench_entries_are_valid() {
        let mut violations = ironmesh_audit::domain::Violations::default();
        ironmesh_audit::domain::check_entry(&new_entry(), "entries[0]", &mut violations);
        assert!(violations.0.is_empty(), "{:?}", violations.0);
    }
}
