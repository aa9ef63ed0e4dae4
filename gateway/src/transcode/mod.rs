//! REST → gRPC transcoding, driven only by the descriptors: every `google.api.http` rule is a
//! route; a request becomes the method's input message (body, path variables, query string), goes
//! upstream through the shared client stack, and the reply (or status) comes back as JSON — or,
//! for server-streaming methods, as NDJSON (default) or server-sent events.
//!
//! - `body`: reading request bodies up to the limit (and draining refused ones).
//! - `template`: path templates.
//! - `routes`: the route table from the descriptor pool.
//! - `message`: HTTP request → request message.
//! - `codec`: the tonic codec for descriptor-typed messages.
//! - `errors`: an upstream's status → HTTP status + `google.rpc.Status` JSON.
//! - `reply`: a unary reply as JSON or raw bytes.
//! - `stream`: server-streaming replies as NDJSON or SSE.

mod body;
mod codec;
mod errors;
mod message;
mod reply;
mod routes;
mod stream;
mod template;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ironmesh_interceptors::client::GrpcChannel;
use ironmesh_interceptors::context::{RequestId, TraceContext};
use ironmesh_interceptors::headers::{TRACEPARENT, TRACESTATE, X_REQUEST_ID};
use ironmesh_runtime::Config;

use crate::config::GatewayConfig;
use prost_reflect::DescriptorPool;
use tonic::metadata::MetadataMap;
use tracing::Instrument;

pub use message::{is_text_wkt, is_wrapper};
pub use routes::{BodyTarget, HTTP_BODY, Route, RouteTable};

use crate::error::ApiError;
use crate::ratelimit::ClientAddress;

/// What the gateway exposes: descriptors, and for each gRPC service in them the channel that
/// reaches it. Every service with an HTTP rule must have a channel.
pub struct Api {
    pool: DescriptorPool,
    channels: HashMap<String, GrpcChannel>,
}

impl Api {
    /// No services routed yet.
    pub fn new(pool: DescriptorPool) -> Self {
        Self {
            pool,
            channels: HashMap::new(),
        }
    }

    /// Sends calls of `service` (full name, `pkg.Service`) down `channel`.
    pub fn route(mut self, service: &str, channel: GrpcChannel) -> Self {
        self.channels.insert(service.to_owned(), channel);
        self
    }
}

/// Everything the REST handler needs.
pub struct Transcoder {
    /// Ours, for `google.rpc` error details, whatever contract the routes come from.
    status_pool: DescriptorPool,
    table: RouteTable,
    channels: HashMap<String, GrpcChannel>,
    forward_request: Vec<HeaderName>,
    forward_response: Vec<HeaderName>,
    max_body_bytes: usize,
    /// The longest deadline a REST caller may ask for (`max_deadline_ms`, as for gRPC callers).
    max_timeout: Duration,
}

impl Transcoder {
    /// Reads the route table from `api`'s descriptors; invalid or conflicting rules, or a rule
    /// of a service without a channel, are an error.
    pub fn new(api: Api, config: &Config, gateway: &GatewayConfig) -> Result<Self, String> {
        let table = RouteTable::from_pool(&api.pool)?;
        for route in table.iter() {
            let service = route.method.parent_service();
            if !api.channels.contains_key(service.full_name()) {
                return Err(format!(
                    "{}: no upstream serves {}",
                    route.method.full_name(),
                    service.full_name()
                ));
            }
        }
        let names = |list: &[String]| -> Result<Vec<HeaderName>, String> {
            list.iter()
                .map(|name| HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string()))
                .collect()
        };
        tracing::info!(routes = table.len(), "REST routes ready");
        let status_pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("cannot read the descriptors: {e}"))?;
        Ok(Self {
            status_pool,
            table,
            channels: api.channels,
            forward_request: names(&gateway.forward_request_headers)?,
            forward_response: names(&gateway.forward_response_headers)?,
            max_body_bytes: gateway.max_body_bytes,
            max_timeout: Duration::from_millis(config.max_deadline_ms),
        })
    }

    /// The route table.
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// The request headers forwarded upstream (beyond those always forwarded) and the response
    /// metadata returned as headers.
    pub fn forwarded_headers(&self) -> (&[HeaderName], &[HeaderName]) {
        (&self.forward_request, &self.forward_response)
    }

    /// Finds the route of `request` once, for the metrics layer and the handler both; returns
    /// its index in [`Self::table`].
    pub fn match_route(&self, request: &mut Request) -> Option<usize> {
        let (index, bindings) = self
            .table
            .find_index(request.method(), request.uri().path())?;
        request.extensions_mut().insert(Matched(index, bindings));
        Some(index)
    }
}

