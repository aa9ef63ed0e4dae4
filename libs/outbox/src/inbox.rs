//! The consumer side: [`Inbox::record`] notes an event id inside the transaction that applies
//! the event's effect, so a redelivered event finds its id and the effect happens once.
//!
//! ```ignore
//! let mut response = DeliverResponse::default();
//! for event in request.events {
//!     with_pool!(&db, pool => {
//!         let mut tx = pool.begin().await?;
//!         if inbox.record(&mut *tx, &event).await? {
//!             apply(&mut *tx, &event).await?;            // the effect, same transaction
//!             tx.commit().await?;
//!             response.accepted_ids.push(event.id);
//!         } else {
//!             response.duplicate_ids.push(event.id);     // rollback: nothing to do
//!         }
//!     });
//! }
//! ```

use chrono::{DateTime, Utc};
use ironmesh_proto::ironmesh::events::v1::Event;
use ironmesh_runtime::{Database, with_pool};

use crate::OutboxError;
use crate::metrics::Metrics;
use crate::write::OutboxConnection;

/// How long inbox ids are kept by default: longer than any redelivery can arrive.
pub const DEFAULT_INBOX_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

/// A consuming service's inbox.
#[derive(Clone, Debug)]
pub struct Inbox {
    consumer: String,
}

impl Inbox {
    /// The inbox of service `consumer` (a metrics label).
    pub fn new(consumer: &str) -> Self {
        Metrics::get();
        Self {
            consumer: consumer.to_owned(),
        }
    }

    /// Records `event`'s id in the caller's transaction (`conn` is `&mut *tx`). True when the id
    /// is new — apply the effect and commit; false when it was already recorded — answer it as a
    /// duplicate.
    pub async fn record<C: OutboxConnection>(
        &self,
        conn: &mut C,
        event: &Event,
    ) -> Result<bool, OutboxError> {
        self.record_id(conn, &event.id, &event.source).await
    }

    /// [`Self::record`] by id and producing source.
    pub async fn record_id<C: OutboxConnection>(
        &self,
        conn: &mut C,
        event_id: &str,
        source: &str,
    ) -> Result<bool, OutboxError> {
        if event_id.is_empty() {
            return Err(OutboxError::MissingField("id"));
        }
        let new = conn
            .insert_inbox(event_id, source, crate::event::now())
            .await
            .map_err(OutboxError::Database)?;
        if !new {
            Metrics::get()
                .inbox_duplicates
                .with_label_values(&[self.consumer.as_str(), source])
                .inc();
        }
        Ok(new)
    }
}

/// Deletes inbox ids received before `before`; returns how many.
pub async fn purge_inbox(db: &Database, before: DateTime<Utc>) -> Result<u64, OutboxError> {
    const PURGE: &str = "DELETE FROM inbox WHERE received_at < $1";
    let done = with_pool!(db, pool => sqlx::query(PURGE)
        .bind(before)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
    done.map_err(OutboxError::Database)
}

/// Purges inbox ids older than `retention` now and every `every` until `shutdown` is cancelled:
/// what a consuming service spawns beside its server.
pub async fn run_retention(
    db: Database,
    retention: std::time::Duration,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let before = crate::event::now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        match purge_inbox(&db, before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(ids = n, "purged inbox ids"),
            Err(err) => tracing::warn!(error = %err, "inbox retention failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
