//! A successful reply as HTTP: JSON in the proto3 mapping (or just its `response_body` field),
//! raw bytes for a `google.api.HttpBody`; and the gateway's own INTERNAL when a reply cannot be
//! rendered.

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ironmesh_interceptors::context::RequestId;
use prost_reflect::{DynamicMessage, ReflectMessage, SerializeOptions, Value};

use super::HTTP_BODY;
use crate::error::ApiError;

/// A `google.api.HttpBody` as (content type, bytes).
pub(super) fn http_body(message: &DynamicMessage) -> (String, bytes::Bytes) {
    let content_type = match message.get_field_by_name("content_type").as_deref() {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => "application/octet-stream".to_owned(),
    };
    let data = match message.get_field_by_name("data").as_deref() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => bytes::Bytes::new(),
    };
    (content_type, data)
}

/// The proto3 JSON form of `message` (lowerCamelCase names, 64-bit integers as strings).
pub(super) fn to_json(message: &DynamicMessage) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::new(&mut out);
    message
        .serialize_with_options(&mut serializer, &SerializeOptions::new())
        .ok()?;
    Some(out)
}

/// The reply as JSON, or just its `response_body` field; a `google.api.HttpBody` is sent as raw
/// bytes with its own content type.
pub(super) fn render(
    reply: DynamicMessage,
    response_body: Option<&str>,
    request_id: &RequestId,
) -> Response {
    // response_body names a message field in every rule the route table accepts.
    let value = match response_body {
        None => Some(Value::Message(reply)),
        Some(field) => reply.get_field_by_name(field).map(|v| v.into_owned()),
    };
    let Some(Value::Message(message)) = value else {
        tracing::error!(
            response_body,
            "the reply has no message field named by response_body"
        );
        return internal(request_id);
    };
    if message.descriptor().full_name() == HTTP_BODY {
        let (content_type, data) = http_body(&message);
        return ([(header::CONTENT_TYPE, content_type)], Body::from(data)).into_response();
    }
    match to_json(&message) {
        Some(json) => (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(json),
        )
            .into_response(),
        None => {
            tracing::error!(
                message = message.descriptor().full_name(),
                "the reply cannot be encoded as JSON"
            );
            internal(request_id)
        }
    }
}

/// The gateway's own INTERNAL: the request id, no detail (logged by the caller of this).
pub(super) fn internal(request_id: &RequestId) -> Response {
    ApiError::Internal {
        request_id: request_id.as_str().to_owned(),
    }
    .into_response()
}
