//! gRPC status → HTTP, per grpc-gateway's table, with a `google.rpc.Status` JSON body (details
//! included: field violations, retry info). INTERNAL and UNKNOWN never carry upstream text;
//! they carry the request id.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use tonic::Code;

/// The HTTP status for a gRPC code.
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

/// The error response for `status`.
pub fn response(pool: &DescriptorPool, status: &tonic::Status, request_id: &str) -> Response {
    (
        http_status(status.code()),
        Json(body(pool, status, request_id)),
    )
        .into_response()
}

/// The `google.rpc.Status` JSON for `status`.
pub fn body(pool: &DescriptorPool, status: &tonic::Status, request_id: &str) -> serde_json::Value {
    let code = status.code();
    let message = match code {
        Code::Internal | Code::Unknown | Code::DataLoss => {
            format!("internal error (request id {request_id})")
        }
        _ => status.message().to_owned(),
    };
    let details = details(pool, status).unwrap_or(serde_json::Value::Array(Vec::new()));
    serde_json::json!({ "code": code as i32, "message": message, "details": details })
}

/// A JSON error the gateway itself produces (no upstream call).
pub fn local(code: Code, message: &str, field: Option<(&str, &str)>) -> Response {
    let details = match field {
        Some((field, description)) => serde_json::json!([{
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{ "field": field, "description": description }],
        }]),
        None => serde_json::json!([]),
    };
    let body = serde_json::json!({ "code": code as i32, "message": message, "details": details });
    (http_status(code), Json(body)).into_response()
}

/// The status details as JSON (`Any`s rendered with their types), if there are any.
fn details(pool: &DescriptorPool, status: &tonic::Status) -> Option<serde_json::Value> {
    if status.details().is_empty() {
        return None;
    }
    let descriptor = pool.get_message_by_name("google.rpc.Status")?;
    let decoded = DynamicMessage::decode(descriptor, status.details()).ok()?;
    let json = decoded
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .ok()?;
    json.get("details").cloned()
}
