//! The tonic adapters: `AuditService` (here) and the `EventSinkService` other services deliver
//! events to ([`sink`]). Each handler converts proto to domain ([`convert`]), calls [`Audit`], and
//! converts back; every error goes through [`status`], the one mapping to gRPC status.
//! Export is a stream pulled batch by batch: the next batch is read only when the client has
//! taken the previous one, so a slow reader holds no more than one batch in memory.
//!
//! - [`convert`]: proto ⇄ domain, plain functions.
//! - [`sink`]: `EventSinkService`, [`deliver`] and [`event_entry`] (how an event becomes an entry).

pub mod convert;
pub mod sink;

pub use convert::{checkpoint, entry, signed, stored_entry};
pub use sink::{EventSinkApi, deliver, event_entry};

use std::pin::Pin;
use std::time::Duration;

use ironmesh_interceptors::context::{CallContext, RequestId};
use ironmesh_proto::ironmesh::audit::v1::{self as pb, audit_service_server::AuditService};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::AuditError;
use crate::service::Audit;
use convert::{bound, filter, new_entries, public_key, verification};

/// VerifyChain's budget when the caller sent no deadline.
const DEFAULT_VERIFY_BUDGET: Duration = Duration::from_secs(10);
/// What VerifyChain leaves of the caller's budget to answer in.
const VERIFY_MARGIN: Duration = Duration::from_millis(200);

/// The one mapping from [`AuditError`] to gRPC status. Internal errors are logged with the
/// request id and never shown to the caller.
pub fn status(err: AuditError, request_id: Option<&RequestId>) -> Status {
    match err {
        AuditError::Invalid(violations) => {
            let mut details = ErrorDetails::new();
            for v in &violations {
                details.add_bad_request_violation(&v.field, &v.description);
            }
            Status::with_error_details(tonic::Code::InvalidArgument, "invalid request", details)
        }
        AuditError::NotFound => Status::not_found("no audit entry at that sequence"),
        // Not signed over: the caller learns the log lost its tail, not a head that hides it.
        AuditError::Truncated { head, checkpoint } => {
            tracing::error!(head, checkpoint, "audit head behind its latest checkpoint");
            Status::data_loss(format!(
                "the chain head ({head}) is behind the latest signed checkpoint ({checkpoint}): \
                 entries were removed; run VerifyChain"
            ))
        }
        AuditError::Internal(fault) => {
            let id = request_id.map(|id| id.0.to_string()).unwrap_or_default();
            tracing::error!(request_id = %id, error = %ironmesh_interceptors::grpc::error_chain(fault.as_ref()), "internal error");
            ironmesh_interceptors::grpc::internal_error(&id)
        }
    }
}

/// Runs `f` and maps its error with the request's id.
async fn answer<T, R, F>(request: &Request<R>, f: F) -> Result<Response<T>, Status>
where
    F: std::future::Future<Output = Result<T, AuditError>>,
{
    let request_id = CallContext::request_id_of(request.extensions());
    f.await
        .map(Response::new)
        .map_err(|err| status(err, request_id.as_ref()))
}

/// The `AuditService` implementation.
pub struct AuditApi {
    audit: Audit,
}

impl AuditApi {
    pub fn new(audit: Audit) -> Self {
        Self { audit }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let entries = new_entries(&body.entries)?;
            let stored = self.audit.append(entries).await?;
            Ok(pb::AppendResponse {
                entries: stored.into_iter().map(entry).collect(),
            })
        })
        .await
    }

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::QueryResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let filter = filter(body)?;
            let page = self
                .audit
                .query(&filter, body.page_size, &body.page_token)
                .await?;
            Ok(pb::QueryResponse {
                entries: page.entries.into_iter().map(entry).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::GetEntryResponse>, Status> {
        let sequence = request.get_ref().sequence;
        answer(&request, async {
            let found = self.audit.entry(sequence).await?;
            Ok(pb::GetEntryResponse {
                entry: Some(entry(found)),
            })
        })
        .await
    }

    async fn verify_chain(
        &self,
        request: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainResponse>, Status> {
        let body = request.get_ref();
        // Stop early enough to answer within the caller's deadline; the response says how far
        // verification got, so the caller continues from there.
        let now = tokio::time::Instant::now();
        let deadline =
            CallContext::deadline_of(request.extensions()).unwrap_or(now + DEFAULT_VERIFY_BUDGET);
        let budget = deadline.saturating_duration_since(now);
        let deadline = now + budget.saturating_sub(VERIFY_MARGIN.min(budget / 5));
        answer(&request, async {
            let found = self
                .audit
                .verify(body.start_sequence, body.end_sequence, deadline)
                .await?;
            Ok(verification(found))
        })
        .await
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointResponse>, Status> {
        answer(&request, async {
            Ok(pb::GetCheckpointResponse {
                checkpoint: self.audit.checkpoint().await?.map(checkpoint),
            })
        })
        .await
    }

    type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportResponse, Status>> + Send>>;

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let request_id = CallContext::request_id_of(request.extensions());
        let body = request.get_ref();
        let plan = self
            .audit
            .export_plan(
                body.start_sequence,
                body.end_sequence,
                bound(body.start_time.as_ref()),
                bound(body.end_time.as_ref()),
            )
            .await
            .map_err(|err| status(err, request_id.as_ref()))?;
        let state = (self.audit.clone(), plan, request_id);
        let stream = futures_util::stream::try_unfold(state, |(audit, mut plan, id)| async move {
            // The anchor goes with the first message (alone if nothing follows it).
            let anchor = plan.anchor.take();
            let entries = audit
                .export_batch(&mut plan)
                .await
                .map_err(|err| status(err, id.as_ref()))?;
            if entries.is_empty() && anchor.is_none() {
                return Ok(None);
            }
            let message = pb::ExportResponse {
                entries: entries.into_iter().map(entry).collect(),
                anchor: anchor.map(checkpoint),
            };
            Ok(Some((message, (audit, plan, id))))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_public_keys(
        &self,
        request: Request<pb::ListPublicKeysRequest>,
    ) -> Result<Response<pb::ListPublicKeysResponse>, Status> {
        answer(&request, async {
            Ok(pb::ListPublicKeysResponse {
                keys: self
                    .audit
                    .public_keys()
                    .await?
                    .into_iter()
                    .map(public_key)
                    .collect(),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An internal fault reaches the caller as INTERNAL with the request id only.
    #[test]
    fn internal_faults_show_only_the_request_id() {
        let source = std::io::Error::other("connect to db-primary.internal:5432 refused");
        let id = RequestId("0190-req".into());
        let status = status(AuditError::Internal(Box::new(source)), Some(&id));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("db-primary"));
        assert!(status.message().contains("0190-req"));
    }
}
