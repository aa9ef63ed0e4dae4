//! The transactional outbox of DESIGN.md §1: a service writes its state change and an event in
//! one transaction; a relay in the same process delivers each event to every interested
//! subscriber over `EventSinkService.Deliver`, independently per subscriber, in
//! `aggregate_version` order per aggregate, with retries and dead letters; consumers dedupe by
//! event id with an inbox written in the effect's transaction.
//!
//! ```ignore
//! // Migrations: include the tables at versions of the service's choosing.
//! pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
//!     1, "initial schema", "0001_initial.sql";
//!     2, "outbox", (ironmesh_outbox::schema::OUTBOX);
//! ];
//!
//! // Once per process: the subscribers of the `events` section, each reached over the shared
//! // client stack as this service (`Deliver` is internal); the relay runs beside the server.
//! let events = Events::from_config(&config, ServiceKind::Orders)?;
//! let outbox = events.outbox().clone(); // for the store
//! run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
//!     events.mount(GrpcService::new(KIND).add_service(/* … */), db)
//! })
//!
//! // In the store, inside the change's transaction:
//! with_pool!(&db, pool => {
//!     let mut tx = pool.begin().await?;
//!     sqlx::query("UPDATE orders …").execute(&mut *tx).await?;
//!     outbox.write(&mut *tx, NewEvent::protobuf("orders.order.paid", "order", &id, actor, &order)).await?;
//!     tx.commit().await?;
//! });
//! outbox.wake();
//! ```
//!
//! # Layout
//! - [`config`]: the `events` section ([`EventsConfig`]): subscribers, relay and inbox settings.
//! - [`service`]: [`Events`] — what a producing process builds from that section and mounts on
//!   its server: the outbox, its relay (a background task) and `EventsAdminService`.
//! - [`schema`]: the SQL of the tables (`OUTBOX` for producers, `INBOX` for consumers), one text
//!   per backend, for services to include in their own migrations.
//! - [`event`]: [`NewEvent`] (what a service writes), [`EventTrace`] (request id and trace
//!   context, from the call context), [`TypePattern`] (`*`, `auth.*`, exact).
//! - [`write`](mod@write): [`Outbox`] and [`Outbox::write`] — id, version and delivery rows in
//!   the caller's transaction, on either backend ([`OutboxConnection`]).
//! - [`sink`]: [`Sink`], what the relay calls — any `EventSinkServiceClient`.
//! - [`subscriber`]: [`Subscriber`] and [`SubscriberConfig`] (an `events.subscribers` entry).
//! - [`relay`]: [`Relay`], [`RelayConfig`] — one task per subscriber: claim (lease,
//!   `SKIP LOCKED` on PostgreSQL), deliver, settle each pair; retention.
//! - `store`: the relay's SQL. `backoff`: exponential backoff with full jitter.
//! - [`dead_letters`]: list (paged) and replay; [`admin`]: the same as the operator-only gRPC
//!   `EventsAdminService`.
//! - [`payload`]: a payload's fields as text, by the message its content type names (for
//!   generic consumers like audit).
//! - [`inbox`]: [`Inbox::record`] for consumers, and inbox retention ([`inbox::run_retention`]).
//! - `metrics`: pending, oldest-pending age, delivered / failed / dead-lettered, inbox duplicates,
//!   in the shared registry.
#![forbid(unsafe_code)]

pub mod admin;
pub mod backoff;
pub mod config;
pub mod dead_letters;
pub mod event;
pub mod inbox;
mod metrics;
pub mod payload;
pub mod relay;
pub mod schema;
pub mod service;
pub mod sink;
mod store;
pub mod subscriber;
pub mod write;

pub use admin::EventsAdmin;
pub use config::EventsConfig;
pub use event::{EventTrace, MAX_PAYLOAD_BYTES, NewEvent, TypePattern};
pub use inbox::{Inbox, purge_inbox};
pub use relay::{Relay, RelayConfig};
pub use service::Events;
pub use sink::Sink;
pub use store::purge_delivered;
pub use subscriber::{Subscriber, SubscriberConfig};
pub use write::{Outbox, OutboxConnection};

/// What the outbox's functions fail with.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("event payload is {size} bytes, more than the {max} allowed")]
    PayloadTooLarge { size: usize, max: usize },
    #[error("event field `{0}` is required")]
    MissingField(&'static str),
    #[error("invalid page token")]
    InvalidPageToken,
    #[error("outbox storage: {0}")]
    Database(#[source] sqlx::Error),
}
