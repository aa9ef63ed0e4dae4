//! Idempotency keys: a client retries a change with the same key and gets the original result,
//! never a second change; the same key with a different request is refused.
//!
//! # Layout
//! - [`schema`]: the `idempotency_keys` table, for a service's own migrations.
//! - [`claim`]: claims a key inside the caller's transaction — [`Claim::Fresh`] (go on and make
//!   the change, in the same transaction), [`Claim::Repeat`] (roll back, answer with the
//!   resource the first request made) or [`Claim::Mismatch`] (the key was used for another
//!   request).
//! - [`lookup`]: reads what a key holds without claiming it (answer a repeat early).
//! - [`fingerprint`]: what a request is compared by.
//! - [`purge`] / [`retention_task`]: keys are kept [`RETENTION`] (24 hours), then purged; an
//!   expired key that is still there is claimed afresh.
//!
//! Concurrency comes from the primary key, not from locks in the process: on PostgreSQL a second
//! transaction claiming a key another has inserted but not committed waits at the insert for that
//! commit and then sees the row (a repeat) — or, if it rolled back, claims it; SQLite has one
//! writer at a time. So two replicas racing on one key make one change.
#![forbid(unsafe_code)]

use std::time::Duration;

use futures_util::future::BoxFuture;
use ironmesh_runtime::Database;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// How long a key is kept: a repeat within this returns the original.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often [`retention_task`] purges.
const PURGE_EVERY: Duration = Duration::from_secs(600);

pub mod schema {
    //! The table, as SQL a service includes in its own migrations at a version of its choosing:
    //! `5, "idempotency keys", (ironmesh_idempotency::schema::KEYS);`. Frozen once applied.

    use ironmesh_runtime::storage::BackendSql;

    /// `idempotency_keys (scope, key, fingerprint, resource, created_at_ms)`.
    pub const KEYS: BackendSql = BackendSql {
        sqlite: include_str!("../migrations/sqlite/keys.sql"),
        postgres: include_str!("../migrations/postgres/keys.sql"),
    };
}

/// What claiming a key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is now this request's: make the change in the same transaction.
    Fresh,
    /// The same request was made before with this key: `resource` is what it recorded.
    Repeat { resource: String },
    /// The key was used for a different request.
    Mismatch,
}

/// The fingerprint of a request: SHA-256 of its bytes (e.g. `prost::Message::encode_to_vec` of
/// the fields that must match), hex.
pub fn fingerprint(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A connection keys are claimed through: `&mut *tx` of a `sqlx::Transaction` on either backend.
/// Sealed: the SQL behind it is this crate's.
pub trait KeyConnection: private::Sealed + Send {}

impl KeyConnection for sqlx::SqliteConnection {}
impl KeyConnection for sqlx::PgConnection {}

mod private {
    use super::*;

    pub trait Sealed {
        fn claim_key<'a>(
            &'a mut self,
            row: &'a Row<'a>,
        ) -> BoxFuture<'a, Result<Claim, sqlx::Error>>;
    }

    pub struct Row<'a> {
        pub scope: &'a str,
        pub key: &'a str,
        pub fingerprint: &'a str,
        pub resource: &'a str,
        pub now_ms: i64,
        pub expired_before_ms: i64,
    }
}

// An expired row still present (not purged yet) is taken over by the upsert's WHERE; a live one
// makes the insert do nothing, and the select then reads what it holds.
const INSERT: &str = "INSERT INTO idempotency_keys (scope, key, fingerprint, resource, created_at_ms) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
     resource = excluded.resource, created_at_ms = excluded.created_at_ms \
     WHERE idempotency_keys.created_at_ms < $6";
const SELECT: &str =
    "SELECT fingerprint, resource FROM idempotency_keys WHERE scope = $1 AND key = $2";

