//! The tonic adapter for `ProvisioningService`: each handler reads the caller, converts proto
//! to domain ([`convert`]), calls the [`Queue`] and converts back; every error goes through
//! [`status`] (`grpc/status.rs`), the one mapping to gRPC status. The server stack has already enforced each
//! method's access level (workers' methods are internal: service principals only); "own"
//! requests are the service's check (another customer's is NOT_FOUND).

pub mod convert;
mod status;

pub use status::{status, webhook_status};

use ironmesh_interceptors::auth::{Principal, ROLE_ADMIN, ROLE_OPERATOR};
use ironmesh_interceptors::context::{CallContext, Deadline};
use ironmesh_proto::ironmesh::provisioning::v1::{
    self as pb, provisioning_service_server::ProvisioningService,
};
use ironmesh_runtime::paging::{decode_token, page, page_size};
use ironmesh_runtime::validation::Violations;
use prost::Message as _;
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status};

use crate::credentials::NewCredential;
use crate::domain::{DEFAULT_LEASE, Failure, MAX_WAIT, NewRequest, lease_length};
use crate::service::{Caller, FailureReport, Queue};
use crate::store::ListFilter;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

/// Runs `f` for the caller and maps its error with the request's id.
async fn answer<T, R, F, Fut>(request: Request<R>, f: F) -> Result<Response<T>, Status>
where
    F: FnOnce(Caller, Option<Deadline>, R) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let request_id = CallContext::request_id_of(request.extensions());
    let deadline = CallContext::deadline_of(request.extensions()).map(Deadline);
    let Some(principal) = request.extensions().get::<Principal>() else {
        return Err(Status::unauthenticated("a credential is required"));
    };
    let caller = Caller {
        subject: principal.subject.to_string(),
        operator: principal.has_role(ROLE_OPERATOR) || principal.has_role(ROLE_ADMIN),
    };
    f(caller, deadline, request.into_inner())
        .await
        .map(Response::new)
        .map_err(|failure| status(failure, request_id.as_ref()))
}

/// What a SubmitRequest's idempotency fingerprint covers: the fields the service reads.
fn submit_fingerprint(body: &pb::SubmitRequestRequest) -> String {
    ironmesh_idempotency::fingerprint(&body.encode_to_vec())
}

/// The `ProvisioningService` implementation.
pub struct ProvisioningApi {
    queue: Queue,
}

impl ProvisioningApi {
    pub fn new(queue: Queue) -> Self {
        Self { queue }
    }
}

#[tonic::async_trait]
impl ProvisioningService for ProvisioningApi {
    async fn submit_request(
        &self,
        request: Request<pb::SubmitRequestRequest>,
    ) -> Result<Response<pb::SubmitRequestResponse>, Status> {
        answer(request, |caller, _, body| async move {
            let fingerprint = submit_fingerprint(&body);
            let new = NewRequest::checked(
                body.customer_id,
                body.plan,
                body.priority_tier,
                body.idempotency_key,
                &self.queue.settings().plans,
            )?;
            let (r, p) = self.queue.submit(&caller, new, &fingerprint).await?;
            Ok(pb::SubmitRequestResponse {
                request: Some(convert::request(&r)),
                position: Some(convert::position(&p)),
            })
        })
        .await
    }

