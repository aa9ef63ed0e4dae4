//! Catalogue and stock: products, adjustments and reservations.
//!
//! # Layout
//! - [`run`]: read the `inventory` section, open and migrate the store, serve `InventoryService`
//!   (and the outbox's `EventsAdminService`, with the relay beside it) with the sweeper, the
//!   product cache's listener and idempotency-key retention until shutdown.
//! - [`domain`]: products and their rules, stock and the ledger, reservations and their
//!   lifecycle, [`domain::InventoryError`] (no proto, no SQL).
//! - [`store`]: the schema per backend ([`MIGRATIONS`], with the outbox's and the idempotency
//!   keys' tables) and every query, one file per feature; why single conditional statements in
//!   one transaction are enough across replicas is in its docs.
//! - [`service`]: the operations ([`service::Inventory`]), one file per feature.
//! - [`grpc`]: the tonic adapter and errors → status in one function; `grpc/convert` (proto ⇄
//!   domain).
//! - [`cache`]: cache-aside for product reads — Redis when `redis_url` is set, in process
//!   otherwise (invalidated through LISTEN/NOTIFY on PostgreSQL); hit/miss counters.
//! - [`sweeper`]: HELD reservations past their expiry → EXPIRED, units back, once.
//! - [`events`]: the events inventory writes through the outbox, one constructor per type.
//! - [`settings`]: the `inventory` section ([`settings::InventoryConfig`]) and [`SECTIONS`].
#![forbid(unsafe_code)]

pub mod cache;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod service;
pub mod settings;
pub mod store;
pub mod sweeper;

use std::future::Future;

use ironmesh_outbox::Events;
use ironmesh_proto::ironmesh::inventory::v1::inventory_service_server::InventoryServiceServer;
use ironmesh_runtime::{Config, GrpcService, Listeners, RunError, ServiceKind, limit_sizes};

pub use settings::SECTIONS;
pub use store::MIGRATIONS;

use settings::InventoryConfig;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Inventory;

/// Serves inventory on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.max_message_bytes;
    let settings = config.section::<InventoryConfig>()?;
    let events = Events::from_config(&config, KIND)?;
    let redis = match &config.redis_url {
        Some(url) => Some(
            cache::ProductCache::redis(url, settings.cache_ttl())
                .map_err(|err| RunError::Setup(format!("inventory: product cache: {err}")))?,
        ),
        None => None,
    };
    cache::register_metrics();
    // The stack's authenticator, kept to verify the optional credentials of public methods too.
    let authenticator = ironmesh_runtime::auth::remote_authenticator(&config, KIND.name())
        .map_err(|err| RunError::Setup(format!("inventory: authenticator: {err}")))?;
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
        let store = store::Store::new(db.clone(), events.outbox().clone());
        let cache = redis.unwrap_or_else(|| cache::ProductCache::local(settings.cache_ttl(), &db));
        let interval = settings.sweep_interval();
        let inventory = service::Inventory::new(store, cache.clone(), settings);
        let keys = db.clone();
        let optional = grpc::caller::OptionalAuth::new(authenticator.clone());
        let service = GrpcService::new(KIND)
            .authenticator(authenticator)
            .add_service(limit_sizes!(
                InventoryServiceServer::new(grpc::InventoryApi::new(inventory.clone(), optional)),
                limit
            ))
            .background("inventory reservation sweeper", move |token| {
                sweeper::run(inventory, interval, token)
            })
            .background("inventory product cache", move |token| cache.run(token))
            .background("inventory idempotency key retention", move |token| {
                ironmesh_idempotency::retention_task(keys, token)
            });
        events.mount(service, db)
    })
    .await
}
