//! Provisioning's one mapping of errors to gRPC status: [`Failure`]s of every operation, and
//! [`WebhookFailure`]s of ReceiveWebhook (a malformed header is INVALID_ARGUMENT, a signature
//! that does not verify UNAUTHENTICATED). Internal faults are logged with the request id, never
//! shown.

use ironmesh_interceptors::context::RequestId;
use ironmesh_runtime::status as statuses;
use ironmesh_runtime::validation::Violations;
use tonic::Status;
use tonic_types::{ErrorDetails, PreconditionViolation, StatusExt as _};

use crate::domain::{Failure, LeaseLoss};
use crate::inbound::Refusal;
use crate::service::WebhookFailure;

/// The one mapping to gRPC status; internal faults are logged with the request id, never shown.
pub fn status(failure: Failure, request_id: Option<&RequestId>) -> Status {
    match failure {
        Failure::Invalid(violations) => statuses::invalid_argument(&violations),
        Failure::NotFound(what) => Status::not_found(format!("{what} not found")),
        Failure::Denied(why) => Status::permission_denied(why),
        Failure::Precondition(kind, subject, description) => statuses::precondition_failure(
            &description,
            &[PreconditionViolation::new(kind, &subject, &description)],
        ),
        Failure::Lease(loss) => {
            let mut details = ErrorDetails::new();
            details.set_error_info(loss.reason(), "provisioning.ironmesh", []);
            let message = match loss {
                LeaseLoss::Lost => "the lease is no longer held by this token",
                LeaseLoss::Cancelled => "the request was cancelled",
            };
            Status::with_error_details(tonic::Code::FailedPrecondition, message, details)
        }
        Failure::Internal(fault) => statuses::internal(&*fault, request_id),
    }
}

/// ReceiveWebhook's errors: the signature's verdict, else [`status`].
pub fn webhook_status(failure: WebhookFailure, request_id: Option<&RequestId>) -> Status {
    match failure {
        WebhookFailure::Refused(Refusal::Malformed(why)) => {
            statuses::invalid_argument(&Violations::one("headers", why))
        }
        WebhookFailure::Refused(Refusal::Unverified(why)) => {
            Status::unauthenticated(format!("the webhook is not verified: {why}"))
        }
        WebhookFailure::Other(failure) => status(failure, request_id),
    }
}