/// The route a request matched (index into the table) and its path bindings.
#[derive(Clone)]
struct Matched(usize, Vec<(String, String)>);

/// The REST entry point for every path: one completion line per request (and a span when traces
/// are exported and it is sampled), joined to the caller's W3C trace (or starting one), whose
/// context goes upstream so the whole call is one trace; the request id and trace id come back
/// as `x-request-id` and `x-trace-id`.
pub async fn handle(State(transcoder): State<Arc<Transcoder>>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let request_id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(RequestId::accept)
        .unwrap_or_else(RequestId::mint);
    let incoming = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    // The URI's clone shares its bytes: no copy of the path for the log line.
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let path = uri.path();
    // As in the server stack: a span only when traces are exported and this request is sampled;
    // its fields are all set at creation (a later `record` re-renders the span's log fields).
    let (trace, span) = ironmesh_interceptors::server::start_trace(incoming, |minted| {
        tracing::info_span!(
            "rest",
            service = "gateway",
            http.method = %method,
            http.path = %path,
            request_id = %request_id,
            trace_id = %minted.trace_id_hex(),
            span_id = tracing::field::Empty,
            otel.name = %format_args!("{method} {path}"),
            otel.kind = "server",
        )
    });
    let mut response = match &span {
        Some(span) => {
            transcode(&transcoder, request, &request_id, &trace)
                .instrument(span.clone())
                .await
        }
        None => transcode(&transcoder, request, &request_id, &trace).await,
    };
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let log = || {
        macro_rules! line {
            ($level:ident, $message:literal) => {
                tracing::$level!(
                    http.status = status,
                    latency_ms,
                    service = "gateway",
                    http.method = %method,
                    http.path = %path,
                    request_id = %request_id,
                    trace_id = %trace.trace_id_hex(),
                    $message
                )
            };
        }
        match status {
            500.. => line!(warn, "rest failed"),
            400.. => line!(info, "rest finished"),
            _ => line!(debug, "rest finished"),
        }
    };
    match &span {
        Some(span) => span.in_scope(log),
        None => log(),
    }
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
    let (mut parts, body) = request.into_parts();
    let matched = match parts.extensions.remove::<Matched>() {
        Some(Matched(index, bindings)) => transcoder.table.get(index).map(|r| (r, bindings)),
        None => transcoder.table.find(&parts.method, parts.uri.path()),
    };
    let Some((route, bindings)) = matched else {
        let allow = transcoder.table.allowed_methods(parts.uri.path());
        if allow.is_empty() {
            return ApiError::NoRoute.into_response();
        }
        return ApiError::MethodNotAllowed { allow }.into_response();
    };
    let body = match body::read(&parts.headers, body, transcoder.max_body_bytes).await {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !route.raw_body && !body.is_empty() && !content_type.is_some_and(is_json) {
        return ApiError::UnsupportedMediaType.into_response();
    }
    let message = match message::request(route, &bindings, parts.uri.query(), &body, content_type) {
        Ok(message) => message,
        Err(bad) => {
            return ApiError::InvalidRequest {
                field: bad.field,
                description: bad.description,
            }
            .into_response();
        }
    };
    let mut upstream = tonic::Request::new(message);
    forward_request_headers(
        transcoder,
        &parts.headers,
        upstream.metadata_mut(),
        request_id,
        trace,
    );
    if let Some(ClientAddress(address)) = parts.extensions.get::<ClientAddress>()
        && let Ok(value) = address.to_string().parse()
    {
        upstream.metadata_mut().insert("x-forwarded-for", value);
    }
    if let Some(timeout) = requested_timeout(&parts.headers) {
        upstream.set_timeout(timeout.min(transcoder.max_timeout));
    }
    let path = route.grpc_path.clone();
    let Some(channel) = transcoder
        .channels
        .get(route.method.parent_service().full_name())
    else {
        // Transcoder::new checks every route has a channel; reaching this is a bug.
        tracing::error!(method = %route.method.full_name(), "no channel for a routed service");
        return reply::internal(request_id);
    };
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Err(status) = grpc.ready().await {
        return errors::response(&transcoder.status_pool, &status, request_id.as_str());
    }
    let codec = codec::DynamicCodec::new(route.method.output());
    if route.streaming {
        let format = stream::Format::negotiate(&parts.headers, route.raw_response);
        return match grpc.server_streaming(upstream, path, codec).await {
            Ok(reply) => {
                let (metadata, messages, _) = reply.into_parts();
                let mut response = stream::response(
                    format,
                    messages,
                    transcoder.status_pool.clone(),
                    request_id.as_str().to_owned(),
                );
                forward_response_headers(transcoder, &metadata, response.headers_mut());
                response
            }
            Err(status) => errors::response(&transcoder.status_pool, &status, request_id.as_str()),
        };
    }
    match grpc.unary(upstream, path, codec).await {
        Ok(reply) => {
            let (metadata, reply, _) = reply.into_parts();
            let mut response = if route.success == StatusCode::NO_CONTENT {
                StatusCode::NO_CONTENT.into_response()
            } else {
                let mut response = reply::render(reply, route.response_body.as_deref(), request_id);
                if response.status() == StatusCode::OK {
                    *response.status_mut() = route.success;
                }
                response
            };
            forward_response_headers(transcoder, &metadata, response.headers_mut());
            response
        }
        Err(status) => {
            let mut response =
                errors::response(&transcoder.status_pool, &status, request_id.as_str());
            forward_response_headers(transcoder, status.metadata(), response.headers_mut());
            response
        }
    }
}

/// `authorization`, the request id, the trace context (the gateway's span as parent) and the
/// configured allow-list go upstream as metadata; nothing else does.
fn forward_request_headers(
    transcoder: &Transcoder,
    headers: &HeaderMap,
    metadata: &mut MetadataMap,
    request_id: &RequestId,
    trace: &TraceContext,
) {
    let always = [header::AUTHORIZATION, TRACESTATE];
    for name in always.iter().chain(&transcoder.forward_request) {
        if let Some(value) = headers.get(name)
            && let Ok(value) = value.to_str()
            && let Ok(value) = value.parse()
            && let Ok(key) = tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes())
        {
            metadata.insert(key, value);
        }
    }
    // Per-call values: never indexed by HPACK (see `ironmesh_interceptors::headers`).
    let per_call = |text: &str| {
        let mut value: tonic::metadata::MetadataValue<_> = text.parse().ok()?;
        value.set_sensitive(true);
        Some(value)
    };
    if let Some(value) = per_call(request_id.as_str()) {
        metadata.insert("x-request-id", value);
    }
    if let Some(value) = per_call(&trace.to_header()) {
        metadata.insert("traceparent", value);
    }
}

/// Response metadata on the allow-list becomes response headers.
fn forward_response_headers(transcoder: &Transcoder, metadata: &MetadataMap, out: &mut HeaderMap) {
    let headers = metadata.as_ref();
    for name in &transcoder.forward_response {
        for value in headers.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
}

fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
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
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds.min(1e6)))
}
