//! The tonic adapter for `AuditService`: proto ⇄ domain, and domain errors → gRPC status in one
//! place. Until the audit behaviour is built, every RPC answers `UNIMPLEMENTED` and says what is
//! missing — never a fake success.

use ironmesh_proto::ironmesh::audit::v1::{self as pb, audit_service_server::AuditService};
use ironmesh_proto::ironmesh::events::v1::{
    self as events, event_sink_service_server::EventSinkService,
};
use ironmesh_runtime::status::not_yet;
use tokio_stream::Empty;
use tonic::{Request, Response, Status};

/// What is not built yet, named in every `UNIMPLEMENTED` answer.
const FEATURE: &str = "the audit log (planned audit issue)";

/// The `AuditService` implementation.
pub struct AuditApi;

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn append(
        &self,
        _request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn query(
        &self,
        _request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::QueryResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_entry(
        &self,
        _request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::GetEntryResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn verify_chain(
        &self,
        _request: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_checkpoint(
        &self,
        _request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    type ExportStream = Empty<Result<pb::ExportResponse, Status>>;

    async fn export(
        &self,
        _request: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        Err(not_yet(FEATURE))
    }
}

/// What event consumption still needs.
const EVENT_FEATURE: &str = "event delivery from the transactional outbox (planned outbox issue)";

/// The `EventSinkService` other services deliver their events to.
pub struct EventSinkApi;

#[tonic::async_trait]
impl EventSinkService for EventSinkApi {
    async fn deliver(
        &self,
        _request: Request<events::DeliverRequest>,
    ) -> Result<Response<events::DeliverResponse>, Status> {
        Err(not_yet(EVENT_FEATURE))
    }
}
