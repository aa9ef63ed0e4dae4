//! `EventSinkService`: the platform events notification acts on, each exactly once (its inbox
//! row commits with its effect). An event in the [`crate::catalog`] becomes a notification for
//! its user, fanned out by their preferences; `auth.user.deleted` erases the user here; any
//! other event is accepted and ignored.

use ironmesh_outbox::Inbox;
use ironmesh_proto::ironmesh::auth::v1::UserDeleted;
use ironmesh_proto::ironmesh::events::v1::{
    self as events, event_sink_service_server::EventSinkService,
};
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::catalog;
use crate::domain::NewNotification;
use crate::service::Notifications;
use crate::store::{Created, Guard};

/// The type whose event erases a user's data here.
pub const USER_DELETED: &str = "auth.user.deleted";
/// Most events per call.
const MAX_BATCH: usize = 500;

/// The `EventSinkService` other services' relays deliver to.
pub struct EventSinkApi {
    notifications: Notifications,
    inbox: Inbox,
}

impl EventSinkApi {
    pub fn new(notifications: Notifications) -> Self {
        Self {
            notifications,
            inbox: Inbox::new("notification"),
        }
    }
}

#[tonic::async_trait]
impl EventSinkService for EventSinkApi {
    async fn deliver(
        &self,
        request: Request<events::DeliverRequest>,
    ) -> Result<Response<events::DeliverResponse>, Status> {
        let events = &request.get_ref().events;
        if events.is_empty() || events.len() > MAX_BATCH {
            return Err(ironmesh_runtime::status::invalid_argument(
                &ironmesh_runtime::validation::Violations::one("events", "1–500 events"),
            ));
        }
        Ok(Response::new(
            deliver(&self.notifications, &self.inbox, events).await,
        ))
    }
}

/// How one event ended.
enum Handled {
    Accepted,
    Duplicate,
    Rejected { reason: String, retryable: bool },
}

/// Deliver's work, below gRPC: each event on its own (one event's fault does not hold back the
/// others); storage faults are retryable rejections, undecodable payloads final ones. An id
/// repeated within the batch is handled and answered once (the contract: every id in exactly
/// one of the three lists), so its repeat is not reported as a duplicate of itself.
pub async fn deliver(
    notifications: &Notifications,
    inbox: &Inbox,
    events: &[events::Event],
) -> events::DeliverResponse {
    let mut response = events::DeliverResponse::default();
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    for event in events {
        if !seen.insert(event.id.as_str()) {
            continue;
        }
        match handle(notifications, inbox, event).await {
            Handled::Accepted => response.accepted_ids.push(event.id.clone()),
            Handled::Duplicate => response.duplicate_ids.push(event.id.clone()),
            Handled::Rejected { reason, retryable } => {
                response.rejected.push(events::EventRejection {
                    event_id: event.id.clone(),
                    reason,
                    retryable,
                })
            }
        }
    }
    response
}

fn transient(err: impl std::error::Error) -> Handled {
    tracing::warn!(error = %err, "an event could not be applied; the relay will retry it");
    Handled::Rejected {
        reason: "storage unavailable".to_owned(),
        retryable: true,
    }
}

fn refused(reason: impl Into<String>) -> Handled {
    Handled::Rejected {
        reason: reason.into(),
        retryable: false,
    }
}

async fn handle(notifications: &Notifications, inbox: &Inbox, event: &events::Event) -> Handled {
    if event.id.is_empty() {
        return refused("id is required");
    }
    if event.r#type == USER_DELETED {
        let Ok(payload) = UserDeleted::decode(event.payload.as_slice()) else {
            return refused("the payload is not an ironmesh.auth.v1.UserDeleted");
        };
        if payload.user_id.is_empty() {
            return refused("the payload names no user");
        }
        let now = ironmesh_runtime::storage::now();
        let guard = Some((inbox, event.id.as_str(), event.source.as_str()));
        return match notifications
            .store()
            .erase(&payload.user_id, now, guard)
            .await
        {
            Ok(true) => {
                tracing::info!(event_id = %event.id, "a deleted user's notification data was erased");
                Handled::Accepted
            }
            Ok(false) => Handled::Duplicate,
            Err(err) => transient(err),
        };
    }
    let draft = match catalog::draft(event) {
        Ok(Some(draft)) => draft,
        // Not an event anyone is notified of: nothing to do, nothing to remember.
        Ok(None) => return Handled::Accepted,
        Err(err) => return refused(err.to_string()),
    };
    let new = NewNotification {
        recipient_id: draft.recipient_id,
        event_type: draft.event_type,
        subject: draft.subject,
        body: draft.body,
        data: draft.data,
        channels: Vec::new(),
        idempotency_key: String::new(),
        source_event_id: draft.source_event_id,
    };
    let guard = Guard::Event {
        inbox,
        event_id: &event.id,
        source: &event.source,
    };
    match notifications.create(new, guard).await {
        Ok((Created::Duplicate, _)) => Handled::Duplicate,
        Ok(_) => Handled::Accepted,
        Err(err) => transient(FailureText(format!("{err:?}"))),
    }
}

/// A [`crate::service::Failure`] as an error for the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct FailureText(String);
