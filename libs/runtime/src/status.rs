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

/// Field violations carried in a status's details, at most: the status travels in HTTP/2
/// trailers, which peers (and our own client stack) cap at a few KiB, so a request wrong in a
/// hundred places must not make an answer too large to arrive.
pub const MAX_DETAILED_VIOLATIONS: usize = 20;
/// Field violations spelled out in the message (for grpcurl and logs), at most.
const MAX_MESSAGE_VIOLATIONS: usize = 5;

/// `INVALID_ARGUMENT` with one `google.rpc.BadRequest` field violation per problem (the first
/// [`MAX_DETAILED_VIOLATIONS`]); the message lists the first few too, for callers that do not
/// read details (grpcurl, logs), and says how many more there are.
pub fn invalid_argument(violations: &Violations) -> Status {
    let mut details = ErrorDetails::new();
    for v in violations.iter().take(MAX_DETAILED_VIOLATIONS) {
        details.add_bad_request_violation(&v.field, &v.description);
    }
    let listed: Vec<String> = violations
        .iter()
        .take(MAX_MESSAGE_VIOLATIONS)
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    let mut message = format!("invalid request: {}", listed.join("; "));
    if violations.len() > MAX_MESSAGE_VIOLATIONS {
        message.push_str(&format!(
            " (and {} more)",
            violations.len() - MAX_MESSAGE_VIOLATIONS
        ));
    }
    Status::with_error_details(Code::InvalidArgument, message, details)
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

    /// A request wrong in 200 places still gets an answer small enough for HTTP/2 trailers.
    #[test]
    fn invalid_argument_stays_small_for_many_violations() {
        let mut v = Violations::default();
        for i in 0..200 {
            v.add(
                format!("lines[{i}].quantity"),
                "must be between 1 and 10000",
            );
        }
        let status = invalid_argument(&v);
        let details = status.get_error_details();
        assert_eq!(
            details.bad_request().unwrap().field_violations.len(),
            MAX_DETAILED_VIOLATIONS
        );
        assert!(
            status.message().ends_with("(and 195 more)"),
            "{}",
            status.message()
        );
        assert!(
            status.details().len() < 2048,
            "{} bytes of details",
            status.details().len()
        );
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
