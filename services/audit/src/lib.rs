//! The tamper-evident audit log: hash-chained entries appended by services and derived from
//! every platform event, queried, exported, verified and signed for operators, purged past
//! retention behind signed anchors.
//!
//! # Layout
//! - [`run`]: load the sealing keyring and the `audit` section, open and migrate the store,
//!   serve `AuditService` and `EventSinkService` with the [`background`] tasks until shutdown.
//! - [`domain`]: entries, outcomes, the input rules of audit.proto, Query's filter, the
//!   canonical encoding and the hash chain, signed checkpoints and anchors
//!   ([`domain::Checkpoint`]), the offline check of an export ([`domain::offline`]),
//!   [`domain::AuditError`] (no proto, no SQL).
//! - [`keys`]: the Ed25519 signing key (made on first use, sealed at rest with
//!   ironmesh-sealing) and the sealing keyring's loader ([`keys::sealing`]).
//! - [`service`]: the operations ([`service::Audit`]): Append's validation, Query's paging
//!   tokens, VerifyChain's ranges and checkpoint check, GetCheckpoint, Export's plan, one batch
//!   of retention.
//! - [`store`]: the schema per backend ([`MIGRATIONS`], with the outbox library's inbox) and
//!   every query; appends serialize on one head row in the database, purges are allowed by the
//!   triggers only below a signed anchor (the whys are in their docs).
//! - [`grpc`]: the `AuditService` adapter and errors → status in one function;
//!   `grpc/convert` (proto ⇄ domain) and `grpc/sink` (`EventSinkService`, [`grpc::deliver`],
//!   [`grpc::event_entry`]: how an event becomes an entry).
//! - [`background`]: retention, the periodic checkpoint signer, the inbox's retention.
//! - [`offline`]: reading an export (NDJSON) and a checkpoint (JSON) for `ironmesh audit
//!   verify`, checked by [`domain::offline`] without the server.
//! - [`settings`]: the `audit` section ([`settings::AuditConfig`]) and [`SECTIONS`].
//!
//! `domain`, `service`, `store` and `grpc` are public so tests can drive the internal-only
//! operations (Append, Deliver) below the gRPC layer, which refuses user tokens for them.
#![forbid(unsafe_code)]

pub mod background;
pub mod domain;
pub mod grpc;
pub mod keys;
pub mod offline;
pub mod service;
pub mod settings;
pub mod store;

use std::future::Future;

use ironmesh_proto::ironmesh::audit::v1::audit_service_server::AuditServiceServer;
use ironmesh_proto::ironmesh::events::v1::event_sink_service_server::EventSinkServiceServer;
use ironmesh_runtime::{Config, GrpcService, Listeners, RunError, ServiceKind, limit_sizes};

pub use settings::SECTIONS;
pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Audit;

/// Serves audit on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.max_message_bytes;
    let settings = config.section::<settings::AuditConfig>()?;
    let sealing = keys::sealing(&config).map_err(|err| match err {
        ironmesh_sealing::KeyringError::Config(err) => RunError::Config(err),
        ironmesh_sealing::KeyringError::MasterKey(err) => RunError::Setup(format!(
            "audit: no master key to seal its signing key: {err}"
        )),
    })?;
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
        let store = store::Store::new(db);
        let audit = service::Audit::new(store.clone(), keys::SigningKeys::new(store, sealing));
        let (retention, checkpoints, inbox) = (audit.clone(), audit.clone(), audit.clone());
        let signer_settings = settings.clone();
        GrpcService::new(KIND)
            .add_service(limit_sizes!(
                AuditServiceServer::new(grpc::AuditApi::new(audit.clone())),
                limit
            ))
            .add_service(limit_sizes!(
                EventSinkServiceServer::new(grpc::EventSinkApi::new(audit)),
                limit
            ))
            .background("audit retention", move |token| {
                background::retention(retention, settings, token)
            })
            .background("audit checkpoints", move |token| {
                background::checkpoints(checkpoints, signer_settings, token)
            })
            .background("audit inbox retention", move |token| {
                background::inbox(inbox, token)
            })
    })
    .await
}
