//! The tamper-evident audit log: hash-chained entries appended by services and derived from
//! every platform event, queried and verified by operators.
//!
//! # Layout
//! - [`run`]: open and migrate the store, serve `AuditService` and `EventSinkService` until
//!   shutdown.
//! - [`domain`]: entries, outcomes, the input rules of audit.proto, Query's filter, the
//!   canonical encoding and the hash chain, [`domain::AuditError`] (no proto, no SQL).
//! - [`service`]: the operations ([`service::Audit`]): Append's validation, Query's paging
//!   tokens, VerifyChain's ranges.
//! - [`store`]: the schema per backend ([`MIGRATIONS`], with the outbox library's inbox) and
//!   every query; appends serialize on one head row in the database (the why is in its docs).
//! - [`grpc`]: the `AuditService` adapter and errors → status in one function;
//!   `grpc/convert` (proto ⇄ domain) and `grpc/sink` (`EventSinkService`, [`grpc::deliver`],
//!   [`grpc::event_entry`]: how an event becomes an entry).
//!
//! `domain`, `service`, `store` and `grpc` are public so tests can drive the internal-only
//! operations (Append, Deliver) below the gRPC layer, which refuses user tokens for them.
//! GetCheckpoint, Export and retention answer `UNIMPLEMENTED` naming what is missing.
#![forbid(unsafe_code)]

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

use std::future::Future;

use ironmesh_proto::ironmesh::audit::v1::audit_service_server::AuditServiceServer;
use ironmesh_proto::ironmesh::events::v1::event_sink_service_server::EventSinkServiceServer;
use ironmesh_runtime::{Config, GrpcService, Listeners, RunError, ServiceKind, limit_sizes};

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
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
        let audit = service::Audit::new(store::Store::new(db));
        GrpcService::new(KIND)
            .add_service(limit_sizes!(
                AuditServiceServer::new(grpc::AuditApi::new(audit.clone())),
                limit
            ))
            .add_service(limit_sizes!(
                EventSinkServiceServer::new(grpc::EventSinkApi::new(audit)),
                limit
            ))
    })
    .await
}
