//! Every [`AuthError`] → gRPC status, in one function ([`status`]), and [`answer`], which every
//! handler goes through so none maps errors on its own.

use ironmesh_interceptors::context::{CallContext, RequestId};
use ironmesh_runtime::validation::Violations;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::AuthError;

/// The one mapping from [`AuthError`] to gRPC status. Internal errors are logged with the
/// request id and never shown to the caller.
pub fn status(err: AuthError, request_id: Option<&RequestId>) -> Status {
    match err {
        AuthError::Invalid(violations) => {
            // The shared constructor: the same wording and detail cap as every other service.
            let mut shared = Violations::default();
            for v in violations {
                shared.add(v.field, v.description);
            }
            ironmesh_runtime::status::invalid_argument(&shared)
        }
        AuthError::InvalidCredentials => Status::unauthenticated("invalid email or password"),
        AuthError::InvalidApiKey => Status::unauthenticated("API key is not valid"),
        AuthError::EmailTaken => {
            Status::already_exists("an account with this email already exists")
        }
        AuthError::NotFound => Status::not_found("not found"),
        AuthError::Locked => Status::permission_denied("the account is locked"),
        AuthError::InvalidRefreshToken => Status::unauthenticated("refresh token is not valid"),
        AuthError::RefreshRace => {
            Status::aborted("refresh token was just used by another request; use the newest tokens")
        }
        AuthError::Unauthenticated => Status::unauthenticated("missing or invalid credentials"),
        AuthError::SecondFactorRequired => {
            let mut details = ErrorDetails::new();
            details.set_error_info("SECOND_FACTOR_REQUIRED", "auth.ironmesh", []);
            Status::with_error_details(
                tonic::Code::Unauthenticated,
                "a TOTP code or recovery code is required",
                details,
            )
        }
        AuthError::TotpAlreadyEnabled => Status::failed_precondition("TOTP is already enabled"),
        AuthError::TotpNotPending => {
            Status::failed_precondition("no TOTP enrollment is waiting; call EnrollTotp first")
        }
        AuthError::NeedsUserSession => {
            Status::permission_denied("this needs a logged-in user, not an API key")
        }
        AuthError::WrongService => {
            Status::permission_denied("this method is not open to the calling service")
        }
        AuthError::TooManyAttempts(wait) => {
            let details = ErrorDetails::with_retry_info(Some(wait));
            Status::with_error_details(
                tonic::Code::ResourceExhausted,
                format!(
                    "too many failed attempts; try again in {} s",
                    wait.as_secs().max(1)
                ),
                details,
            )
        }
        AuthError::Busy(wait) => Status::with_error_details(
            tonic::Code::ResourceExhausted,
            format!(
                "too many logins at once; try again in {} s",
                wait.as_secs().max(1)
            ),
            ErrorDetails::with_retry_info(Some(wait)),
        ),
        AuthError::Internal(fault) => {
            // The caller learns only that it was internal and which request to quote; the
            // fault and its whole source chain go to the log under the same id.
            let id = request_id.map(|id| id.to_string()).unwrap_or_default();
            tracing::error!(request_id = %id, error = %crate::error_chain(&fault), "internal error");
            ironmesh_interceptors::grpc::internal_error(&id)
        }
    }
}

/// Runs `f` and maps its error with the request's id.
pub async fn answer<T, R, F>(request: &Request<R>, f: F) -> Result<Response<T>, Status>
where
    F: std::future::Future<Output = Result<T, AuthError>>,
{
    let request_id = CallContext::request_id_of(request.extensions());
    f.await
        .map(Response::new)
        .map_err(|err| status(err, request_id.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Fault;

    /// An internal fault reaches the caller as INTERNAL with the request id only: none of its
    /// text (here an internal host name inside the source chain) is in the status.
    #[test]
    fn internal_faults_show_only_the_request_id() {
        let source = std::io::Error::other("connect to db-primary.internal:5432 refused");
        let fault = Fault::Store(Box::new(source));
        let id = RequestId("0190-req".into());
        let status = status(AuthError::Internal(fault), Some(&id));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error (request id 0190-req)");
        assert!(status.details().is_empty());
    }

    #[test]
    fn violations_become_bad_request_details() {
        let status = status(AuthError::invalid("email", "required"), None);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("a BadRequest detail");
        assert_eq!(bad.field_violations[0].field, "email");
    }
}
