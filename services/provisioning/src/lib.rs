//! The priority onboarding queue: requests served strictly by tier then FIFO, leased to workers
//! as jobs with fencing tokens, retried with backoff, dead-lettered and replayed.
//!
//! # Layout
//! - [`run`]: read the `provisioning` section, open and migrate the store, serve
//!   `ProvisioningService` (and the outbox's `EventsAdminService`, with the relay beside it)
//!   with the reaper and idempotency-key retention until shutdown.
//! - [`domain`]: requests, tiers, jobs, dead letters, the input rules and backoff,
//!   [`domain::Failure`] (no proto, no SQL).
//! - [`store`]: the schema per backend ([`MIGRATIONS`], with the outbox's and the idempotency
//!   keys' tables) and every query; why a lapsed or cancelled lease can never finish a request
//!   is in its docs.
//! - [`service`]: the operations ([`service::Queue`]): submit, read, position, cancel, claim
//!   (long-poll), heartbeat, complete, fail, dead letters, replay, the reaper, and the position
//!   board WatchQueuePosition streams share.
//! - [`credentials`]: customer credentials, envelope-encrypted (a data key per set, wrapped by
//!   key-encryption keys kept sealed in the database), key rotation and rewrap.
//! - [`events`]: `provisioning.request.<transition>` through the outbox, the request as
//!   payload; `provisioning.credentials.stored` (metadata only).
//! - [`metrics`]: transitions, position queries and watchers, in `/metrics`.
//! - `grpc`: the tonic adapter and errors → status in one function; `grpc/convert` (proto ⇄
//!   domain).
//! - [`worker`]: `ironmesh worker --exec PROGRAM`, the job runner (claims, runs the program
//!   with the job on stdin, heartbeats, completes or fails by its exit status).
//! - [`settings`]: the `provisioning` section ([`settings::ProvisioningConfig`]) and
//!   [`SECTIONS`].
//! - [`operator`]: what `ironmesh admin` does to provisioning (rotate the credential key, the
//!   key report).
#![forbid(unsafe_code)]

pub mod credentials;
pub mod domain;
pub mod events;
mod grpc;
pub mod inbound;
pub mod metrics;
pub mod operator;
pub mod service;
pub mod settings;
pub mod store;
pub mod worker;

use std::future::Future;

use ironmesh_outbox::Events;
use ironmesh_proto::ironmesh::provisioning::v1::provisioning_service_server::ProvisioningServiceServer;
use ironmesh_runtime::{Config, GrpcService, Listeners, RunError, ServiceKind, limit_sizes};

pub use settings::SECTIONS;
pub use store::MIGRATIONS;

use settings::ProvisioningConfig;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Provisioning;

/// Serves provisioning on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.max_message_bytes;
    let settings = config.section::<ProvisioningConfig>()?;
    let events = Events::from_config(&config, KIND)?;
    let master = operator::master_keyring(&config)?;
    metrics::register_all();
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
        let store = store::Store::new(db.clone(), events.outbox().clone());
        let queue = service::Queue::new(store, settings, master);
        let reaper = queue.clone();
        let board = queue.clone();
        let rewrap = queue.clone();
        let keys = db.clone();
        let service = GrpcService::new(KIND)
            .add_service(limit_sizes!(
                ProvisioningServiceServer::new(grpc::ProvisioningApi::new(queue)),
                limit
            ))
            .background("provisioning reaper", move |token| reaper.run_reaper(token))
            .background("provisioning position board", move |token| {
                board.run_board(token)
            })
            .background("provisioning credential rewrap", move |token| {
                rewrap.run_rewrap(token)
            })
            .background("provisioning idempotency key retention", move |token| {
                ironmesh_idempotency::retention_task(keys, token)
            });
        events.mount(service, db)
    })
    .await
}