macro_rules! impl_sealed {
    ($conn:ty) => {
        impl private::Sealed for $conn {
            fn claim_key<'a>(
                &'a mut self,
                row: &'a private::Row<'a>,
            ) -> BoxFuture<'a, Result<Claim, sqlx::Error>> {
                Box::pin(async move {
                    let inserted = sqlx::query(INSERT)
                        .bind(row.scope)
                        .bind(row.key)
                        .bind(row.fingerprint)
                        .bind(row.resource)
                        .bind(row.now_ms)
                        .bind(row.expired_before_ms)
                        .execute(&mut *self)
                        .await?
                        .rows_affected();
                    if inserted == 1 {
                        return Ok(Claim::Fresh);
                    }
                    let (fingerprint, resource): (String, String) = sqlx::query_as(SELECT)
                        .bind(row.scope)
                        .bind(row.key)
                        .fetch_one(&mut *self)
                        .await?;
                    Ok(if fingerprint == row.fingerprint {
                        Claim::Repeat { resource }
                    } else {
                        Claim::Mismatch
                    })
                })
            }
        }
    };
}

impl_sealed!(sqlx::SqliteConnection);
impl_sealed!(sqlx::PgConnection);

/// Claims `key` in `scope` (e.g. the customer) for the request whose [`fingerprint`] is
/// `fingerprint`, recording `resource` (e.g. the id of the order about to be made) — inside the
/// caller's transaction (`conn` is `&mut *tx`), so the key exists exactly when the change does.
pub async fn claim<C: KeyConnection>(
    conn: &mut C,
    scope: &str,
    key: &str,
    fingerprint: &str,
    resource: &str,
) -> Result<Claim, sqlx::Error> {
    let now_ms = now_ms();
    let row = private::Row {
        scope,
        key,
        fingerprint,
        resource,
        now_ms,
        expired_before_ms: now_ms.saturating_sub(millis(RETENTION)),
    };
    conn.claim_key(&row).await
}

/// What `key` in `scope` holds, read without claiming it: `None` when unused (or expired), else
/// [`Claim::Repeat`] or [`Claim::Mismatch`] against `fingerprint`. A service answers a repeat
/// with this before doing the work a fresh request needs (an upstream call, say); the [`claim`]
/// inside the change's transaction still decides a race between two fresh requests.
pub async fn lookup(
    db: &Database,
    scope: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Option<Claim>, sqlx::Error> {
    let sql = "SELECT fingerprint, resource FROM idempotency_keys \
         WHERE scope = $1 AND key = $2 AND created_at_ms >= $3";
    let live_since = now_ms().saturating_sub(millis(RETENTION));
    let row: Option<(String, String)> = ironmesh_runtime::with_pool!(db, pool => sqlx::query_as(sql)
        .bind(scope)
        .bind(key)
        .bind(live_since)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(|(stored, resource)| {
        if stored == fingerprint {
            Claim::Repeat { resource }
        } else {
            Claim::Mismatch
        }
    }))
}

/// Deletes keys older than `older_than`; returns how many.
pub async fn purge(db: &Database, older_than: Duration) -> Result<u64, sqlx::Error> {
    let cutoff = now_ms().saturating_sub(millis(older_than));
    let sql = "DELETE FROM idempotency_keys WHERE created_at_ms < $1";
    ironmesh_runtime::with_pool!(db, pool => sqlx::query(sql)
        .bind(cutoff)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
}

/// Purges keys past [`RETENTION`] at start and every ten minutes until `token` is cancelled —
/// for `GrpcService::background`.
pub async fn retention_task(db: Database, token: CancellationToken) {
    loop {
        if let Err(err) = purge(&db, RETENTION).await {
            tracing::warn!(
                error = %ironmesh_interceptors::grpc::error_chain(&err),
                "idempotency key retention failed"
            );
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(PURGE_EVERY) => {}
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    millis(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_by_content() {
        assert_eq!(fingerprint(b"a"), fingerprint(b"a"));
        assert_ne!(fingerprint(b"a"), fingerprint(b"b"));
        assert_eq!(fingerprint(b"").len(), 64);
    }
}
