//! TOTP: the sealed secret, enrollment, used time steps, recovery codes.

use chrono::{DateTime, Utc};
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::with_pool;

use super::{Result, Store};
use crate::domain::{Sealed, TokenHash, TotpState};

impl Store {
    /// The user's TOTP secret and enrollment state, if a secret was ever set.
    pub async fn totp(&self, user_id: &str) -> Result<Option<TotpState>> {
        let sql = "SELECT totp_secret_enc, totp_enabled, totp_pending_at FROM users WHERE id = $1 AND totp_secret_enc IS NOT NULL";
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, (Vec<u8>, bool, Option<DateTime<Utc>>)>(sql)
            .bind(user_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(sealed, enabled, pending_at)| TotpState {
            sealed_secret: Sealed::new(sealed),
            enabled,
            pending_at,
        }))
    }

    /// Starts (or restarts) enrollment with a new sealed secret — unless TOTP is already on.
    pub async fn start_totp(
        &self,
        user_id: &str,
        sealed: &Sealed,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = "UPDATE users SET totp_secret_enc = $1, totp_pending_at = $2, totp_last_step = NULL WHERE id = $3 AND totp_enabled = FALSE";
        let changed = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(sealed.expose())
            .bind(now)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Replaces the sealed TOTP secret with `new` (the same secret sealed under the current key),
    /// unless it changed meanwhile (a concurrent re-enrollment wins).
    pub async fn reseal_totp(&self, user_id: &str, old: &Sealed, new: &Sealed) -> Result<bool> {
        let sql = "UPDATE users SET totp_secret_enc = $1 WHERE id = $2 AND totp_secret_enc = $3";
        let changed = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(new.expose())
            .bind(user_id)
            .bind(old.expose())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Turns TOTP on with fresh recovery codes (hashed), replacing any old ones, with `event`,
    /// atomically. False (and no event) when it was on already.
    pub async fn enable_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_hashes: &[TokenHash],
        event: NewEvent,
    ) -> Result<bool> {
        let enable = "UPDATE users SET totp_enabled = TRUE, totp_pending_at = NULL, totp_last_step = $1 WHERE id = $2 AND totp_enabled = FALSE";
        let clear = "DELETE FROM recovery_codes WHERE user_id = $1";
        let insert = "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)";
        let enabled = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(enable).bind(step).bind(user_id).execute(&mut *tx).await?.rows_affected();
            if changed == 1 {
                sqlx::query(clear).bind(user_id).execute(&mut *tx).await?;
                for hash in recovery_hashes {
                    sqlx::query(insert).bind(user_id).bind(hash.expose()).execute(&mut *tx).await?;
                }
                self.write_event(&mut *tx, event).await?;
            }
            tx.commit().await?;
            changed == 1
        });
        if enabled {
            self.committed();
        }
        Ok(enabled)
    }

    /// Records `step` as used if it is later than the last used one (a code works once, even
    /// across replicas).
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let sql = "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)";
        let changed = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(step)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Spends a recovery code; false if it is unknown or already used.
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL";
        let changed = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(now)
            .bind(user_id)
            .bind(hash.expose())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }
}
