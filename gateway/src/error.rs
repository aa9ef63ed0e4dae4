//! Every error the gateway answers, in one place: the gRPC code → HTTP status table (the one
//! source the transcoder and the OpenAPI document both read) and [`ApiError`], the gateway's own
//! refusals, each rendered as the `google.rpc.Status` JSON an upstream's error gets — one shape
//! for every error a REST caller sees (as axum's `examples/error-handling`: one enum with
//! `IntoResponse`; the detail is logged where it happens, the caller gets a generic message).
//!
//! A body's `code` agrees with its HTTP status: where the table maps a code to the status, that
//! code. For statuses no gRPC code maps to, the code a gRPC server gives the same refusal, as
//! long as it maps into the same class (a client's 4xx, never a 5xx):
//! - 413, 431 → RESOURCE_EXHAUSTED: what gRPC answers for a message or metadata over the limit
//!   (and what the client stack returns when an upstream refuses metadata);
//! - 405 → INVALID_ARGUMENT: gRPC's UNIMPLEMENTED (unknown method) maps to 501, a server fault;
//!   the client must change the request;
//! - 415 → INVALID_ARGUMENT: the body is not in a form the operation takes.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;

/// Every gRPC code, in number order (for tables built from [`http_status`]).
pub const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// The HTTP status for a gRPC code, per grpc-gateway's table.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The `google.rpc.Status` JSON object.
pub fn status_json(code: Code, message: &str, details: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "code": code as i32, "message": message, "details": details })
}

/// A refusal or failure of the gateway itself (no upstream answer to relay).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no REST route for this method and path")]
    NoRoute,
    /// The path exists under `allow` only (RFC 9110: say which).
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<Method> },
    #[error("request body too large")]
    BodyTooLarge,
    #[error("request headers too large")]
    HeadersTooLarge,
    #[error("request bodies must be application/json")]
    UnsupportedMediaType,
    /// The request cannot be bound to the method's input (a field violation).
    #[error("invalid request")]
    InvalidRequest { field: String, description: String },
    /// The rate limit; the limiter adds its `RateLimit-*` headers.
    #[error("rate limit exceeded; retry later")]
    RateLimited { wait: Duration },
    /// The gateway's own failure: the caller gets the request id only; the detail was logged
    /// with it where it happened.
    #[error("internal error")]
    Internal { request_id: String },
}

impl ApiError {
    /// The HTTP status and the code its body carries (see the module doc for the choices).
    pub fn status(&self) -> (StatusCode, Code) {
        match self {
            Self::NoRoute => (StatusCode::NOT_FOUND, Code::NotFound),
            Self::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, Code::InvalidArgument)
            }
            Self::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, Code::ResourceExhausted),
            Self::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                Code::ResourceExhausted,
            ),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument)
            }
            Self::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, Code::InvalidArgument),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted),
            Self::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            Self::InvalidRequest { field, description } => serde_json::json!([{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{ "field": field, "description": description }],
            }]),
            Self::RateLimited { wait } => serde_json::json!([{
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format!("{}.{:03}s", wait.as_secs(), wait.subsec_millis()),
            }]),
            _ => serde_json::json!([]),
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Internal { request_id } => {
                ironmesh_interceptors::grpc::internal_message(request_id)
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (http, code) = self.status();
        let body = status_json(code, &self.message(), self.details());
        let mut response = (http, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::MethodNotAllowed { allow } => {
                let allow: Vec<&str> = allow.iter().map(Method::as_str).collect();
                if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                    headers.insert(header::ALLOW, value);
                }
            }
            Self::RateLimited { wait } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_seconds(*wait)));
            }
            _ => {}
        }
        response
    }
}

/// Whole seconds to wait, rounded up, at least 1 (`Retry-After`, `RateLimit-Reset`).
pub fn retry_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_error() -> Vec<ApiError> {
        vec![
            ApiError::NoRoute,
            ApiError::MethodNotAllowed {
                allow: vec![Method::GET],
            },
            ApiError::BodyTooLarge,
            ApiError::HeadersTooLarge,
            ApiError::UnsupportedMediaType,
            ApiError::InvalidRequest {
                field: "f".into(),
                description: "d".into(),
            },
            ApiError::RateLimited {
                wait: Duration::from_millis(1500),
            },
            ApiError::Internal {
                request_id: "r-1".into(),
            },
        ]
    }

    /// Each body's code agrees with its HTTP status: the code the table maps to that status
    /// where there is one, else a code of the same class (never a 5xx code on a 4xx).
    #[test]
    fn codes_agree_with_http_statuses() {
        for error in every_error() {
            let (http, code) = error.status();
            let twins: Vec<Code> = CODES
                .into_iter()
                .filter(|c| http_status(*c) == http)
                .collect();
            if twins.is_empty() {
                assert!(http.is_client_error(), "{error:?}");
                assert!(http_status(code).is_client_error(), "{error:?}: {code:?}");
            } else {
                assert!(twins.contains(&code), "{error:?}: {code:?} for {http}");
            }
        }
    }

    /// One shape for all: `code`, `message`, `details`; INTERNAL says only the request id.
    #[tokio::test]
    async fn every_error_renders_one_status_shape() {
        for error in every_error() {
            let (http, code) = error.status();
            let response = error.into_response();
            assert_eq!(response.status(), http);
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["code", "details", "message"], "{body}");
            assert_eq!(body["code"], code as i32, "{body}");
            if code == Code::Internal {
                assert_eq!(body["message"], "internal error (request id r-1)");
            }
        }
    }
}
