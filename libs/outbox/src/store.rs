//! The relay's SQL: claiming due deliveries, recording outcomes, gauges and retention. One text
//! per statement for both backends except the claim, which locks with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL (SQLite has one writer, and one statement is atomic there).

use chrono::{DateTime, Utc};
use ironmesh_proto::ironmesh::events::v1::Event;
use ironmesh_runtime::storage::Backend;
use ironmesh_runtime::{Database, with_pool};

use crate::event::{EVENT_COLUMNS, EventRow, from_row};

/// What happened to one claimed pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    /// Try again at the given time.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    Dead {
        error: String,
    },
    /// Not sent (the batch was full): give the lease back untouched.
    Released,
}

/// On PostgreSQL a claim may take this long; longer means a bad plan (see [`claim`]).
const CLAIM_TIMEOUT: &str = "SET LOCAL statement_timeout = '5s'";
const ANALYZE: &str = "ANALYZE outbox_deliveries, outbox_events";

/// True when PostgreSQL cancelled the statement (SQLSTATE 57014: `statement_timeout`).
fn is_query_cancelled(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("57014"))
}

/// A claimed pair: the event and how many attempts it has had before this one.
pub(crate) struct Claimed {
    pub seq: i64,
    pub attempts: i32,
    pub event: Event,
}

/// Leases up to `limit` due pairs of `subscriber` for `owner` until `lease_until`. A pair is due
/// when pending, past its next attempt time, not leased by anyone, and no earlier version of its
/// aggregate is still pending for this subscriber (so a subscriber never gets version n+1 before
/// n is delivered or dead — at most one event per aggregate is in flight). On PostgreSQL the
/// claim is bounded by a statement timeout: one that runs out (a plan made before the tables had
/// statistics) analyzes the tables and claims again.
pub(crate) async fn claim(
    db: &Database,
    subscriber: &str,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let lock = match db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let claim = format!(
        "UPDATE outbox_deliveries SET lease_owner = $3, lease_until = $4 \
         WHERE subscriber = $1 AND event_seq IN ( \
           SELECT c.event_seq FROM outbox_deliveries c \
           WHERE c.subscriber = $1 AND c.state = 'pending' AND c.next_attempt_at <= $2 \
             AND (c.lease_until IS NULL OR c.lease_until <= $2) \
             AND NOT EXISTS (SELECT 1 FROM outbox_deliveries p \
               WHERE p.subscriber = c.subscriber AND p.state = 'pending' \
                 AND p.aggregate_type = c.aggregate_type AND p.aggregate_id = c.aggregate_id \
                 AND p.aggregate_version < c.aggregate_version) \
           ORDER BY c.event_seq LIMIT $5 {lock})"
    );
    let fetch = format!(
        "SELECT d.attempts, {EVENT_COLUMNS} FROM outbox_deliveries d \
         JOIN outbox_events e ON e.seq = d.event_seq \
         WHERE d.subscriber = $1 AND d.lease_owner = $2 AND d.state = 'pending' ORDER BY e.seq"
    );
    let postgres = db.backend() == Backend::Postgres;
    let rows: Vec<(i32, EventRow)> = with_pool!(db, pool => {
        let mut claimed = None;
        for _ in 0..2 {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query(CLAIM_TIMEOUT).execute(&mut *tx).await?;
            }
            let done = sqlx::query(&claim)
                .bind(subscriber)
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .bind(limit)
                .execute(&mut *tx)
                .await;
            match done {
                Ok(done) => {
                    tx.commit().await?;
                    claimed = Some(done.rows_affected());
                    break;
                }
                Err(err) if postgres && is_query_cancelled(&err) => {
                    drop(tx);
                    // A plan made without statistics (a table that grew from nothing faster
                    // than autovacuum looked) compares every pending pair with every other:
                    // give the planner the statistics, then claim again.
                    tracing::warn!(subscriber, "outbox claim timed out; analyzing the outbox tables");
                    sqlx::query(ANALYZE).execute(pool).await?;
                }
                Err(err) => return Err(err),
            }
        }
        let Some(claimed) = claimed else {
            return Ok(Vec::new());
        };
        if claimed == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<ClaimRow> = sqlx::query_as(&fetch)
            .bind(subscriber)
            .bind(owner)
            .fetch_all(pool)
            .await?;
        rows.into_iter().map(split).collect()
    });
    Ok(rows
        .into_iter()
        .map(|(attempts, row)| {
            let (seq, event) = from_row(row);
            Claimed {
                seq,
                attempts,
                event,
            }
        })
        .collect())
}

type ClaimRow = (
    i32,
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    DateTime<Utc>,
    String,
    String,
    Vec<u8>,
    String,
    String,
    String,
);

