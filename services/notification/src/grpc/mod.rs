//! The tonic adapter for `NotificationService`: each handler reads the caller, converts proto
//! to domain ([`convert`]), calls [`Notifications`] and converts back; every error goes through
//! [`status`], the one mapping to gRPC status. The server stack has already enforced each
//! method's access level; "own" notifications, endpoints and deliveries are the service's
//! check (another user's is NOT_FOUND).

pub mod convert;

use ironmesh_interceptors::auth::{Principal, ROLE_ADMIN, ROLE_OPERATOR};
use ironmesh_interceptors::context::{CallContext, RequestId};
use ironmesh_proto::ironmesh::notification::v1::{
    self as pb, notification_service_server::NotificationService,
};
use ironmesh_runtime::paging::{decode_token, page, page_size};
use ironmesh_runtime::status as statuses;
use ironmesh_runtime::validation::{Violations, check_uuid};
use tonic::{Request, Response, Status};
use tonic_types::PreconditionViolation;

use crate::domain::{MAX_KEY_CHARS, NewEndpoint, NewNotification};
use crate::service::{Caller, Failure, Notifications};
use crate::ssrf;
use crate::store::{DeliveryFilter, NotificationFilter};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

/// The one mapping to gRPC status; internal faults are logged with the request id, never shown.
pub fn status(failure: Failure, request_id: Option<&RequestId>) -> Status {
    match failure {
        Failure::Invalid(violations) => statuses::invalid_argument(&violations),
        Failure::NotFound(what) => Status::not_found(format!("{what} not found")),
        Failure::Precondition(kind, subject, description) => statuses::precondition_failure(
            &description,
            &[PreconditionViolation::new(kind, &subject, &description)],
        ),
        Failure::Unavailable(what) => {
            Status::unavailable(format!("{what} is unavailable; retry later"))
        }
        Failure::Internal(fault) => statuses::internal(&*fault, request_id),
    }
}

/// Runs `f` for the caller and maps its error with the request's id.
async fn answer<T, R, F, Fut>(request: Request<R>, f: F) -> Result<Response<T>, Status>
where
    F: FnOnce(Caller, R) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let request_id = CallContext::request_id_of(request.extensions());
    let Some(principal) = request.extensions().get::<Principal>() else {
        return Err(Status::unauthenticated("a credential is required"));
    };
    let caller = Caller {
        subject: principal.subject.to_string(),
        operator: principal.has_role(ROLE_OPERATOR) || principal.has_role(ROLE_ADMIN),
    };
    f(caller, request.into_inner())
        .await
        .map(Response::new)
        .map_err(|failure| status(failure, request_id.as_ref()))
}

fn optional_uuid(v: &mut Violations, field: &str, id: &str) {
    if !id.is_empty() {
        check_uuid(v, field, id);
    }
}

/// The `NotificationService` implementation.
pub struct NotificationApi {
    notifications: Notifications,
    policy: ssrf::Policy,
}

