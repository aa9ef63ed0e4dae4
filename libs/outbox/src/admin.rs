//! The operator's gRPC API over the dead letters (`ironmesh.events.v1.EventsAdminService`,
//! access: operator — enforced by the server stack from the contract). Every producing service
//! adds `EventsAdminServiceServer::new(EventsAdmin::new(db, outbox))` to its server.

use ironmesh_interceptors::context::CallContext;
use ironmesh_proto::ironmesh::events::v1 as pb;
use ironmesh_proto::ironmesh::events::v1::events_admin_service_server::EventsAdminService;
use ironmesh_runtime::Database;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::OutboxError;
use crate::dead_letters::{self, Replay};
use crate::event::timestamp;
use crate::write::Outbox;

/// Page size when the request says 0.
const DEFAULT_PAGE_SIZE: u32 = 100;

/// The admin service of one outbox.
#[derive(Clone, Debug)]
pub struct EventsAdmin {
    db: Database,
    outbox: Outbox,
}

impl EventsAdmin {
    /// Serves the dead letters of `outbox` stored in `db`; replays wake its relay.
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self { db, outbox }
    }
}

#[tonic::async_trait]
impl EventsAdminService for EventsAdmin {
    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n @ 1..=500 => n.unsigned_abs(),
            _ => return Err(invalid("page_size", "must be between 1 and 500")),
        };
        let subscriber = Some(request.subscriber.as_str()).filter(|s| !s.is_empty());
        let page = dead_letters::list(&self.db, subscriber, page_size, &request.page_token)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: page
                .dead_letters
                .into_iter()
                .map(|d| pb::DeadLetter {
                    subscriber: d.subscriber,
                    event: Some(d.event),
                    attempts: d.attempts,
                    last_error: d.last_error,
                    dead_at: Some(timestamp(d.dead_at)),
                })
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<pb::ReplayDeadLettersRequest>,
    ) -> Result<Response<pb::ReplayDeadLettersResponse>, Status> {
        let request = request.into_inner();
        if request.subscriber.is_empty() {
            return Err(invalid("subscriber", "is required"));
        }
        let which = if request.event_id.is_empty() {
            Replay::AllFor {
                subscriber: &request.subscriber,
            }
        } else {
            Replay::Event {
                subscriber: &request.subscriber,
                event_id: &request.event_id,
            }
        };
        let replayed = dead_letters::replay(&self.db, which)
            .await
            .map_err(status)?;
        if replayed > 0 {
            self.outbox.wake();
        }
        Ok(Response::new(pb::ReplayDeadLettersResponse {
            replayed_count: i64::try_from(replayed).unwrap_or(i64::MAX),
        }))
    }
}

fn invalid(field: &str, description: &str) -> Status {
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, description);
    Status::with_error_details(tonic::Code::InvalidArgument, "invalid request", details)
}

/// The one mapping from [`OutboxError`] to a status; storage errors are logged with the request
/// id, never shown.
fn status(err: OutboxError) -> Status {
    match err {
        OutboxError::InvalidPageToken => invalid("page_token", "is not a token this API issued"),
        OutboxError::MissingField(field) => invalid(field, "is required"),
        OutboxError::PayloadTooLarge { .. } | OutboxError::Database(_) => {
            let id = CallContext::current()
                .and_then(|ctx| ctx.request_id)
                .map(|id| id.to_string())
                .unwrap_or_default();
            tracing::error!(
                request_id = %id,
                error = %ironmesh_interceptors::grpc::error_chain(&err),
                "events admin failed"
            );
            ironmesh_interceptors::grpc::internal_error(&id)
        }
    }
}
