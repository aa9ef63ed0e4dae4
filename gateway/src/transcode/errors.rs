//! An upstream's status → HTTP (the table in [`crate::error`]), with a `google.rpc.Status` JSON
//! body (details included: field violations, retry info). INTERNAL, UNKNOWN and DATA_LOSS never
//! carry upstream text; they carry the request id.

use axum::Json;
use axum::response::{IntoResponse, Response};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use tonic::Code;

pub use crate::error::http_status;
use crate::error::status_json;

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
            ironmesh_interceptors::grpc::internal_message(request_id)
        }
        _ => status.message().to_owned(),
    };
    let details = details(pool, status).unwrap_or(serde_json::Value::Array(Vec::new()));
    status_json(code, &message, details)
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
