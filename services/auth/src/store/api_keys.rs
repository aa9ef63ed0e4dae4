//! API keys: creation, listing, lookup by prefix, revocation, last use.

use chrono::{DateTime, Utc};
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::with_pool;

use super::{Result, Store};
use crate::domain::{ApiKey, TokenHash};

/// An api_keys row as selected by [`COLUMNS`].
type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

const COLUMNS: &str = "id, user_id, prefix, secret_hash, name, scopes, created_at, expires_at, last_used_at, revoked_at";

fn api_key(row: Row) -> ApiKey {
    ApiKey {
        id: row.0,
        user_id: row.1,
        prefix: row.2,
        secret_hash: TokenHash::new(row.3),
        name: row.4,
        // Stored space-separated: scopes never contain spaces.
        scopes: row
            .5
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: row.6,
        expires_at: row.7,
        last_used_at: row.8,
        revoked_at: row.9,
    }
}

impl Store {
    /// Stores a new key with `event`.
    pub async fn insert_api_key(&self, key: &ApiKey, event: NewEvent) -> Result<()> {
        let sql = "INSERT INTO api_keys (id, user_id, prefix, secret_hash, name, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql)
                .bind(&key.id)
                .bind(&key.user_id)
                .bind(&key.prefix)
                .bind(key.secret_hash.expose())
                .bind(&key.name)
                .bind(key.scopes.join(" "))
                .bind(key.created_at)
                .bind(key.expires_at)
                .execute(&mut *tx)
                .await?;
            self.write_event(&mut *tx, event).await?;
            tx.commit().await?;
        });
        self.committed();
        Ok(())
    }

    /// The user's keys, newest first.
    pub async fn api_keys(&self, user_id: &str) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
        );
        let rows = with_pool!(&self.db, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(api_key).collect())
    }

    pub async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = $1");
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(prefix)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(api_key))
    }

    /// Revokes one of the user's keys (idempotent: revoking again changes nothing and writes no
    /// second event); `None` when the user has no such key. `event` is written when this call
    /// revoked it.
    pub async fn revoke_api_key(
        &self,
        user_id: &str,
        id: &str,
        now: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<Option<ApiKey>> {
        let revoke = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL";
        let select = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1 AND user_id = $2");
        let (row, revoked) = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let revoked = sqlx::query(revoke)
                .bind(now)
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected() == 1;
            if revoked {
                self.write_event(&mut *tx, event).await?;
            }
            let row = sqlx::query_as::<_, Row>(&select)
                .bind(id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            (row, revoked)
        });
        if revoked {
            self.committed();
        }
        Ok(row.map(api_key))
    }

    /// Records use, at most once a minute per key (no write per call).
    pub async fn touch_api_key(&self, id: &str, now: DateTime<Utc>) -> Result<()> {
        let sql = "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(now)
            .bind(id)
            .bind(now - chrono::Duration::minutes(1))
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }
}
