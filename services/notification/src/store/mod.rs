//! Storage for notification: the schema per backend ([`MIGRATIONS`]) and every query, written
//! once in SQL both SQLite and PostgreSQL accept, run through `with_pool!` — except the
//! delivery claim, which locks with `FOR UPDATE SKIP LOCKED` on PostgreSQL.
//!
//! - `notifications`: a notification and its delivery rows are written in ONE transaction with
//!   what makes it happen once — the `Send` idempotency key, or the event's inbox row — and the
//!   check that the recipient was not erased ([`Guard`], [`Created`]).
//! - `endpoints`: webhook endpoints with their signing secrets sealed (ironmesh-sealing).
//! - `deliveries`: the delivery engine's queue — claim due rows with a lease (several replicas
//!   never attempt one row at once), finish an attempt fenced by that lease, list, redeliver.
//! - `preferences`: one row per user.
//! - [`Store::erase`]: everything of a user, in one transaction (auth.user.deleted).

mod deliveries;
mod endpoints;
mod notifications;
mod preferences;

use chrono::{DateTime, Utc};
use ironmesh_runtime::storage::{Database, MigrationSet};
use ironmesh_runtime::with_pool;

use crate::preferences::Channel;

pub use deliveries::{Attempted, DeliveryFilter};
pub use endpoints::{EndpointSecrets, SealedSecrets};
pub use notifications::{Created, Guard, NotificationFilter};

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
    2, "channel preferences", "0002_preferences.sql";
    3, "notifications, webhook endpoints and deliveries", "0003_notifications.sql";
    4, "event inbox", (ironmesh_outbox::schema::INBOX);
    5, "idempotency keys", (ironmesh_idempotency::schema::KEYS);
];

/// A query failed, or a stored row does not hold what it should; callers see an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("recording an event in the inbox failed")]
    Inbox(#[from] ironmesh_outbox::OutboxError),
    #[error("a stored row does not hold valid {0}")]
    Corrupt(&'static str),
}

type Result<T> = std::result::Result<T, StoreError>;

/// Notification's tables.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Erases every trace of `user_id` here — notifications, deliveries, endpoints, preferences
    /// — and remembers the id (only the id) so a late event about the user makes nothing. One
    /// transaction; on PostgreSQL it takes the user's lock that [`Guard`]ed creation takes too,
    /// so a notification being written concurrently is either erased here or refused there.
    ///
    /// With `event` (the inbox, the event id and its source) the event is recorded in the same
    /// transaction; false when it was recorded before (nothing done).
    pub async fn erase(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
        event: Option<(&ironmesh_outbox::Inbox, &str, &str)>,
    ) -> Result<bool> {
        let statements = [
            "DELETE FROM deliveries WHERE recipient_id = $1",
            "DELETE FROM notifications WHERE recipient_id = $1",
            "DELETE FROM webhook_endpoints WHERE owner_id = $1",
            "DELETE FROM notification_preferences WHERE user_id = $1",
        ];
        let tombstone = "INSERT INTO erased_users (user_id, erased_at) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO NOTHING";
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            notifications::lock_user(&mut *tx, user_id).await?;
            if let Some((inbox, id, source)) = event
                && !inbox.record_id(&mut *tx, id, source).await?
            {
                return Ok(false);
            }
            for sql in statements {
                sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
            }
            sqlx::query(tombstone).bind(user_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }
}

fn name(channel: Channel) -> &'static str {
    match channel {
        Channel::InApp => "IN_APP",
        Channel::Email => "EMAIL",
        Channel::Webhook => "WEBHOOK",
    }
}

pub(crate) fn encode_channels(channels: &[Channel]) -> String {
    channels
        .iter()
        .map(|c| name(*c))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn decode_channels(text: &str) -> Result<Vec<Channel>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "IN_APP" => Ok(Channel::InApp),
            "EMAIL" => Ok(Channel::Email),
            "WEBHOOK" => Ok(Channel::Webhook),
            _ => Err(StoreError::Corrupt("channels")),
        })
        .collect()
}
