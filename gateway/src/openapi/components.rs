//! `components`: the error responses (generated from the gateway's own code → HTTP table and
//! its local refusals, so the document lists exactly the statuses the gateway answers), the
//! response headers, and the security schemes.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{SCHEMAS, STATUS};
use crate::error::{ApiError, CODES, http_status};

/// One documented error status.
pub(super) struct ErrorStatus {
    pub(super) status: StatusCode,
    /// The component name (`BadRequest`, from the reason phrase).
    pub(super) name: String,
    pub(super) description: String,
    /// Only operations that take a body can get it (413, 415).
    pub(super) body_only: bool,
}

/// What an upstream's codes mean at some statuses, beyond their names.
fn upstream_note(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "missing or invalid credentials",
        403 => "the caller may not call this method",
        500 => "the message carries only the request id",
        501 => "the method is not built yet",
        503 => "the service cannot be reached; retry with backoff",
        504 => "the deadline passed before the service answered",
        _ => "",
    }
}

/// The gateway's own refusals an operation can meet, and when (405 cannot: a documented
/// operation's method exists at its path).
fn local_errors() -> Vec<(ApiError, &'static str, bool)> {
    vec![
        (
            ApiError::InvalidRequest {
                field: String::new(),
                description: String::new(),
            },
            "a request the transcoder cannot bind (details carry a `google.rpc.BadRequest` field \
             violation)",
            false,
        ),
        (
            ApiError::NoRoute,
            "no REST route for this method and path",
            false,
        ),
        (
            ApiError::BodyTooLarge,
            "the request body is larger than the gateway accepts",
            true,
        ),
        (
            ApiError::UnsupportedMediaType,
            "the request body is not of a media type this operation takes",
            true,
        ),
        (
            ApiError::HeadersTooLarge,
            "the request headers are larger than the gateway accepts",
            false,
        ),
        (
            ApiError::RateLimited {
                wait: std::time::Duration::ZERO,
            },
            "the gateway's rate limit (then with `Retry-After` and `RateLimit-*`)",
            false,
        ),
        (
            ApiError::Internal {
                request_id: String::new(),
            },
            "the gateway's own failure",
            false,
        ),
    ]
}

/// Every error status an operation may answer, in status order: each status the code table
/// maps a code to (but 200, and 499 for CANCELLED, which only a caller that went away gets),
/// and each of the gateway's own refusals.
pub(super) fn error_statuses() -> Vec<ErrorStatus> {
    let mut statuses: Vec<StatusCode> = CODES
        .into_iter()
        .map(http_status)
        .chain(local_errors().iter().map(|(error, _, _)| error.status().0))
        .filter(|status| status.is_client_error() || status.is_server_error())
        .filter(|status| status.canonical_reason().is_some())
        .collect();
    statuses.sort();
    statuses.dedup();
    statuses
        .into_iter()
        .map(|status| {
            let codes: Vec<&str> = CODES
                .into_iter()
                .filter(|code| http_status(*code) == status)
                .map(ironmesh_interceptors::grpc::code_name)
                .collect();
            let mut parts = Vec::new();
            if !codes.is_empty() {
                let mut named = match codes.as_slice() {
                    [one] => (*one).to_owned(),
                    [init @ .., last] => format!("{} or {last}", init.join(", ")),
                    [] => String::new(),
                };
                let note = upstream_note(status);
                if !note.is_empty() {
                    named.push_str(&format!(": {note}"));
                }
                parts.push(named);
            }
            let locals: Vec<_> = local_errors()
                .into_iter()
                .filter(|(error, _, _)| error.status().0 == status)
                .collect();
            for (error, when, _) in &locals {
                let code = ironmesh_interceptors::grpc::code_name(error.status().1);
                parts.push(format!("{when} ({code})"));
            }
            let body_only =
                codes.is_empty() && !locals.is_empty() && locals.iter().all(|(_, _, b)| *b);
            let reason = status.canonical_reason().unwrap_or("Error");
            ErrorStatus {
                status,
                name: reason.split([' ', '-']).collect(),
                description: format!("{}.", capitalise(&parts.join("; or "))),
                body_only,
            }
        })
        .collect()
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `components/responses`: one per error status, and `Error` for the rest.
pub(super) fn error_responses() -> Value {
    let body = json!({ "schema": { "$ref": format!("{SCHEMAS}{STATUS}") } });
    let mut responses = Map::new();
    let documented = error_statuses()
        .into_iter()
        .map(|error| (Some(error.status), error.name, error.description));
    let default = (
        None,
        "Error".to_owned(),
        "Any other error status.".to_owned(),
    );
    for (status, name, description) in documented.chain([default]) {
        let mut headers = common_headers();
        if status == Some(StatusCode::TOO_MANY_REQUESTS) {
            for name in ["Retry-After", "RateLimit-Reset"] {
                headers[name] = json!({ "$ref": format!("#/components/headers/{name}") });
            }
        }
        responses.insert(
            name,
            json!({
                "description": description,
                "headers": headers,
                "content": { "application/json": body },
            }),
        );
    }
    Value::Object(responses)
}

/// `components/securitySchemes`: access tokens and API keys, both bearer tokens.
pub(super) fn security_schemes() -> Value {
    json!({
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from `POST /v1/auth/login` or `/v1/auth/refresh`.",
        },
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "imk_<prefix>_<secret>",
            "description": "An API key from `POST /v1/auth/api-keys`, sent as \
                `Authorization: Bearer imk_…`.",
        },
    })
}

/// The headers every response may carry.
pub(super) fn common_headers() -> Value {
    let mut headers = Map::new();
    for name in [
        "X-Request-Id",
        "X-Trace-Id",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Policy",
    ] {
        headers.insert(
            name.to_owned(),
            json!({ "$ref": format!("#/components/headers/{name}") }),
        );
    }
    Value::Object(headers)
}

/// `components/headers`.
pub(super) fn headers() -> Value {
    json!({
        "X-Request-Id": {
            "description": "The request id: the caller's `X-Request-Id` when acceptable, else a \
                new one. Logged with every line the request causes.",
            "schema": { "type": "string" },
        },
        "X-Trace-Id": {
            "description": "The W3C trace id of the request (joined to the caller's \
                `traceparent` when sent).",
            "schema": { "type": "string", "pattern": "^[0-9a-f]{32}$" },
        },
        "RateLimit-Limit": integer_header("Requests allowed in a burst."),
        "RateLimit-Remaining": integer_header("Requests left in the current burst."),
        "RateLimit-Reset": integer_header("Seconds until a request is allowed again."),
        "RateLimit-Policy": {
            "description": "The budget that applied: `<limit>;w=<seconds>;name=\"<group>\"`.",
            "schema": { "type": "string" },
        },
        "Retry-After": integer_header("Seconds to wait before retrying."),
    })
}

/// A header whose value is a count (requests, seconds).
pub(super) fn integer_header(description: &str) -> Value {
    json!({ "description": description, "schema": { "type": "integer", "minimum": 0 } })
}
