//! Orders: idempotent creation, payment, fulfilment, cancellation and refunds, as a saga over
//! inventory's reservations that always finishes.
//!
//! # Layout
//! - [`run`]: read the `orders` section, open and migrate the store, serve `OrdersService`
//!   (and the outbox's `EventsAdminService`, with the relay beside it) with recovery and
//!   idempotency-key retention until shutdown.
//! - [`domain`]: the order, its state machine as pure steps ([`domain::lifecycle`]), the
//!   checks and pricing of a new order, [`domain::OrdersError`] (no proto, no SQL).
//! - [`store`]: the schema per backend ([`MIGRATIONS`], with the outbox's and the idempotency
//!   keys' tables) and every query; why one conditional UPDATE per change is enough across
//!   replicas is in its docs.
//! - [`service`]: the operations ([`service::Orders`]): creation, the callers' requests, and
//!   the saga's steps shared with recovery.
//! - [`upstream`]: inventory as orders calls it (as `service:orders`), answers sorted into
//!   definite outcomes or "unreachable, retry".
//! - [`recovery`]: the background task that finishes half-done orders on every replica.
//! - [`grpc`]: the tonic adapter and errors → status in one function; `grpc/convert` (proto ⇄
//!   domain).
//! - [`events`]: `orders.order.<status>` through the outbox, the order as payload.
//! - [`metrics`]: transitions by status and recovery's steps, in `/metrics`.
//! - [`settings`]: the `orders` section ([`settings::OrdersConfig`]) and [`SECTIONS`].
#![forbid(unsafe_code)]

pub mod domain;
pub mod events;
pub mod grpc;
pub mod metrics;
pub mod recovery;
pub mod service;
pub mod settings;
pub mod store;
pub mod upstream;

use std::future::Future;

use ironmesh_outbox::Events;
use ironmesh_proto::ironmesh::orders::v1::orders_service_server::OrdersServiceServer;
use ironmesh_runtime::{
    Config, GrpcService, Listeners, RunError, ServiceKind, clients, limit_sizes,
};

pub use settings::SECTIONS;
pub use store::MIGRATIONS;

use settings::OrdersConfig;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Orders;

/// Serves orders on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.max_message_bytes;
    let settings = config.section::<OrdersConfig>()?;
    let events = Events::from_config(&config, KIND)?;
    let channel = clients::channel(&config, KIND.name(), ServiceKind::Inventory)
        .map_err(|err| RunError::Setup(format!("orders: inventory client: {err}")))?;
    let inventory = upstream::Inventory::new(channel);
    metrics::register();
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
        let store = store::Store::new(db.clone(), events.outbox().clone());
        let orders = service::Orders::new(store, inventory, settings);
        let keys = db.clone();
        let recovering = orders.clone();
        let service = GrpcService::new(KIND)
            .add_service(limit_sizes!(
                OrdersServiceServer::new(grpc::OrdersApi::new(orders)),
                limit
            ))
            .background("orders recovery", move |token| {
                recovery::run(recovering, token)
            })
            .background("orders idempotency key retention", move |token| {
                ironmesh_idempotency::retention_task(keys, token)
            });
        events.mount(service, db)
    })
    .await
}
