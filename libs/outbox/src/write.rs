//! The write path: [`Outbox::write`] records an event and its pending deliveries inside the
//! caller's transaction, so the event exists exactly when the change it describes does.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use ironmesh_proto::ironmesh::events::v1::Event;
use tokio::sync::Notify;

use crate::event::{self, MAX_PAYLOAD_BYTES, NewEvent};
use crate::relay::{Relay, RelayConfig};
use crate::subscriber::Subscriber;
use crate::{OutboxError, metrics};
use ironmesh_runtime::Database;

/// A connection the outbox can write through: `&mut *tx` of a `sqlx::Transaction` on either
/// backend (`SqliteConnection` or `PgConnection`), so the call reads the same inside
/// `with_pool!`. Sealed: the SQL behind it is this crate's.
pub trait OutboxConnection: private::Sealed + Send {}

impl OutboxConnection for sqlx::SqliteConnection {}
impl OutboxConnection for sqlx::PgConnection {}

pub(crate) mod private {
    use super::*;

    /// One event row and the subscribers to create pending deliveries for.
    pub struct Insert<'a> {
        pub event: &'a Event,
        pub occurred_at: DateTime<Utc>,
        pub subscribers: Vec<&'a str>,
    }

    /// The statements of the write path and the inbox, compiled once per backend.
    pub trait Sealed {
        /// Inserts the event with the next version of its aggregate; returns that version.
        fn insert_event<'a>(
            &'a mut self,
            row: &'a Insert<'a>,
        ) -> BoxFuture<'a, Result<i64, sqlx::Error>>;
        /// Inserts an inbox id; true when it was not there yet.
        fn insert_inbox<'a>(
            &'a mut self,
            event_id: &'a str,
            source: &'a str,
            at: DateTime<Utc>,
        ) -> BoxFuture<'a, Result<bool, sqlx::Error>>;
    }
}

// The per-aggregate counter is one upsert: on PostgreSQL the conflicting row is locked until the
// transaction ends, so concurrent writers on one aggregate queue and each sees the previous
// writer's committed value (no gaps, no duplicates); SQLite has a single writer anyway.
const NEXT_VERSION: &str = "INSERT INTO outbox_aggregate_versions (aggregate_type, aggregate_id, version) \
     VALUES ($1, $2, 1) \
     ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = outbox_aggregate_versions.version + 1 \
     RETURNING version";
const INSERT_EVENT: &str = "INSERT INTO outbox_events (id, event_type, source, aggregate_type, aggregate_id, \
     aggregate_version, occurred_at, actor, content_type, payload, traceparent, tracestate, request_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq";
const INSERT_DELIVERY: &str = "INSERT INTO outbox_deliveries (event_seq, subscriber, aggregate_type, aggregate_id, \
     aggregate_version, state, attempts, next_attempt_at, last_error, updated_at) \
     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, '', $6)";
const INSERT_INBOX: &str = "INSERT INTO inbox (event_id, source, received_at) VALUES ($1, $2, $3) \
     ON CONFLICT (event_id) DO NOTHING";

macro_rules! impl_sealed {
    ($conn:ty) => {
        impl private::Sealed for $conn {
            fn insert_event<'a>(
                &'a mut self,
                row: &'a Insert<'a>,
            ) -> BoxFuture<'a, Result<i64, sqlx::Error>> {
                Box::pin(async move {
                    let e = row.event;
                    let (version,): (i64,) = sqlx::query_as(NEXT_VERSION)
                        .bind(&e.aggregate_type)
                        .bind(&e.aggregate_id)
                        .fetch_one(&mut *self)
                        .await?;
                    let (seq,): (i64,) = sqlx::query_as(INSERT_EVENT)
                        .bind(&e.id)
                        .bind(&e.r#type)
                        .bind(&e.source)
                        .bind(&e.aggregate_type)
                        .bind(&e.aggregate_id)
                        .bind(version)
                        .bind(row.occurred_at)
                        .bind(&e.actor)
                        .bind(&e.content_type)
                        .bind(&e.payload)
                        .bind(&e.traceparent)
                        .bind(&e.tracestate)
                        .bind(&e.request_id)
                        .fetch_one(&mut *self)
                        .await?;
                    for subscriber in &row.subscribers {
                        sqlx::query(INSERT_DELIVERY)
                            .bind(seq)
                            .bind(*subscriber)
                            .bind(&e.aggregate_type)
                            .bind(&e.aggregate_id)
                            .bind(version)
                            .bind(row.occurred_at)
                            .execute(&mut *self)
                            .await?;
                    }
                    Ok(version)
                })
            }

            fn insert_inbox<'a>(
                &'a mut self,
                event_id: &'a str,
                source: &'a str,
                at: DateTime<Utc>,
            ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
                Box::pin(async move {
                    let done = sqlx::query(INSERT_INBOX)
                        .bind(event_id)
                        .bind(source)
                        .bind(at)
                        .execute(&mut *self)
                        .await?;
                    Ok(done.rows_affected() == 1)
                })
            }
        }
    };
}

