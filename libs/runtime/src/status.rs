//! Constructors for the statuses every service returns, so the wording and the rules (no internal
//! detail to callers) live in one place. A service's one `Error → Status` function calls these.

use ironmesh_interceptors::context::RequestId;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, PreconditionViolation, StatusExt};

use crate::validation::Violations;

/// An RPC whose feature is not built yet. The message names the feature so a caller knows this
/// is a gap, not a failure.
pub fn not_yet(feature: &str) -> Status {
    Status::unimplemented(format!("not implemented yet: {feature}"))
}

/// `INVALID_ARGUMENT` with one `google.rpc.BadRequest` field violation per problem; the message
/// lists them too, for callers that do not read details (grpcurl, logs).
pub fn invalid_argument(violations: &Violations) -> Status {
    let mut details = ErrorDetails::new();
    for v in violations.iter() {
        details.add_bad_request_violation(&v.field, &v.description);
    }
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {violations}"),
        details,
    )
}

/// `FAILED_PRECONDITION` with a `google.rpc.PreconditionFailure` listing what is not so (e.g.
/// type `INSUFFICIENT_STOCK`, subject the sku).
pub fn precondition_failure(message: &str, violations: &[PreconditionViolation]) -> Status {
    let mut details = ErrorDetails::new();
    for v in violations {
        details.add_precondition_failure_violation(&v.r#type, &v.subject, &v.description);
    }
    Status::with_error_details(Code::FailedPrecondition, message, details)
}

/// The generic `INTERNAL`: `error`'s whole chain goes to the log with the request id, the caller
/// learns only the id to quote.
pub fn internal(
    error: &(dyn std::error::Error + 'static),
    request_id: Option<&RequestId>,
) -> Status {
    let id = request_id.map(RequestId::as_str).unwrap_or_default();
    tracing::error!(
        request_id = %id,
        error = %ironmesh_interceptors::grpc::error_chain(error),
        "internal error"
    );
    ironmesh_interceptors::grpc::internal_error(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field() {
        let mut v = Violations::one("product.sku", "required");
        v.add("product.name", "1–200 characters");
        let status = invalid_argument(&v);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .expect("BadRequest")
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["product.sku", "product.name"]);
    }

    #[test]
    fn precondition_failure_lists_subjects() {
        let status = precondition_failure(
            "insufficient stock",
            &[PreconditionViolation::new(
                "INSUFFICIENT_STOCK",
                "SKU-1",
                "2 available",
            )],
        );
        assert_eq!(status.code(), Code::FailedPrecondition);
        let failure = status
            .get_error_details()
            .precondition_failure()
            .cloned()
            .unwrap();
        assert_eq!(failure.violations[0].subject, "SKU-1");
    }

    #[test]
    fn internal_hides_the_error() {
        let err = std::io::Error::other("db at 10.0.0.7:5432 refused");
        let status = internal(&err, None);
        assert_eq!(status.code(), Code::Internal);
        assert!(
            !status.message().contains("10.0.0.7"),
            "{}",
            status.message()
        );
    }
}
