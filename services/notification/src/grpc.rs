//! The tonic adapter for `NotificationService`: proto ⇄ domain, and errors → gRPC status in one
//! place ([`status`]). Preferences are built; every other RPC answers `UNIMPLEMENTED` and says
//! what is missing — never a fake success.

use ironmesh_interceptors::auth::Principal;
use ironmesh_interceptors::context::RequestId;
use ironmesh_proto::ironmesh::events::v1::{
    self as events, event_sink_service_server::EventSinkService,
};
use ironmesh_proto::ironmesh::notification::v1::{
    self as pb, notification_service_server::NotificationService,
};
use ironmesh_runtime::status::{self as statuses, not_yet};
use ironmesh_runtime::validation::Violations;
use tonic::{Request, Response, Status};

use crate::preferences::{Channel, Preferences, RawChannel};
use crate::store::{Store, StoreError};

/// What is not built yet, named in every `UNIMPLEMENTED` answer.
const FEATURE: &str = "notifications and webhooks (planned notification issue)";

/// What a notification operation fails with.
#[derive(Debug)]
enum Failure {
    Invalid(Violations),
    Unauthenticated,
    Store(StoreError),
}

/// The one mapping to gRPC status; store faults are logged with the request id, never shown.
fn status(failure: Failure, request_id: Option<&RequestId>) -> Status {
    match failure {
        Failure::Invalid(violations) => statuses::invalid_argument(&violations),
        Failure::Unauthenticated => Status::unauthenticated("a credential is required"),
        Failure::Store(err) => statuses::internal(&err, request_id),
    }
}

/// The principal's subject (every method here needs one).
fn caller<R>(request: &Request<R>) -> Result<String, Failure> {
    request
        .extensions()
        .get::<Principal>()
        .map(|p| p.subject.to_string())
        .ok_or(Failure::Unauthenticated)
}

fn channel(value: i32) -> RawChannel {
    match pb::Channel::try_from(value).ok()? {
        pb::Channel::Unspecified => None,
        pb::Channel::InApp => Some(Channel::InApp),
        pb::Channel::Email => Some(Channel::Email),
        pb::Channel::Webhook => Some(Channel::Webhook),
    }
}

fn channel_value(channel: Channel) -> i32 {
    match channel {
        Channel::InApp => pb::Channel::InApp.into(),
        Channel::Email => pb::Channel::Email.into(),
        Channel::Webhook => pb::Channel::Webhook.into(),
    }
}

fn shown(
    preferences: &Preferences,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> pb::NotificationPreferences {
    pb::NotificationPreferences {
        default_channels: preferences
            .default_channels
            .iter()
            .map(|c| channel_value(*c))
            .collect(),
        event_types: preferences
            .overrides
            .iter()
            .map(|o| pb::EventTypePreference {
                event_type: o.pattern.clone(),
                channels: o.channels.iter().map(|c| channel_value(*c)).collect(),
            })
            .collect(),
        updated_at: at.map(ironmesh_runtime::time::timestamp),
    }
}

/// The `NotificationService` implementation.
pub struct NotificationApi {
    store: Store,
}

impl NotificationApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn get(&self, user: &str) -> Result<pb::NotificationPreferences, Failure> {
        Ok(
            match self.store.preferences(user).await.map_err(Failure::Store)? {
                Some((preferences, at)) => shown(&preferences, Some(at)),
                None => shown(&Preferences::default(), None),
            },
        )
    }

    async fn set(
        &self,
        user: &str,
        body: Option<pb::NotificationPreferences>,
    ) -> Result<pb::NotificationPreferences, Failure> {
        let body = body.unwrap_or_default();
        let defaults: Vec<RawChannel> = body.default_channels.iter().map(|c| channel(*c)).collect();
        let lists: Vec<Vec<RawChannel>> = body
            .event_types
            .iter()
            .map(|e| e.channels.iter().map(|c| channel(*c)).collect())
            .collect();
        let overrides: Vec<(&str, &[RawChannel])> = body
            .event_types
            .iter()
            .zip(&lists)
            .map(|(e, list)| (e.event_type.as_str(), list.as_slice()))
            .collect();
        let preferences = Preferences::new(&defaults, &overrides).map_err(Failure::Invalid)?;
        let now = ironmesh_runtime::storage::now();
        self.store
            .set_preferences(user, &preferences, now)
            .await
            .map_err(Failure::Store)?;
        Ok(shown(&preferences, Some(now)))
    }
}

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
        request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::GetPreferencesResponse>, Status> {
        let request_id = request.extensions().get::<RequestId>().cloned();
        let answer = async {
            let user = caller(&request)?;
            self.get(&user).await
        };
        answer
            .await
            .map(|preferences| {
                Response::new(pb::GetPreferencesResponse {
                    preferences: Some(preferences),
                })
            })
            .map_err(|failure| status(failure, request_id.as_ref()))
    }

    async fn set_preferences(
        &self,
        request: Request<pb::SetPreferencesRequest>,
    ) -> Result<Response<pb::SetPreferencesResponse>, Status> {
        let request_id = request.extensions().get::<RequestId>().cloned();
        let answer = async {
            let user = caller(&request)?;
            self.set(&user, request.into_inner().preferences).await
        };
        answer
            .await
            .map(|preferences| {
                Response::new(pb::SetPreferencesResponse {
                    preferences: Some(preferences),
                })
            })
            .map_err(|failure| status(failure, request_id.as_ref()))
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
