//! The credential queries: sealed credential rows (one per request and kind), the
//! key-encryption keys that wrap their data keys, the rewrap of rows still under an older key,
//! and the report of how many rows each key wraps. What a row holds is opaque here: sealing
//! and opening are `crate::credentials`' (on `ironmesh-sealing`); nothing in this file ever
//! sees plaintext. The deletions when a request can no longer run are written inside the
//! transactions that end it (`jobs`, `requests`, [`Store::purge_dead_letters`]) through
//! [`forget`].

use chrono::{DateTime, Utc};
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::storage::now;
use ironmesh_runtime::with_pool;
use sqlx::Row as _;

use super::{Result, Store, StoreError};
use crate::domain::LeaseLoss;

/// One stored credential set: metadata in the clear, the material sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub id: String,
    pub request_id: String,
    pub kind: String,
    /// The material's entry names, sorted (the values are only in `ciphertext`).
    pub field_names: Vec<String>,
    pub key_id: String,
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("id", &self.id)
            .field("request_id", &self.request_id)
            .field("kind", &self.kind)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A key-encryption key as stored: its bytes sealed by the master keyring.
#[derive(Clone)]
pub struct StoredKey {
    pub seq: i64,
    pub key_id: String,
    pub sealed_key: Vec<u8>,
}

/// One line of the rotation report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUse {
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    /// Credential rows whose data key this key wraps.
    pub rows: i64,
}

const CREDENTIAL_COLUMNS: &str =
    "id, request_id, kind, field_names, key_id, wrapped_key, ciphertext, created_at";

macro_rules! credential_row {
    ($row:expr) => {{
        let row = $row;
        let names: String = row.try_get("field_names")?;
        StoredCredential {
            id: row.try_get("id")?,
            request_id: row.try_get("request_id")?,
            kind: row.try_get("kind")?,
            field_names: serde_json::from_str(&names)
                .map_err(|_| StoreError::Corrupt("credential field names"))?,
            key_id: row.try_get("key_id")?,
            wrapped_key: row.try_get("wrapped_key")?,
            ciphertext: row.try_get("ciphertext")?,
            created_at: row.try_get("created_at")?,
        }
    }};
}

