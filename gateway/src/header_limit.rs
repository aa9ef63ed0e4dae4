//! Oversized request headers are the edge's to refuse: 431 with the one error shape, before any
//! other work (rate limiting hashes the credential, the transcoder forwards it upstream).
//!
//! Without it the upstream refused them instead, and badly: HTTP/2 servers answer a header list
//! over their limit (16 KiB for tonic) with a bare 431 that tonic reads as UNKNOWN (→ 500), and
//! one far over it with a GOAWAY that tears down the gateway's connection to that upstream —
//! every call in flight on it included.
//!
//! The size is counted as HTTP/2 counts `SETTINGS_MAX_HEADER_LIST_SIZE` (RFC 9113 §6.5.2: name
//! and value lengths plus 32 per field), the same whether the client spoke HTTP/1.1 or h2, and the
//! same measure the upstream applies to what the gateway forwards.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The default limit on a request's header list: what an upstream accepts (tonic's default,
/// 16 KiB) less 1 KiB of headroom for the metadata the gateway adds (pseudo-headers,
/// `traceparent`, `x-request-id`, `x-forwarded-for`, `grpc-timeout`), so a request the gateway
/// admits is not refused upstream for its size.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 15 * 1024;

/// Per-field overhead in the HTTP/2 accounting.
const FIELD_OVERHEAD: usize = 32;

/// The header list size of `headers`, as HTTP/2 counts it.
pub fn header_list_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + FIELD_OVERHEAD)
        .sum()
}

/// The axum middleware: 431 for a header list over `limit` bytes.
pub async fn enforce(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let size = header_list_size(request.headers());
    if size > limit {
        tracing::info!(
            service = "gateway",
            http.path = %request.uri().path(),
            size,
            limit,
            "request headers over the limit"
        );
        return ApiError::HeadersTooLarge.into_response();
    }
    next.run(request).await
}
