//! Signing keys: the newest one, atomic rotation, and the set not yet expired.

use chrono::{DateTime, Utc};
use ironmesh_runtime::with_pool;

use super::{Result, Store};
use crate::domain::{Sealed, SigningKey};

/// Serializes rotations across replicas on PostgreSQL (a transaction-scoped advisory lock; the
/// number is this table's, arbitrary but fixed).
const ROTATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7102025001)";

impl Store {
    /// The key made last (the one the next rotation retires).
    pub async fn newest_signing_key(&self) -> Result<Option<SigningKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"
        );
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, KeyRow>(&sql)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(signing_key))
    }

    /// Every key not expired at `now` (published, signing or about to), by when it signs from.
    pub async fn signing_keys(&self, now: DateTime<Utc>) -> Result<Vec<SigningKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM signing_keys WHERE expires_at IS NULL OR expires_at > $1 ORDER BY COALESCE(signs_from, created_at), created_at"
        );
        let rows = with_pool!(&self.db, pool => sqlx::query_as::<_, KeyRow>(&sql)
            .bind(now)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(signing_key).collect())
    }

    /// Stores `new` and retires the newest key as of `new.signs_from` (published until
    /// `retired_until`), with the `auth.signing_key.rotated` event, atomically — if the newest
    /// key is still `expected` (`None`: there was none). Otherwise another task or replica
    /// rotated first: nothing changes and the answer is false, so concurrent rotations make one
    /// new key, not several.
    pub async fn rotate_signing_keys(
        &self,
        new: &SigningKey,
        expected: Option<&str>,
        retired_until: DateTime<Utc>,
    ) -> Result<bool> {
        // One statement retires and reports what was active; on SQLite it holds the write lock
        // from its start, on PostgreSQL a transaction-scoped advisory lock serializes rotations
        // first (with no key yet there is no row to lock).
        let retire = "UPDATE signing_keys SET retired_at = $1, expires_at = $2 WHERE retired_at IS NULL RETURNING kid, created_at";
        let insert = "INSERT INTO signing_keys (kid, public_key, private_key_enc, created_at, signs_from) VALUES ($1, $2, $3, $4, $5)";
        let rotated = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            if matches!(self.db, ironmesh_runtime::Database::Postgres(_)) {
                sqlx::query(ROTATION_LOCK).execute(&mut *tx).await?;
            }
            let retired: Vec<(String, DateTime<Utc>)> = sqlx::query_as(retire)
                .bind(new.signs_from)
                .bind(retired_until)
                .fetch_all(&mut *tx)
                .await?;
            let newest = retired.iter().max_by_key(|(kid, at)| (*at, kid.clone())).map(|(kid, _)| kid.as_str());
            if newest != expected {
                false
            } else {
                sqlx::query(insert)
                    .bind(&new.kid)
                    .bind(&new.public_key)
                    .bind(new.sealed_private_key.expose())
                    .bind(new.created_at)
                    .bind(new.signs_from)
                    .execute(&mut *tx)
                    .await?;
                self.write_event(&mut *tx, crate::events::signing_key_rotated(&new.kid)).await?;
                tx.commit().await?;
                true
            }
        });
        if rotated {
            self.committed();
        }
        Ok(rotated)
    }
}

/// What [`signing_key`] reads, in this order.
const COLUMNS: &str =
    "kid, public_key, private_key_enc, created_at, COALESCE(signs_from, created_at), expires_at";

type KeyRow = (
    String,
    Vec<u8>,
    Vec<u8>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

fn signing_key(
    (kid, public_key, sealed, created_at, signs_from, expires_at): KeyRow,
) -> SigningKey {
    SigningKey {
        kid,
        public_key,
        sealed_private_key: Sealed::new(sealed),
        created_at,
        signs_from,
        expires_at,
    }
}
