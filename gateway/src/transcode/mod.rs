//! REST → gRPC transcoding, driven only by the descriptors: every `google.api.http` rule is a
//! route; a request becomes the method's input message (body, path variables, query string), goes
//! upstream through the shared client stack, and the reply (or status) comes back as JSON.
//!
//! - `template`: path templates.
//! - `routes`: the route table from the descriptor pool.
//! - `message`: HTTP request → request message.
//! - `codec`: the tonic codec for descriptor-typed messages.
//! - `errors`: status → HTTP status + `google.rpc.Status` JSON.

mod codec;
mod errors;
mod message;
mod routes;
mod template;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ironmesh_interceptors::context::{RequestId, TraceContext};
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage, SerializeOptions, Value};
use tonic::Code;
use tracing::Instrument;

pub use routes::RouteTable;

use crate::upstream::Upstreams;

/// Request bodies larger than this are refused with 413.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The longest deadline a REST caller may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers passed upstream as gRPC metadata (the request id and trace context are set apart).
const FORWARDED: [&str; 2] = ["authorization", "tracestate"];

/// Everything the REST handler needs.
pub struct Transcoder {
    pool: DescriptorPool,
    table: RouteTable,
    upstreams: Upstreams,
}

impl Transcoder {
    /// Reads the route table from our descriptor set; invalid or conflicting rules are an error.
    pub fn new(upstreams: Upstreams) -> Result<Self, String> {
        let pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("cannot read the descriptor set: {e}"))?;
        let table = RouteTable::from_pool(&pool)?;
        tracing::info!(routes = table.len(), "REST routes ready");
        Ok(Self {
            pool,
            table,
            upstreams,
        })
    }
}

/// The REST entry point for every path: one span and one completion line per request, joined to
/// the caller's W3C trace (or starting one), whose context goes upstream so the whole call is
/// one trace; the request id and trace id come back as `x-request-id` and `x-trace-id`.
pub async fn handle(State(transcoder): State<Arc<Transcoder>>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(RequestId::accept)
        .unwrap_or_else(RequestId::mint);
    let incoming = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    let minted = incoming.map_or_else(TraceContext::new_root, |parent| parent.child());
    let span = tracing::info_span!(
        "rest",
        otel.name = %format!("{} {}", request.method(), request.uri().path()),
        otel.kind = "server",
        service = "gateway",
        http.method = %request.method(),
        http.path = %request.uri().path(),
        request_id = %request_id,
        trace_id = %minted.trace_id_hex(),
        span_id = tracing::field::Empty,
    );
    let trace = ironmesh_interceptors::server::join_trace(&span, incoming, minted);
    let mut response = transcode(&transcoder, request, &request_id, &trace)
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| match status {
        500.. => tracing::warn!(http.status = status, latency_ms, "rest failed"),
        400.. => tracing::info!(http.status = status, latency_ms, "rest finished"),
        _ => tracing::debug!(http.status = status, latency_ms, "rest finished"),
    });
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        headers.insert("x-request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&trace.trace_id_hex()) {
        headers.insert("x-trace-id", value);
    }
    response
}

async fn transcode(
    transcoder: &Transcoder,
    request: Request,
    request_id: &RequestId,
    trace: &TraceContext,
) -> Response {
    let (parts, body) = request.into_parts();
    let Some((route, bindings)) = transcoder.table.find(&parts.method, parts.uri.path()) else {
        return errors::local(
            Code::NotFound,
            "no REST route for this method and path",
            None,
        );
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    };
    if !body.is_empty() && !is_json(&parts.headers) {
        let mut response = errors::local(
            Code::InvalidArgument,
            "request bodies must be application/json",
            None,
        );
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return response;
    }
    let message = match message::request(route, &bindings, parts.uri.query(), &body) {
        Ok(message) => message,
        Err(bad) => {
            return errors::local(
                Code::InvalidArgument,
                "invalid request",
                Some((&bad.field, &bad.description)),
            );
        }
    };
    let mut upstream = tonic::Request::new(message);
    for name in FORWARDED {
        if let Some(value) = parts.headers.get(name)
            && let Ok(value) = value.to_str()
            && let Ok(value) = value.parse()
        {
            upstream.metadata_mut().insert(name, value);
        }
    }
    if let Ok(value) = request_id.as_str().parse() {
        upstream.metadata_mut().insert("x-request-id", value);
    }
    if let Ok(value) = trace.to_header().parse() {
        upstream.metadata_mut().insert("traceparent", value);
    }
    if let Some(timeout) = requested_timeout(&parts.headers) {
        upstream.set_timeout(timeout.min(MAX_TIMEOUT));
    }
    let path = format!(
        "/{}/{}",
        route.method.parent_service().full_name(),
        route.method.name()
    );
    let Ok(path) = path.parse() else {
        return errors::local(Code::Internal, "bad route", None);
    };
    let mut grpc = tonic::client::Grpc::new(transcoder.upstreams.channel(route.upstream));
    if let Err(status) = grpc.ready().await {
        return errors::response(&transcoder.pool, &status, request_id.as_str());
    }
    let codec = codec::DynamicCodec::new(route.method.output());
    match grpc.unary(upstream, path, codec).await {
        Ok(reply) => {
            if route.success == StatusCode::NO_CONTENT {
                return StatusCode::NO_CONTENT.into_response();
            }
            let mut response = render(reply.into_inner(), route.response_body.as_deref());
            if response.status() == StatusCode::OK {
                *response.status_mut() = route.success;
            }
            response
        }
        Err(status) => errors::response(&transcoder.pool, &status, request_id.as_str()),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// `Grpc-Timeout` (gRPC syntax) or `X-Request-Timeout` (seconds, may be fractional).
fn requested_timeout(headers: &HeaderMap) -> Option<Duration> {
    if let Some(value) = headers.get("grpc-timeout") {
        return ironmesh_interceptors::grpc::parse_timeout(value);
    }
    let seconds: f64 = headers
        .get("x-request-timeout")?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The reply as JSON, or just its `response_body` field; a `google.api.HttpBody` field is sent
/// as raw bytes with its own content type.
fn render(reply: DynamicMessage, response_body: Option<&str>) -> Response {
    let value = match response_body {
        None => Value::Message(reply),
        Some(field) => match reply.get_field_by_name(field) {
            Some(value) => value.into_owned(),
            None => return errors::local(Code::Internal, "bad response_body", None),
        },
    };
    if let Value::Message(message) = &value
        && message.descriptor().full_name() == "google.api.HttpBody"
    {
        let text = |name: &str| match message.get_field_by_name(name).as_deref() {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let data = match message.get_field_by_name("data").as_deref() {
            Some(Value::Bytes(b)) => b.clone(),
            _ => Default::default(),
        };
        let content_type = Some(text("content_type"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        return ([(header::CONTENT_TYPE, content_type)], Body::from(data)).into_response();
    }
    let json = match &value {
        Value::Message(message) => message
            .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .ok(),
        // response_body names a message field in every rule we serve.
        _ => None,
    };
    match json {
        Some(json) => axum::Json(json).into_response(),
        None => errors::local(Code::Internal, "response encoding failed", None),
    }
}