/// Deletes the credentials of request `$id` inside the transaction `$tx` and clears its
/// `credential_kinds`: it can no longer run.
macro_rules! forget {
    ($tx:expr, $id:expr) => {{
        let (tx, id): (_, &str) = ($tx, $id);
        sqlx::query("DELETE FROM provisioning_credentials WHERE request_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE provisioning_requests SET credential_kinds = '' WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }};
}

pub(crate) use forget;

/// Whether [`Store::put_credential`] stored the set.
#[derive(Debug)]
pub enum Put {
    Stored,
    /// The request is gone or terminal (read again to say which).
    NotRunnable,
}

impl Store {
    /// Stores `credential` (replacing the same request's set of that kind) if its request is
    /// still QUEUED or RUNNING, and updates the request's kinds and writes `event` — one
    /// transaction, which first locks the request row (as every transaction here does).
    pub async fn put_credential(
        &self,
        credential: &StoredCredential,
        event: NewEvent,
    ) -> Result<Put> {
        let lock = "UPDATE provisioning_requests SET credential_kinds = credential_kinds \
             WHERE id = $1 AND state IN ('QUEUED', 'RUNNING')";
        let upsert = format!(
            "INSERT INTO provisioning_credentials ({CREDENTIAL_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (request_id, kind) DO UPDATE SET id = excluded.id, \
             field_names = excluded.field_names, key_id = excluded.key_id, \
             wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext, \
             created_at = excluded.created_at"
        );
        let names = serde_json::to_string(&credential.field_names)
            .map_err(|_| StoreError::Corrupt("credential field names"))?;
        let c = credential;
        let put = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let locked = sqlx::query(lock).bind(&c.request_id).execute(&mut *tx).await?;
            if locked.rows_affected() == 0 {
                return Ok(Put::NotRunnable);
            }
            sqlx::query(&upsert)
                .bind(&c.id)
                .bind(&c.request_id)
                .bind(&c.kind)
                .bind(&names)
                .bind(&c.key_id)
                .bind(&c.wrapped_key)
                .bind(&c.ciphertext)
                .bind(c.created_at)
                .execute(&mut *tx)
                .await?;
            let kinds: Vec<String> = sqlx::query_scalar(
                "SELECT kind FROM provisioning_credentials WHERE request_id = $1 ORDER BY kind",
            )
            .bind(&c.request_id)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("UPDATE provisioning_requests SET credential_kinds = $2 WHERE id = $1")
                .bind(&c.request_id)
                .bind(kinds.join(","))
                .execute(&mut *tx)
                .await?;
            self.outbox.write(&mut *tx, event).await?;
            tx.commit().await?;
            Put::Stored
        });
        self.outbox.wake();
        Ok(put)
    }

    /// Every credential set of `request_id`, by kind.
    pub async fn credentials(&self, request_id: &str) -> Result<Vec<StoredCredential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM provisioning_credentials WHERE request_id = $1 \
             ORDER BY kind"
        );
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql).bind(request_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(credential_row!(row));
            }
            Ok(out)
        })
    }

    /// The request `(job_id, token)` holds a live lease on at `now_ms`, or why it holds none.
    pub async fn leased_request(
        &self,
        job_id: &str,
        token: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<String, LeaseLoss>> {
        let sql = "SELECT r.id FROM provisioning_jobs j JOIN provisioning_requests r \
             ON r.id = j.request_id AND r.job_id = j.id AND r.state = 'RUNNING' \
             WHERE j.id = $1 AND j.lease_token = $2 AND j.outcome IS NULL \
             AND j.lease_expires_ms > $3";
        let id: Option<String> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(sql)
                .bind(job_id)
                .bind(token)
                .bind(now_ms)
                .fetch_optional(pool)
                .await?
        });
        match id {
            Some(id) => Ok(Ok(id)),
            None => Ok(Err(self.loss(job_id, token).await?)),
        }
    }

    /// The key-encryption keys, newest first.
    pub async fn credential_keys(&self) -> Result<Vec<StoredKey>> {
        let sql = "SELECT seq, key_id, sealed_key FROM provisioning_credential_keys \
             ORDER BY seq DESC";
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(StoredKey {
                    seq: row.try_get("seq")?,
                    key_id: row.try_get("key_id")?,
                    sealed_key: row.try_get("sealed_key")?,
                });
            }
            Ok(out)
        })
    }

    /// Adds `key` unless a key with its `seq` exists (another process rotated first): whether
    /// it was added.
    pub async fn add_credential_key(&self, key: &StoredKey) -> Result<bool> {
        let sql = "INSERT INTO provisioning_credential_keys (seq, key_id, sealed_key, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
        let added = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(key.seq)
            .bind(&key.key_id)
            .bind(&key.sealed_key)
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(added == 1)
    }

    /// Up to `limit` credential rows after id `after` (in id order) whose data key is wrapped
    /// by another key than `current`.
    pub async fn credentials_to_rewrap(
        &self,
        current: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StoredCredential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM provisioning_credentials \
             WHERE key_id <> $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql)
                .bind(current)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(credential_row!(row));
            }
            Ok(out)
        })
    }

    /// Replaces the wrapped data key of `old` (if the row still holds exactly it: a set
    /// replaced or deleted meanwhile is left alone) with `wrapped_key` under `key_id`.
    pub async fn rewrap_credential(
        &self,
        old: &StoredCredential,
        key_id: &str,
        wrapped_key: &[u8],
    ) -> Result<bool> {
        let sql = "UPDATE provisioning_credentials SET key_id = $3, wrapped_key = $4 \
             WHERE id = $1 AND key_id = $2";
        let done = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(&old.id)
            .bind(&old.key_id)
            .bind(key_id)
            .bind(wrapped_key)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(done == 1)
    }

    /// Every key-encryption key, oldest first, with the rows it wraps.
    pub async fn key_report(&self) -> Result<Vec<KeyUse>> {
        let sql = "SELECT k.key_id, k.created_at, COUNT(c.id) AS n \
             FROM provisioning_credential_keys k \
             LEFT JOIN provisioning_credentials c ON c.key_id = k.key_id \
             GROUP BY k.seq, k.key_id, k.created_at ORDER BY k.seq";
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(KeyUse {
                    key_id: row.try_get("key_id")?,
                    created_at: row.try_get("created_at")?,
                    rows: row.try_get("n")?,
                });
            }
            Ok(out)
        })
    }
}
