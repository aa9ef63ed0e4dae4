//! GDPR: deleting an account together with the event that says so.

use chrono::{DateTime, Utc};
use ironmesh_runtime::with_pool;

use super::{Result, Store};

/// An event to write to the outbox with the change it describes.
pub struct OutboxEvent<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub actor: &'a str,
    pub payload: &'a [u8],
    pub request_id: Option<&'a str>,
    pub traceparent: Option<&'a str>,
}

impl Store {
    /// Deletes the account and everything hanging off it (sessions, API keys, recovery codes
    /// cascade), and records `event` in the outbox — in one transaction, so the event exists
    /// exactly when the deletion happened.
    pub async fn delete_user(&self, id: &str, event: &OutboxEvent<'_>) -> Result<bool> {
        let delete = "DELETE FROM users WHERE id = $1";
        let outbox = "INSERT INTO outbox (id, event_type, source, aggregate_type, aggregate_id, occurred_at, actor, content_type, payload, request_id, traceparent) \
                      VALUES ($1, $2, 'auth', $3, $4, $5, $6, 'application/json', $7, $8, $9)";
        let deleted = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query(delete).bind(id).execute(&mut *tx).await?.rows_affected() == 1;
            if gone {
                sqlx::query(outbox)
                    .bind(event.id)
                    .bind(event.event_type)
                    .bind(event.aggregate_type)
                    .bind(event.aggregate_id)
                    .bind(event.occurred_at)
                    .bind(event.actor)
                    .bind(event.payload)
                    .bind(event.request_id)
                    .bind(event.traceparent)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            gone
        });
        Ok(deleted)
    }
}
