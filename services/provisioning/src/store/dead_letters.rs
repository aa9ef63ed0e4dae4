//! Dead letters: listed newest first, replayed (the request QUEUED again with a fresh attempt
//! budget, in the transaction that marks the letter replayed), purged after retention; and the
//! inbound webhooks' receipts (replay protection).

use chrono::{DateTime, Utc};
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::storage::now;
use ironmesh_runtime::with_pool;
use sqlx::Row as _;

use super::{DEAD_LETTER_COLUMNS, REQUEST_COLUMNS, Result, Store, dead_letter_row, request_row};
use crate::domain::{DeadLetter, Request};

impl Store {
    pub async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>> {
        let sql =
            format!("SELECT {DEAD_LETTER_COLUMNS} FROM provisioning_dead_letters WHERE id = $1");
        with_pool!(&self.db, pool => {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(dead_letter_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Dead letters newest first (replayed ones too if asked), after the id `before`.
    pub async fn dead_letters(
        &self,
        include_replayed: bool,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeadLetter>> {
        let sql = format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM provisioning_dead_letters \
             WHERE ($1 = 1 OR replayed_at IS NULL) AND ($2 = '' OR id < $2) \
             ORDER BY id DESC LIMIT $3"
        );
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql)
                .bind(i32::from(include_replayed))
                .bind(before.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(dead_letter_row!(row));
            }
            Ok(out)
        })
    }

    /// Marks the unreplayed letter `id` replayed by `by` and queues its FAILED request again
    /// with no attempts, writing the event — one transaction. `None`: already replayed (or the
    /// request is no longer FAILED).
    pub async fn replay(
        &self,
        id: &str,
        by: &str,
        max_attempts: i32,
        event: impl FnOnce(&Request) -> NewEvent,
    ) -> Result<Option<(DeadLetter, Request)>> {
        let at = now();
        let mark = format!(
            "UPDATE provisioning_dead_letters SET replayed_at = $2, replayed_by = $3 \
             WHERE id = $1 AND replayed_at IS NULL RETURNING {DEAD_LETTER_COLUMNS}"
        );
        let requeue = format!(
            "UPDATE provisioning_requests SET state = 'QUEUED', attempts = 0, max_attempts = $2, \
             not_before_ms = 0, finished_at = NULL, updated_at = $3 \
             WHERE id = $1 AND state = 'FAILED' RETURNING {REQUEST_COLUMNS}"
        );
        let done = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(&mark).bind(id).bind(at).bind(by).fetch_optional(&mut *tx).await? else {
                return Ok(None);
            };
            let letter = dead_letter_row!(row);
            let Some(row) = sqlx::query(&requeue)
                .bind(&letter.request_id)
                .bind(max_attempts)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let request = request_row!(row);
            self.outbox.write(&mut *tx, event(&request)).await?;
            tx.commit().await?;
            (letter, request)
        });
        self.outbox.wake();
        Ok(Some(done))
    }

    /// Deletes dead letters finished (replayed, or final) before `before`, and the
    /// credentials of every FAILED request left without a dead letter to replay — one
    /// transaction; how many dead letters.
    pub async fn purge_dead_letters(&self, before: DateTime<Utc>) -> Result<u64> {
        let sql = "DELETE FROM provisioning_dead_letters WHERE COALESCE(replayed_at, \
             dead_lettered_at) < $1";
        let unreplayable = "SELECT DISTINCT c.request_id FROM provisioning_credentials c \
             JOIN provisioning_requests r ON r.id = c.request_id AND r.state = 'FAILED' \
             WHERE NOT EXISTS (SELECT 1 FROM provisioning_dead_letters d \
             WHERE d.request_id = r.id AND d.replayed_at IS NULL)";
        let done = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql).bind(before).execute(&mut *tx).await?.rows_affected();
            let ids: Vec<String> = sqlx::query_scalar(unreplayable).fetch_all(&mut *tx).await?;
            for id in &ids {
                super::credentials::forget!(&mut tx, id);
            }
            tx.commit().await?;
            done
        });
        Ok(done)
    }
}

impl Store {
    /// Records that `source` sent `webhook_id` (false: it was recorded before — a replay).
    pub async fn claim_receipt(&self, source: &str, webhook_id: &str) -> Result<bool> {
        let sql = "INSERT INTO provisioning_webhook_receipts (source, webhook_id, received_at) \
             VALUES ($1, $2, $3) ON CONFLICT (source, webhook_id) DO NOTHING";
        let at = now();
        let inserted = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(source)
            .bind(webhook_id)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(inserted == 1)
    }

    /// Forgets a receipt whose effect could not be applied, so the sender's retry is processed.
    pub async fn forget_receipt(&self, source: &str, webhook_id: &str) -> Result<()> {
        let sql = "DELETE FROM provisioning_webhook_receipts WHERE source = $1 AND webhook_id = $2";
        with_pool!(&self.db, pool => sqlx::query(sql).bind(source).bind(webhook_id).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Deletes receipts older than `before`; how many.
    pub async fn purge_receipts(&self, before: DateTime<Utc>) -> Result<u64> {
        let sql = "DELETE FROM provisioning_webhook_receipts WHERE received_at < $1";
        let done = with_pool!(&self.db, pool => sqlx::query(sql).bind(before).execute(pool).await?.rows_affected());
        Ok(done)
    }
}
