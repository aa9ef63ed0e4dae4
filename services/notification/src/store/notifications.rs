//! Notifications: created with their deliveries in one transaction under a [`Guard`]; read,
//! listed newest first, marked read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ironmesh_idempotency::Claim;
use ironmesh_outbox::Inbox;
use ironmesh_runtime::with_pool;

use super::{Result, Store, StoreError, decode_channels, encode_channels};
use crate::domain::{Delivery, Notification};

/// What makes a creation happen once.
#[derive(Clone, Copy)]
pub enum Guard<'a> {
    /// A `Send` with an idempotency key: claimed in the transaction, recording the id.
    Key {
        scope: &'a str,
        key: &'a str,
        fingerprint: &'a str,
    },
    /// A `Send` without a key.
    Nothing,
    /// An event: its id recorded in the inbox in the transaction.
    Event {
        inbox: &'a Inbox,
        event_id: &'a str,
        source: &'a str,
    },
}

/// How a creation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// Written, with its deliveries.
    New,
    /// The key was used by the same request before: the notification it made.
    Repeat(String),
    /// The key was used by a different request.
    Mismatch,
    /// The event was recorded before: nothing to do.
    Duplicate,
    /// The recipient's data was erased: nothing written (an event is still recorded as seen).
    Erased,
}

/// Which of a recipient's notifications a list returns.
#[derive(Clone, Debug, Default)]
pub struct NotificationFilter {
    pub unread_only: bool,
    /// Exact type; empty = any.
    pub event_type: String,
}

/// A per-user lock for the length of a transaction, between creation and [`Store::erase`]:
/// an advisory lock on PostgreSQL; on SQLite (one writer at a time) a write that makes the
/// transaction the writer at once, so its reads are not overtaken by an erase.
pub(super) trait UserLock {
    async fn lock_user(&mut self, user_id: &str) -> std::result::Result<(), sqlx::Error>;
}

impl UserLock for sqlx::SqliteConnection {
    async fn lock_user(&mut self, user_id: &str) -> std::result::Result<(), sqlx::Error> {
        sqlx::query("UPDATE erased_users SET user_id = user_id WHERE user_id = $1")
            .bind(user_id)
            .execute(self)
            .await
            .map(|_| ())
    }
}

impl UserLock for sqlx::PgConnection {
    async fn lock_user(&mut self, user_id: &str) -> std::result::Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(user_id)
            .execute(self)
            .await
            .map(|_| ())
    }
}

pub(super) async fn lock_user<C: UserLock>(
    conn: &mut C,
    user_id: &str,
) -> std::result::Result<(), sqlx::Error> {
    conn.lock_user(user_id).await
}

pub(super) const DELIVERY_INSERT: &str = "INSERT INTO deliveries (id, notification_id, \
     recipient_id, channel, endpoint_id, event_type, state, attempts, last_status_code, \
     last_error, next_attempt_ms, lease_until_ms, delivered_at, created_at, created_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, 'PENDING', 0, 0, '', $7, 0, NULL, $8, $9)";

const COLUMNS: &str = "id, recipient_id, event_type, subject, body, data, channels, \
     source_event_id, read_at, created_at";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

fn notification(row: Row) -> Result<Notification> {
    let (
        id,
        recipient_id,
        event_type,
        subject,
        body,
        data,
        channels,
        source_event_id,
        read_at,
        created_at,
    ) = row;
    let data: BTreeMap<String, String> =
        serde_json::from_str(&data).map_err(|_| StoreError::Corrupt("notification data"))?;
    Ok(Notification {
        id,
        recipient_id,
        event_type,
        subject,
        body,
        data,
        channels: decode_channels(&channels)?,
        source_event_id,
        read_at,
        created_at,
    })
}

