//! The tonic adapter for `ProvisioningService`: proto ⇄ domain, and domain errors → gRPC status in one
//! place. Until the provisioning behaviour is built, every RPC answers `UNIMPLEMENTED` and says what is
//! missing — never a fake success.

use ironmesh_proto::ironmesh::provisioning::v1::{
    self as pb, provisioning_service_server::ProvisioningService,
};
use ironmesh_runtime::status::not_yet;
use tokio_stream::Empty;
use tonic::{Request, Response, Status};

/// What is not built yet, named in every `UNIMPLEMENTED` answer.
const FEATURE: &str = "the onboarding queue (planned provisioning issue)";

/// The `ProvisioningService` implementation.
pub struct ProvisioningApi;

#[tonic::async_trait]
impl ProvisioningService for ProvisioningApi {
    async fn submit_request(
        &self,
        _request: Request<pb::SubmitRequestRequest>,
    ) -> Result<Response<pb::SubmitRequestResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_request(
        &self,
        _request: Request<pb::GetRequestRequest>,
    ) -> Result<Response<pb::GetRequestResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_requests(
        &self,
        _request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_queue_position(
        &self,
        _request: Request<pb::GetQueuePositionRequest>,
    ) -> Result<Response<pb::GetQueuePositionResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    type WatchQueuePositionStream = Empty<Result<pb::WatchQueuePositionResponse, Status>>;

    async fn watch_queue_position(
        &self,
        _request: Request<pb::WatchQueuePositionRequest>,
    ) -> Result<Response<Self::WatchQueuePositionStream>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn cancel_request(
        &self,
        _request: Request<pb::CancelRequestRequest>,
    ) -> Result<Response<pb::CancelRequestResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn submit_credentials(
        &self,
        _request: Request<pb::SubmitCredentialsRequest>,
    ) -> Result<Response<pb::SubmitCredentialsResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn claim_job(
        &self,
        _request: Request<pb::ClaimJobRequest>,
    ) -> Result<Response<pb::ClaimJobResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn heartbeat(
        &self,
        _request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn complete_job(
        &self,
        _request: Request<pb::CompleteJobRequest>,
    ) -> Result<Response<pb::CompleteJobResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn fail_job(
        &self,
        _request: Request<pb::FailJobRequest>,
    ) -> Result<Response<pb::FailJobResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_dead_letters(
        &self,
        _request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn replay_dead_letter(
        &self,
        _request: Request<pb::ReplayDeadLetterRequest>,
    ) -> Result<Response<pb::ReplayDeadLetterResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn receive_webhook(
        &self,
        _request: Request<pb::ReceiveWebhookRequest>,
    ) -> Result<Response<pb::ReceiveWebhookResponse>, Status> {
        Err(not_yet(FEATURE))
    }
}