fn split(r: ClaimRow) -> (i32, EventRow) {
    (
        r.0,
        (
            r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12, r.13, r.14,
        ),
    )
}

/// Records the outcome of each pair of one batch, in one transaction. A pair whose lease `owner`
/// no longer holds (it expired and another relay took it) is left to that relay.
pub(crate) async fn settle(
    db: &Database,
    subscriber: &str,
    owner: &str,
    now: DateTime<Utc>,
    outcomes: &[(i64, Outcome)],
) -> Result<(), sqlx::Error> {
    const DELIVERED: &str = "UPDATE outbox_deliveries SET state = 'delivered', attempts = attempts + 1, \
         lease_owner = NULL, lease_until = NULL, last_error = '', updated_at = $4 \
         WHERE subscriber = $1 AND event_seq = $2 AND lease_owner = $3";
    const RETRY: &str = "UPDATE outbox_deliveries SET attempts = attempts + 1, next_attempt_at = $5, \
         last_error = $6, lease_owner = NULL, lease_until = NULL, updated_at = $4 \
         WHERE subscriber = $1 AND event_seq = $2 AND lease_owner = $3";
    const DEAD: &str = "UPDATE outbox_deliveries SET state = 'dead', attempts = attempts + 1, \
         last_error = $5, lease_owner = NULL, lease_until = NULL, updated_at = $4 \
         WHERE subscriber = $1 AND event_seq = $2 AND lease_owner = $3";
    const RELEASE: &str = "UPDATE outbox_deliveries SET lease_owner = NULL, lease_until = NULL \
         WHERE subscriber = $1 AND event_seq = $2 AND lease_owner = $3";
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for (seq, outcome) in outcomes {
            let query = match outcome {
                Outcome::Delivered => sqlx::query(DELIVERED),
                Outcome::Retry { .. } => sqlx::query(RETRY),
                Outcome::Dead { .. } => sqlx::query(DEAD),
                Outcome::Released => sqlx::query(RELEASE),
            };
            let query = query.bind(subscriber).bind(*seq).bind(owner);
            let query = match outcome {
                Outcome::Delivered => query.bind(now),
                Outcome::Retry { at, error } => query.bind(now).bind(*at).bind(error.as_str()),
                Outcome::Dead { error } => query.bind(now).bind(error.as_str()),
                Outcome::Released => query,
            };
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Pending pairs of `subscriber` and the occurred_at of the oldest.
pub(crate) async fn pending(
    db: &Database,
    subscriber: &str,
) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    // Ordered by seq (the index's order), not MIN(occurred_at): the same row for any producer
    // whose clock does not run backwards, and typed so both backends decode it.
    const COUNT: &str =
        "SELECT COUNT(*) FROM outbox_deliveries WHERE subscriber = $1 AND state = 'pending'";
    const OLDEST: &str = "SELECT e.occurred_at FROM outbox_deliveries d \
         JOIN outbox_events e ON e.seq = d.event_seq \
         WHERE d.subscriber = $1 AND d.state = 'pending' ORDER BY d.event_seq LIMIT 1";
    with_pool!(db, pool => {
        let (count,): (i64,) = sqlx::query_as(COUNT).bind(subscriber).fetch_one(pool).await?;
        let oldest: Option<(DateTime<Utc>,)> =
            sqlx::query_as(OLDEST).bind(subscriber).fetch_optional(pool).await?;
        Ok((count, oldest.map(|(at,)| at)))
    })
}

/// Events one retention statement deletes at most, so no statement holds its locks for long.
const PURGE_BATCH: i64 = 5000;

/// Deletes events older than `before` whose every delivery is done (their delivery rows go by
/// `ON DELETE CASCADE`; the runtime's SQLite pools enable foreign keys). Dead and pending pairs
/// keep their event; the aggregate version counters are never purged. Returns the events deleted.
pub async fn purge_delivered(db: &Database, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    const PURGE: &str = "DELETE FROM outbox_events WHERE seq IN ( \
         SELECT e.seq FROM outbox_events e WHERE e.occurred_at < $1 AND NOT EXISTS ( \
           SELECT 1 FROM outbox_deliveries d WHERE d.event_seq = e.seq AND d.state <> 'delivered') \
         ORDER BY e.seq LIMIT $2)";
    let mut total = 0;
    loop {
        let deleted = with_pool!(db, pool => sqlx::query(PURGE)
            .bind(before)
            .bind(PURGE_BATCH)
            .execute(pool)
            .await?
            .rows_affected());
        total += deleted;
        if deleted < PURGE_BATCH as u64 {
            return Ok(total);
        }
    }
}