impl Store {
    /// Writes `n` and its `deliveries` under `guard`, unless the recipient was erased.
    pub async fn create(
        &self,
        guard: Guard<'_>,
        n: &Notification,
        deliveries: &[Delivery],
    ) -> Result<Created> {
        let insert = "INSERT INTO notifications (id, recipient_id, event_type, subject, body, \
             data, channels, source_event_id, read_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)";
        let erased = "SELECT CAST(1 AS BIGINT) FROM erased_users WHERE user_id = $1";
        let data = serde_json::to_string(&n.data).map_err(|_| StoreError::Corrupt("data"))?;
        let created = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            lock_user(&mut *tx, &n.recipient_id).await?;
            match guard {
                Guard::Key { scope, key, fingerprint } => {
                    match ironmesh_idempotency::claim(&mut *tx, scope, key, fingerprint, &n.id).await? {
                        Claim::Fresh => {}
                        Claim::Repeat { resource } => return Ok(Created::Repeat(resource)),
                        Claim::Mismatch => return Ok(Created::Mismatch),
                    }
                }
                Guard::Nothing => {}
                Guard::Event { inbox, event_id, source } => {
                    if !inbox.record_id(&mut *tx, event_id, source).await? {
                        return Ok(Created::Duplicate);
                    }
                }
            }
            let gone: Option<(i64,)> = sqlx::query_as(erased)
                .bind(&n.recipient_id)
                .fetch_optional(&mut *tx)
                .await?;
            if gone.is_some() {
                // Keep the inbox row (the event is handled: by making nothing); a key claim is
                // rolled back with the rest.
                if matches!(guard, Guard::Event { .. }) {
                    tx.commit().await?;
                }
                return Ok(Created::Erased);
            }
            sqlx::query(insert)
                .bind(&n.id)
                .bind(&n.recipient_id)
                .bind(&n.event_type)
                .bind(&n.subject)
                .bind(&n.body)
                .bind(&data)
                .bind(encode_channels(&n.channels))
                .bind(&n.source_event_id)
                .bind(n.created_at)
                .execute(&mut *tx)
                .await?;
            for d in deliveries {
                sqlx::query(DELIVERY_INSERT)
                    .bind(&d.id)
                    .bind(&d.notification_id)
                    .bind(&d.recipient_id)
                    .bind(super::deliveries::channel_name(d.channel))
                    .bind(&d.endpoint_id)
                    .bind(&d.event_type)
                    .bind(d.next_attempt_ms)
                    .bind(d.created_at)
                    .bind(d.created_at.timestamp_millis())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Created::New
        });
        Ok(created)
    }

    /// One notification by id.
    pub async fn notification(&self, id: &str) -> Result<Option<Notification>> {
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = $1");
        let row: Option<Row> = with_pool!(&self.db, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        row.map(notification).transpose()
    }

    /// `recipient`'s notifications matching `filter`, newest first, older than `before` (an id)
    /// when set; at most `limit`.
    pub async fn notifications(
        &self,
        recipient: &str,
        filter: &NotificationFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE recipient_id = $1 \
             AND ($2 = '' OR id < $2) AND ($3 = 0 OR read_at IS NULL) \
             AND ($4 = '' OR event_type = $4) ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<Row> = with_pool!(&self.db, pool => sqlx::query_as(&sql)
            .bind(recipient)
            .bind(before.unwrap_or(""))
            .bind(i64::from(filter.unread_only))
            .bind(&filter.event_type)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(notification).collect()
    }

    /// How many of `recipient`'s notifications are unread.
    pub async fn unread_count(&self, recipient: &str) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM notifications WHERE recipient_id = $1 AND read_at IS NULL";
        let (n,): (i64,) = with_pool!(&self.db, pool => sqlx::query_as(sql)
            .bind(recipient)
            .fetch_one(pool)
            .await)?;
        Ok(n)
    }

    /// Marks `id` read at `at` unless it already was (the first `read_at` stays).
    pub async fn mark_read(&self, id: &str, at: DateTime<Utc>) -> Result<Option<Notification>> {
        let sql = "UPDATE notifications SET read_at = $2 WHERE id = $1 AND read_at IS NULL";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(id)
            .bind(at)
            .execute(pool)
            .await
            .map(|_| ()))?;
        self.notification(id).await
    }
}