    async fn get_request(
        &self,
        request: Request<pb::GetRequestRequest>,
    ) -> Result<Response<pb::GetRequestResponse>, Status> {
        answer(request, |caller, _, body| async move {
            let r = self.queue.request(&caller, &body.request_id).await?;
            Ok(pb::GetRequestResponse {
                request: Some(convert::request(&r)),
            })
        })
        .await
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        answer(request, |caller, _, body| async move {
            let mut v = Violations::default();
            let size = page_size(body.page_size, DEFAULT_PAGE, MAX_PAGE).unwrap_or_else(|e| {
                v.extend(e);
                DEFAULT_PAGE
            });
            let state = convert::state_filter(&mut v, "state", body.state);
            let tier = convert::tier_filter(&mut v, "priority_tier", body.priority_tier);
            if !body.customer_id.is_empty() {
                ironmesh_runtime::validation::check_uuid(&mut v, "customer_id", &body.customer_id);
            }
            let binding = format!("{}|{}|{}", body.state, body.priority_tier, body.customer_id);
            let before = decode_token(&body.page_token, &binding).unwrap_or_else(|e| {
                v.extend(e);
                None
            });
            v.into_result()?;
            let filter = ListFilter {
                customer_id: (!body.customer_id.is_empty()).then_some(body.customer_id),
                state,
                tier,
            };
            let rows = self
                .queue
                .requests(&caller, filter, before.as_deref(), size + 1)
                .await?;
            let (rows, next_page_token) = page(rows, size, &binding, |r| &r.id);
            Ok(pb::ListRequestsResponse {
                requests: rows.iter().map(convert::request).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn get_queue_position(
        &self,
        request: Request<pb::GetQueuePositionRequest>,
    ) -> Result<Response<pb::GetQueuePositionResponse>, Status> {
        answer(request, |caller, _, body| async move {
            let p = self.queue.position(&caller, &body.request_id).await?;
            Ok(pb::GetQueuePositionResponse {
                position: Some(convert::position(&p)),
            })
        })
        .await
    }

    type WatchQueuePositionStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::WatchQueuePositionResponse, Status>> + Send>,
    >;

    async fn watch_queue_position(
        &self,
        request: Request<pb::WatchQueuePositionRequest>,
    ) -> Result<Response<Self::WatchQueuePositionStream>, Status> {
        let request_id = CallContext::request_id_of(request.extensions());
        answer(request, |caller, _, body| async move {
            let updates = self.queue.watch(&caller, &body.request_id).await?;
            let stream = tokio_stream::wrappers::ReceiverStream::new(updates).map(move |update| {
                update
                    .map(|p| pb::WatchQueuePositionResponse {
                        position: Some(convert::position(&p)),
                    })
                    .map_err(|failure| status(failure, request_id.as_ref()))
            });
            Ok(Box::pin(stream) as Self::WatchQueuePositionStream)
        })
        .await
    }

    async fn cancel_request(
        &self,
        request: Request<pb::CancelRequestRequest>,
    ) -> Result<Response<pb::CancelRequestResponse>, Status> {
        answer(request, |caller, _, body| async move {
            if body.reason.chars().count() > 500 {
                return Err(Violations::one("reason", "at most 500 characters").into());
            }
            let r = self.queue.cancel(&caller, &body.request_id).await?;
            Ok(pb::CancelRequestResponse {
                request: Some(convert::request(&r)),
            })
        })
        .await
    }

    async fn submit_credentials(
        &self,
        request: Request<pb::SubmitCredentialsRequest>,
    ) -> Result<Response<pb::SubmitCredentialsResponse>, Status> {
        answer(request, |caller, _, body| async move {
            let new = NewCredential::checked(&body.request_id, body.kind, body.material)?;
            let stored = self
                .queue
                .submit_credentials(&caller, &body.request_id, new)
                .await?;
            Ok(pb::SubmitCredentialsResponse {
                credential: Some(convert::credential_info(&stored)),
            })
        })
        .await
    }

    async fn get_job_credentials(
        &self,
        request: Request<pb::GetJobCredentialsRequest>,
    ) -> Result<Response<pb::GetJobCredentialsResponse>, Status> {
        answer(request, |_caller, _, body| async move {
            let sets = self
                .queue
                .job_credentials(&body.job_id, &body.lease_token)
                .await?;
            Ok(pb::GetJobCredentialsResponse {
                credentials: sets
                    .into_iter()
                    .map(|(stored, material)| pb::JobCredential {
                        info: Some(convert::credential_info(&stored)),
                        material: material.0.into_iter().collect(),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn claim_job(
        &self,
        request: Request<pb::ClaimJobRequest>,
    ) -> Result<Response<pb::ClaimJobResponse>, Status> {
        answer(request, |caller, deadline, body| async move {
            let mut v = Violations::default();
            let worker = body.worker_id.trim();
            if worker.is_empty() || body.worker_id.chars().count() > 128 {
                v.add("worker_id", "1–128 characters");
            } else if body.worker_id.chars().any(char::is_control) {
                v.add("worker_id", "must not contain control characters");
            }
            let lease = convert::from_duration(&mut v, "lease_duration", body.lease_duration);
            let lease = lease_length(&mut v, "lease_duration", lease, DEFAULT_LEASE);
            let wait = convert::from_duration(&mut v, "wait_timeout", body.wait_timeout);
            if wait.is_some_and(|w| w > MAX_WAIT) {
                v.add("wait_timeout", "at most 30 seconds");
            }
            v.into_result()?;
            let claimed = self
                .queue
                .claim(
                    &caller.subject,
                    &body.worker_id,
                    lease,
                    wait.unwrap_or_default(),
                    deadline.map(|d| d.0),
                )
                .await?;
            Ok(pb::ClaimJobResponse {
                job: claimed.map(|(j, r, c)| convert::job(&j, &r, &c)),
            })
        })
        .await
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        answer(request, |_caller, _, body| async move {
            let mut v = Violations::default();
            let lease = convert::from_duration(&mut v, "lease_duration", body.lease_duration);
            let lease = lease.map(|l| lease_length(&mut v, "lease_duration", Some(l), l));
            if body.progress.chars().count() > 200 {
                v.add("progress", "at most 200 characters");
            }
            v.into_result()?;
            let expires = self
                .queue
                .heartbeat(&body.job_id, &body.lease_token, lease, &body.progress)
                .await?;
            Ok(pb::HeartbeatResponse {
                lease_expires_at: Some(convert::timestamp(expires)),
            })
        })
        .await
    }

    async fn complete_job(
        &self,
        request: Request<pb::CompleteJobRequest>,
    ) -> Result<Response<pb::CompleteJobResponse>, Status> {
        answer(request, |caller, _, body| async move {
            let mut v = Violations::default();
            let result = convert::string_map(&mut v, "result", &body.result, 32, 8 * 1024);
            v.into_result()?;
            let r = self
                .queue
                .complete(&caller.subject, &body.job_id, &body.lease_token, &result)
                .await?;
            Ok(pb::CompleteJobResponse {
                request: Some(convert::request(&r)),
            })
        })
        .await
    }

    async fn fail_job(
        &self,
        request: Request<pb::FailJobRequest>,
    ) -> Result<Response<pb::FailJobResponse>, Status> {
        answer(request, |caller, _, body| async move {
            let mut v = Violations::default();
            if !(1..=2000).contains(&body.error.chars().count()) {
                v.add("error", "1–2000 characters");
            }
            let retry_after = convert::from_duration(&mut v, "retry_after", body.retry_after);
            v.into_result()?;
            let report = FailureReport {
                error: body.error,
                retryable: body.retryable,
                retry_after,
            };
            let (r, dead) = self
                .queue
                .fail(&caller.subject, &body.job_id, &body.lease_token, report)
                .await?;
            Ok(pb::FailJobResponse {
                request: Some(convert::request(&r)),
                dead_letter: dead.as_ref().map(convert::dead_letter),
            })
        })
        .await
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        answer(request, |_caller, _, body| async move {
            let mut v = Violations::default();
            let size = page_size(body.page_size, DEFAULT_PAGE, MAX_PAGE).unwrap_or_else(|e| {
                v.extend(e);
                DEFAULT_PAGE
            });
            let binding = body.include_replayed.to_string();
            let before = decode_token(&body.page_token, &binding).unwrap_or_else(|e| {
                v.extend(e);
                None
            });
            v.into_result()?;
            let rows = self
                .queue
                .dead_letters(body.include_replayed, before.as_deref(), size + 1)
                .await?;
            let (rows, next_page_token) = page(rows, size, &binding, |d| &d.id);
            Ok(pb::ListDeadLettersResponse {
                dead_letters: rows.iter().map(convert::dead_letter).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn replay_dead_letter(
        &self,
        request: Request<pb::ReplayDeadLetterRequest>,
    ) -> Result<Response<pb::ReplayDeadLetterResponse>, Status> {
        answer(request, |caller, _, body| async move {
            let (d, r) = self.queue.replay(&caller, &body.dead_letter_id).await?;
            Ok(pb::ReplayDeadLetterResponse {
                dead_letter: Some(convert::dead_letter(&d)),
                request: Some(convert::request(&r)),
            })
        })
        .await
    }

    async fn receive_webhook(
        &self,
        request: Request<pb::ReceiveWebhookRequest>,
    ) -> Result<Response<pb::ReceiveWebhookResponse>, Status> {
        let request_id = CallContext::request_id_of(request.extensions());
        let headers = request.metadata().clone().into_headers();
        let body = request.into_inner();
        let bytes = body.http_body.map(|b| b.data).unwrap_or_default();
        let received = self.queue.receive(&body.source, &headers, &bytes).await;
        let r = received.map_err(|failure| webhook_status(failure, request_id.as_ref()))?;
        Ok(Response::new(pb::ReceiveWebhookResponse {
            webhook_id: r.webhook_id,
            duplicate: r.duplicate,
        }))
    }
}
