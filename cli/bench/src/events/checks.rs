//! What proves the events suite's figures honest: the producer's deliveries as the outbox
//! records them, every event in audit's store exactly once under its id, the Append run's
//! entries chained in order, and the plain-INSERT table shaped like audit's `entries`.

use std::collections::HashSet;

use ironmesh_audit::domain::Entry;
use ironmesh_runtime::storage::Backend;
use ironmesh_runtime::{Database, with_pool};

use super::failed;
use crate::error::BenchError;

/// The producer's delivery pairs by state, after the pipeline.
#[derive(Clone, Copy, Debug)]
pub(super) struct Deliveries {
    pub delivered: u64,
    /// Pairs that needed more than one attempt (the relay retried them).
    pub retried: u64,
}

/// Deliveries still pending.
pub(super) async fn pending(db: &Database) -> Result<u64, BenchError> {
    count(
        db,
        "SELECT COUNT(*) FROM outbox_deliveries WHERE state = 'pending'",
    )
    .await
}

/// What the outbox says of the pending pair tried most often: its attempts and last error.
pub(super) async fn last_error(db: &Database) -> Result<Option<(i32, String)>, BenchError> {
    const WORST: &str = "SELECT attempts, last_error FROM outbox_deliveries \
                         WHERE state = 'pending' ORDER BY attempts DESC, event_seq LIMIT 1";
    let worst: Option<(i32, String)> = with_pool!(db, pool => {
        sqlx::query_as(WORST)
            .fetch_optional(pool)
            .await
            .map_err(failed("cannot read the pending deliveries"))?
    });
    Ok(worst)
}

/// Every one of the `written` pairs delivered, none dead: the counts, and how many were retried.
pub(super) async fn deliveries(db: &Database, written: u64) -> Result<Deliveries, BenchError> {
    let dead = count(
        db,
        "SELECT COUNT(*) FROM outbox_deliveries WHERE state = 'dead'",
    )
    .await?;
    let delivered = count(
        db,
        "SELECT COUNT(*) FROM outbox_deliveries WHERE state = 'delivered'",
    )
    .await?;
    if dead != 0 || delivered != written {
        return Err(BenchError::Failed(format!(
            "of {written} events written, the outbox records {delivered} delivered and {dead} \
             dead letters"
        )));
    }
    let retried = count(
        db,
        "SELECT COUNT(*) FROM outbox_deliveries WHERE attempts > 1",
    )
    .await?;
    Ok(Deliveries { delivered, retried })
}

/// Audit's store holds `after` entries and then exactly one per id of `ids` (as its
/// `idempotency_key`), nothing else: those entries' `(occurred_at_ns, recorded_at_ns)`.
pub(super) async fn audit_holds(
    audit_db: &Database,
    after: i64,
    ids: &[String],
) -> Result<Vec<(i64, i64)>, BenchError> {
    const ROWS: &str = "SELECT idempotency_key, occurred_at_ns, recorded_at_ns FROM entries \
                        WHERE sequence > $1 ORDER BY sequence";
    let rows: Vec<(String, i64, i64)> = with_pool!(audit_db, pool => {
        sqlx::query_as(ROWS)
            .bind(after)
            .fetch_all(pool)
            .await
            .map_err(failed("cannot read audit's entries"))?
    });
    let total = count(audit_db, "SELECT COUNT(*) FROM entries").await?;
    let expected: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let found: HashSet<&str> = rows.iter().map(|(key, _, _)| key.as_str()).collect();
    let foreign = found.difference(&expected).count();
    let missing = expected.difference(&found).count();
    let wanted_total = u64::try_from(after).unwrap_or(0) + ids.len() as u64;
    if rows.len() != ids.len() || foreign != 0 || missing != 0 || total != wanted_total {
        return Err(BenchError::Failed(format!(
            "audit's store should hold {wanted_total} entries, the last {} keyed by the events \
             just written; it holds {total}, {} after sequence {after}: {missing} event(s) \
             missing, {foreign} other key(s)",
            ids.len(),
            rows.len()
        )));
    }
    Ok(rows
        .into_iter()
        .map(|(_, occurred, recorded)| (occurred, recorded))
        .collect())
}

/// What Append returned for `count` new entries: sequences 1..=count in order, each chained to
/// the one before, no idempotency key twice.
pub(super) fn appended(stored: &[Entry], count: u64) -> Result<(), BenchError> {
    let keys: HashSet<&str> = stored
        .iter()
        .map(|e| e.body.idempotency_key.as_str())
        .collect();
    let in_order = stored
        .iter()
        .zip(1..)
        .all(|(entry, sequence)| entry.sequence == sequence);
    let chained = stored
        .windows(2)
        .all(|pair| pair[1].prev_hash == pair[0].hash);
    if stored.len() as u64 != count || keys.len() != stored.len() || !in_order || !chained {
        return Err(BenchError::Failed(format!(
            "Append of {count} new entries returned {} ({} distinct keys; in order: {in_order}, \
             chained: {chained})",
            stored.len(),
            keys.len()
        )));
    }
    Ok(())
}

/// `table` holds exactly `rows` rows.
pub(super) async fn row_count(db: &Database, table: &str, rows: u64) -> Result<(), BenchError> {
    let found = count(db, &format!("SELECT COUNT(*) FROM {table}")).await?;
    if found != rows {
        return Err(BenchError::Failed(format!(
            "{table} holds {found} rows after {rows} INSERTs"
        )));
    }
    Ok(())
}

/// `scratch` has the columns of `entries` (names, types, nullability, primary key, in order)
/// and as many indexes, so the plain INSERTs write what Append writes.
pub(super) async fn same_shape(db: &Database, scratch: &str) -> Result<(), BenchError> {
    let (columns, indexes) = match db.backend() {
        Backend::Sqlite => (
            "SELECT name, type, printf('%d/%d', \"notnull\", pk) FROM pragma_table_info($1) \
             ORDER BY cid",
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = $1",
        ),
        Backend::Postgres => (
            "SELECT column_name::text, data_type::text, is_nullable::text \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1",
        ),
    };
    let mut shapes = Vec::new();
    for table in ["entries", scratch] {
        let (cols, idx): (Vec<(String, String, String)>, i64) = with_pool!(db, pool => {
            let cols = sqlx::query_as(columns)
                .bind(table)
                .fetch_all(pool)
                .await
                .map_err(failed("cannot read a table's columns"))?;
            let (idx,): (i64,) = sqlx::query_as(indexes)
                .bind(table)
                .fetch_one(pool)
                .await
                .map_err(failed("cannot count a table's indexes"))?;
            (cols, idx)
        });
        shapes.push((cols, idx));
    }
    if shapes[0].0.is_empty() || shapes[0] != shapes[1] {
        return Err(BenchError::Failed(format!(
            "{scratch} is not shaped like entries: {:?} vs {:?}",
            shapes[1], shapes[0]
        )));
    }
    Ok(())
}

/// The one number `sql` selects.
async fn count(db: &Database, sql: &str) -> Result<u64, BenchError> {
    let (n,): (i64,) = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .fetch_one(pool)
            .await
            .map_err(failed("cannot count rows"))?
    });
    Ok(u64::try_from(n).unwrap_or(0))
}