impl NotificationApi {
    pub fn new(notifications: Notifications, policy: ssrf::Policy) -> Self {
        Self {
            notifications,
            policy,
        }
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn send(
        &self,
        request: Request<pb::SendRequest>,
    ) -> Result<Response<pb::SendResponse>, Status> {
        answer(request, |_caller, body| async move {
            let fingerprint = convert::send_fingerprint(&body);
            let new = NewNotification::checked(
                body.recipient_id,
                body.event_type,
                body.subject,
                body.body,
                body.data.into_iter().collect(),
                &convert::channels(&body.channels),
                body.idempotency_key,
            )?;
            let n = self.notifications.send(new, &fingerprint).await?;
            Ok(pb::SendResponse {
                notification: Some(convert::notification(&n)),
            })
        })
        .await
    }

    async fn get_notification(
        &self,
        request: Request<pb::GetNotificationRequest>,
    ) -> Result<Response<pb::GetNotificationResponse>, Status> {
        answer(request, |caller, body| async move {
            let n = self
                .notifications
                .notification(&caller, &body.notification_id)
                .await?;
            Ok(pb::GetNotificationResponse {
                notification: Some(convert::notification(&n)),
            })
        })
        .await
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        answer(request, |caller, body| async move {
            let mut v = Violations::default();
            let size = page_size(body.page_size, DEFAULT_PAGE, MAX_PAGE).unwrap_or_else(|e| {
                v.extend(e);
                DEFAULT_PAGE
            });
            if body.event_type.chars().count() > MAX_KEY_CHARS {
                v.add("event_type", "at most 128 characters");
            }
            let binding = format!("{}|{}", body.unread_only, body.event_type);
            let before = decode_token(&body.page_token, &binding).unwrap_or_else(|e| {
                v.extend(e);
                None
            });
            v.into_result()?;
            let filter = NotificationFilter {
                unread_only: body.unread_only,
                event_type: body.event_type,
            };
            let store = self.notifications.store();
            let rows = store
                .notifications(&caller.subject, &filter, before.as_deref(), size + 1)
                .await?;
            let unread_count = store.unread_count(&caller.subject).await?;
            let (rows, next_page_token) = page(rows, size, &binding, |n| &n.id);
            Ok(pb::ListNotificationsResponse {
                notifications: rows.iter().map(convert::notification).collect(),
                next_page_token,
                unread_count,
            })
        })
        .await
    }

    async fn mark_read(
        &self,
        request: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::MarkReadResponse>, Status> {
        answer(request, |caller, body| async move {
            let n = self
                .notifications
                .mark_read(&caller, &body.notification_id)
                .await?;
            Ok(pb::MarkReadResponse {
                notification: Some(convert::notification(&n)),
            })
        })
        .await
    }

    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Result<Response<pb::CreateWebhookEndpointResponse>, Status> {
        answer(request, |caller, body| async move {
            let Some(endpoint) = body.endpoint else {
                return Err(Violations::one("endpoint", "required").into());
            };
            let new = NewEndpoint::checked(
                &endpoint.url,
                endpoint.description,
                endpoint.event_types,
                self.policy,
            )?;
            let (endpoint, secret) = self.notifications.create_endpoint(&caller, new).await?;
            Ok(pb::CreateWebhookEndpointResponse {
                endpoint: Some(convert::endpoint(&endpoint)),
                signing_secret: secret.expose(),
            })
        })
        .await
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<pb::ListWebhookEndpointsResponse>, Status> {
        answer(request, |caller, body| async move {
            let mut v = Violations::default();
            let size = page_size(body.page_size, DEFAULT_PAGE, MAX_PAGE).unwrap_or_else(|e| {
                v.extend(e);
                DEFAULT_PAGE
            });
            let after = decode_token(&body.page_token, "endpoints").unwrap_or_else(|e| {
                v.extend(e);
                None
            });
            v.into_result()?;
            let rows = self
                .notifications
                .endpoints(&caller, after.as_deref(), size + 1)
                .await?;
            let (rows, next_page_token) = page(rows, size, "endpoints", |e| &e.id);
            Ok(pb::ListWebhookEndpointsResponse {
                endpoints: rows.iter().map(convert::endpoint).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        answer(request, |caller, body| async move {
            let (endpoint, secret, until) = self
                .notifications
                .rotate_secret(&caller, &body.endpoint_id)
                .await?;
            Ok(pb::RotateWebhookSecretResponse {
                endpoint: Some(convert::endpoint(&endpoint)),
                signing_secret: secret.expose(),
                previous_secret_expires_at: Some(ironmesh_runtime::time::timestamp(until)),
            })
        })
        .await
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Result<Response<pb::DeleteWebhookEndpointResponse>, Status> {
        answer(request, |caller, body| async move {
            self.notifications
                .delete_endpoint(&caller, &body.endpoint_id)
                .await?;
            Ok(pb::DeleteWebhookEndpointResponse {})
        })
        .await
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        answer(request, |caller, body| async move {
            let mut v = Violations::default();
            let size = page_size(body.page_size, DEFAULT_PAGE, MAX_PAGE).unwrap_or_else(|e| {
                v.extend(e);
                DEFAULT_PAGE
            });
            optional_uuid(&mut v, "endpoint_id", &body.endpoint_id);
            optional_uuid(&mut v, "notification_id", &body.notification_id);
            let state = convert::state_filter(body.state).unwrap_or_else(|()| {
                v.add("state", "not a delivery state");
                None
            });
            let binding = format!(
                "{}|{}|{}",
                body.endpoint_id, body.notification_id, body.state
            );
            let before = decode_token(&body.page_token, &binding).unwrap_or_else(|e| {
                v.extend(e);
                None
            });
            v.into_result()?;
            let filter = DeliveryFilter {
                recipient_id: String::new(),
                endpoint_id: body.endpoint_id,
                notification_id: body.notification_id,
                state,
            };
            let rows = self
                .notifications
                .deliveries(&caller, filter, before.as_deref(), size + 1)
                .await?;
            let (rows, next_page_token) = page(rows, size, &binding, |d| &d.id);
            Ok(pb::ListDeliveriesResponse {
                deliveries: rows.iter().map(convert::delivery).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn redeliver(
        &self,
        request: Request<pb::RedeliverRequest>,
    ) -> Result<Response<pb::RedeliverResponse>, Status> {
        answer(request, |caller, body| async move {
            let d = self
                .notifications
                .redeliver(&caller, &body.delivery_id)
                .await?;
            Ok(pb::RedeliverResponse {
                delivery: Some(convert::delivery(&d)),
            })
        })
        .await
    }

    async fn get_preferences(
        &self,
        request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::GetPreferencesResponse>, Status> {
        answer(request, |caller, _body| async move {
            let (p, at) = self.notifications.preferences(&caller.subject).await?;
            Ok(pb::GetPreferencesResponse {
                preferences: Some(convert::preferences(&p, at)),
            })
        })
        .await
    }

    async fn set_preferences(
        &self,
        request: Request<pb::SetPreferencesRequest>,
    ) -> Result<Response<pb::SetPreferencesResponse>, Status> {
        answer(request, |caller, body| async move {
            let p = convert::new_preferences(body.preferences)?;
            let at = self
                .notifications
                .set_preferences(&caller.subject, &p)
                .await?;
            Ok(pb::SetPreferencesResponse {
                preferences: Some(convert::preferences(&p, Some(at))),
            })
        })
        .await
    }
}
