//! The tonic adapter for `NotificationService`: proto ⇄ domain, and domain errors → gRPC status in one
//! place. Until the notification behaviour is built, every RPC answers `UNIMPLEMENTED` and says what is
//! missing — never a fake success.

use ironmesh_proto::ironmesh::events::v1::{
    self as events, event_sink_service_server::EventSinkService,
};
use ironmesh_proto::ironmesh::notification::v1::{
    self as pb, notification_service_server::NotificationService,
};
use ironmesh_runtime::status::not_yet;
use tonic::{Request, Response, Status};

/// What is not built yet, named in every `UNIMPLEMENTED` answer.
const FEATURE: &str = "notifications and webhooks (planned notification issue)";

/// The `NotificationService` implementation.
pub struct NotificationApi;

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn send(
        &self,
        _request: Request<pb::SendRequest>,
    ) -> Result<Response<pb::SendResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_notification(
        &self,
        _request: Request<pb::GetNotificationRequest>,
    ) -> Result<Response<pb::GetNotificationResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_notifications(
        &self,
        _request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn mark_read(
        &self,
        _request: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::MarkReadResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn create_webhook_endpoint(
        &self,
        _request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Result<Response<pb::CreateWebhookEndpointResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_webhook_endpoints(
        &self,
        _request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<pb::ListWebhookEndpointsResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn rotate_webhook_secret(
        &self,
        _request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn delete_webhook_endpoint(
        &self,
        _request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Result<Response<pb::DeleteWebhookEndpointResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_deliveries(
        &self,
        _request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn redeliver(
        &self,
        _request: Request<pb::RedeliverRequest>,
    ) -> Result<Response<pb::RedeliverResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_preferences(
        &self,
        _request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::GetPreferencesResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn set_preferences(
        &self,
        _request: Request<pb::SetPreferencesRequest>,
    ) -> Result<Response<pb::SetPreferencesResponse>, Status> {
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
