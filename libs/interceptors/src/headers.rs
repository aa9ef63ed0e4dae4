//! The header names the stack reads and writes on every call, made once, and the one rule for
//! values unique to a call.
//!
//! A `&str` name is parsed (checked and lower-cased) on every `get` or `insert`; these constants
//! are not. Per-call values (request ids, trace parents, remaining deadlines) are marked
//! sensitive, which HTTP/2 sends as never-indexed literals: indexing them cost the HPACK encoder a
//! table insert and an eviction on every call (a quarter of the stack's own instructions in the
//! profile) and pushed out the entries that do repeat, for a value no later call reuses.

use http::{HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// Read in the headers and again in the trailers of every response the stack observes.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// `value`, kept out of HPACK's tables: it belongs to one call only (see the module docs).
pub fn per_call(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}
