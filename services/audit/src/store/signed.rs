//! The signed side of the store: audit's signing keys (private keys only as sealed bytes),
//! checkpoints of the head, retention anchors, and retention's purge.
//!
//! **How purging stays safe.** The triggers refuse every DELETE of an entry above the highest
//! anchor. [`Store::purge_through`] inserts the (already signed) anchor and deletes up to it in
//! one transaction, so nothing is ever removed without its signed anchor committed beside it.
//! Two replicas purging at once need no lock: anchors are keyed by sequence (`ON CONFLICT DO
//! NOTHING`), an anchor is inserted only while its entry still holds the signed hash, and a
//! DELETE of rows another transaction already removed waits for it and then deletes nothing —
//! whichever anchor is highest, every entry below it was verified and signed over by someone.

use ironmesh_runtime::with_pool;

use super::{COLUMNS, RawRow, Result, Row, Store};
use crate::domain::{ALGORITHM, Checkpoint, Entry, from_nanos, to_nanos};

/// A signing key as stored: the private half sealed by ironmesh-sealing, never in the clear.
#[derive(Clone, Debug)]
pub struct StoredKey {
    pub generation: i64,
    pub key_id: String,
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

type KeyRow = (i64, String, Vec<u8>, Vec<u8>, i64);
type SignedRow = (i64, Vec<u8>, i64, String, Vec<u8>);

const KEY_COLUMNS: &str = "generation, key_id, public_key, sealed_private_key, created_at_ns";
const SIGNED_COLUMNS: &str = "sequence, hash, signed_at_ns, key_id, signature";

fn key(row: KeyRow) -> StoredKey {
    StoredKey {
        generation: row.0,
        key_id: row.1,
        public_key: row.2,
        sealed_private_key: row.3,
        created_at: from_nanos(row.4),
    }
}

fn signed(row: SignedRow, retention_anchor: bool) -> Checkpoint {
    Checkpoint {
        sequence: row.0,
        hash: row.1,
        signed_at: from_nanos(row.2),
        key_id: row.3,
        algorithm: ALGORITHM.to_owned(),
        signature: row.4,
        retention_anchor,
    }
}

impl Store {
    /// The newest signing key, if one was made.
    pub async fn newest_signing_key(&self) -> Result<Option<StoredKey>> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY generation DESC LIMIT 1");
        let row: Option<KeyRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&sql).fetch_optional(pool).await?
        });
        Ok(row.map(key))
    }

    /// Stores `key` unless its generation exists (another replica made it first); whether it
    /// was stored.
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<bool> {
        const INSERT: &str = "INSERT INTO signing_keys (generation, key_id, public_key, \
                              sealed_private_key, created_at_ns) VALUES ($1, $2, $3, $4, $5) \
                              ON CONFLICT (generation) DO NOTHING";
        let done = with_pool!(&self.db, pool => {
            sqlx::query(INSERT)
                .bind(key.generation)
                .bind(&key.key_id)
                .bind(&key.public_key)
                .bind(&key.sealed_private_key)
                .bind(to_nanos(key.created_at).unwrap_or_default())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY generation");
        let rows: Vec<KeyRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(key).collect())
    }

    /// The committed head: its sequence and hash (0 and the zero hash for an empty log).
    pub async fn head_hash(&self) -> Result<(i64, Vec<u8>)> {
        let head = with_pool!(&self.db, pool => {
            sqlx::query_as("SELECT sequence, hash FROM chain_head WHERE id = 1")
                .fetch_one(pool)
                .await?
        });
        Ok(head)
    }

    /// The checkpoint with the highest sequence.
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        self.latest_signed("checkpoints", false).await
    }

    /// The highest retention anchor: where the retained chain starts.
    pub async fn latest_anchor(&self) -> Result<Option<Checkpoint>> {
        self.latest_signed("anchors", true).await
    }

    async fn latest_signed(&self, table: &str, anchor: bool) -> Result<Option<Checkpoint>> {
        let sql = format!("SELECT {SIGNED_COLUMNS} FROM {table} ORDER BY sequence DESC LIMIT 1");
        let row: Option<SignedRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&sql).fetch_optional(pool).await?
        });
        Ok(row.map(|r| signed(r, anchor)))
    }

    /// Stores `checkpoint` unless one exists at its sequence (another replica signed the same
    /// head); returns the stored one.
    pub async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Checkpoint> {
        const INSERT: &str = "INSERT INTO checkpoints (sequence, hash, signed_at_ns, key_id, \
                              signature) VALUES ($1, $2, $3, $4, $5) \
                              ON CONFLICT (sequence) DO NOTHING";
        let select = format!("SELECT {SIGNED_COLUMNS} FROM checkpoints WHERE sequence = $1");
        let row: SignedRow = with_pool!(&self.db, pool => {
            sqlx::query(INSERT)
                .bind(checkpoint.sequence)
                .bind(&checkpoint.hash)
                .bind(to_nanos(checkpoint.signed_at).unwrap_or_default())
                .bind(&checkpoint.key_id)
                .bind(&checkpoint.signature)
                .execute(pool)
                .await?;
            sqlx::query_as(&select).bind(checkpoint.sequence).fetch_one(pool).await?
        });
        Ok(signed(row, false))
    }

    /// Up to `limit` entries after `after`, ascending (retention's look at what it may purge).
    pub async fn entries_after(&self, after: i64, limit: i64) -> Result<Vec<Entry>> {
        let sql =
            format!("SELECT {COLUMNS} FROM entries WHERE sequence > $1 ORDER BY sequence LIMIT $2");
        let rows: Vec<RawRow> = with_pool!(&self.db, pool => {
            sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|r| Row::from(r).into_entry())
            .collect()
    }

    /// Records `anchor` (signed over the entry at its sequence) and deletes every entry up to it
    /// and every checkpoint below it, in one transaction (see the module docs). Returns how many
    /// entries this call removed.
    pub async fn purge_through(&self, anchor: &Checkpoint) -> Result<u64> {
        // Inserted only while the entry still holds the signed hash: if another replica purged
        // it meanwhile, its own anchor (at least as high) already covers the DELETEs below.
        const ANCHOR: &str = "INSERT INTO anchors (sequence, hash, signed_at_ns, key_id, signature) \
                              SELECT $1, $2, $3, $4, $5 WHERE EXISTS \
                              (SELECT 1 FROM entries WHERE sequence = $1 AND hash = $2) \
                              ON CONFLICT (sequence) DO NOTHING";
        const ENTRIES: &str = "DELETE FROM entries WHERE sequence <= $1";
        const CHECKPOINTS: &str = "DELETE FROM checkpoints WHERE sequence < $1";
        let removed = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(ANCHOR)
                .bind(anchor.sequence)
                .bind(&anchor.hash)
                .bind(to_nanos(anchor.signed_at).unwrap_or_default())
                .bind(&anchor.key_id)
                .bind(&anchor.signature)
                .execute(&mut *tx)
                .await?;
            let removed = sqlx::query(ENTRIES)
                .bind(anchor.sequence)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(CHECKPOINTS)
                .bind(anchor.sequence)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            removed
        });
        Ok(removed)
    }
}