use private::Insert;

impl_sealed!(sqlx::SqliteConnection);
impl_sealed!(sqlx::PgConnection);

/// A producing service's outbox: who it is (`source`), who subscribes to what, and the wake-up
/// of its relay. Cheap to clone; build one per process and share it between the store and the
/// relay.
#[derive(Clone)]
pub struct Outbox {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub source: String,
    pub subscribers: Vec<Subscriber>,
    /// One per subscriber (same index): `notify_one` keeps a permit, so a commit that lands while
    /// the relay task is busy still wakes it for its next round.
    pub wake: Vec<Notify>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("source", &self.inner.source)
            .field(
                "subscribers",
                &self
                    .inner
                    .subscribers
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Outbox {
    /// The outbox of service `source` (e.g. "orders") delivering to `subscribers`.
    pub fn new(source: &str, subscribers: Vec<Subscriber>) -> Self {
        metrics::Metrics::get();
        let wake = subscribers.iter().map(|_| Notify::new()).collect();
        Self {
            inner: Arc::new(Inner {
                source: source.to_owned(),
                subscribers,
                wake,
            }),
        }
    }

    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Records `event` inside the caller's transaction (`conn` is `&mut *tx`): fills id
    /// (UUIDv7), source, occurred_at and the next aggregate_version, and creates one pending
    /// delivery per subscriber whose patterns match the type. Call [`Self::wake`] after the
    /// commit so the relay delivers at once instead of at its next poll.
    pub async fn write<C: OutboxConnection>(
        &self,
        conn: &mut C,
        event: NewEvent,
    ) -> Result<Event, OutboxError> {
        validate(&event)?;
        let occurred_at = event::now();
        let mut written = Event {
            id: uuid::Uuid::now_v7().to_string(),
            r#type: event.event_type,
            source: self.inner.source.clone(),
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            aggregate_version: 0,
            occurred_at: Some(event::timestamp(occurred_at)),
            actor: event.actor,
            content_type: event.content_type,
            payload: event.payload,
            traceparent: event.trace.traceparent,
            tracestate: event.trace.tracestate,
            request_id: event.trace.request_id,
        };
        let subscribers = self
            .inner
            .subscribers
            .iter()
            .filter(|s| s.wants(&written.r#type))
            .map(|s| s.name.as_str())
            .collect();
        let row = Insert {
            event: &written,
            occurred_at,
            subscribers,
        };
        let version = conn
            .insert_event(&row)
            .await
            .map_err(OutboxError::Database)?;
        written.aggregate_version = version;
        Ok(written)
    }

    /// Wakes the relay: call it right after committing a transaction that wrote events.
    pub fn wake(&self) {
        for notify in &self.inner.wake {
            notify.notify_one();
        }
    }

    /// The relay delivering this outbox's rows from `db` (run it with [`Relay::run`]).
    pub fn relay(&self, db: Database, config: RelayConfig) -> Relay {
        Relay::new(self.clone(), db, config)
    }
}

fn validate(event: &NewEvent) -> Result<(), OutboxError> {
    if event.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(OutboxError::PayloadTooLarge {
            size: event.payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    for (field, value) in [
        ("event_type", &event.event_type),
        ("aggregate_type", &event.aggregate_type),
        ("aggregate_id", &event.aggregate_id),
        ("actor", &event.actor),
        ("content_type", &event.content_type),
    ] {
        if value.trim().is_empty() {
            return Err(OutboxError::MissingField(field));
        }
    }
    Ok(())
}
