//! Trace context: one span per call, joined to the caller's W3C trace (`traceparent`,
//! `tracestate`) or starting a new one. The span carries `rpc.system`, `rpc.service`,
//! `rpc.method`, `request_id`, `trace_id`, and `rpc.grpc.status_code` once the call ends; the
//! handler runs inside it, so its own spans are children. When OpenTelemetry is installed
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`), the span is exported with the caller's span as parent and its
//! ids are the ones propagated onward; without it, the ids are minted here.
//!
//! A line is logged when each call ends: DEBUG for OK, INFO for caller errors, WARN for server
//! errors (a log line per OK call would cost more than the call at load).

use std::future::Future;
use std::time::Instant;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState as OtelTraceState,
};
use tonic::Code;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::around::{Around, AroundLayer};
use crate::context::{RequestId, TraceContext, TraceState};
use crate::grpc::{code_name, error_code, observe};
use crate::policy::PolicyTable;
use crate::{BoxError, BoxFuture, Request, Response};

/// Spans for the calls of `service`; names from `policy`.
#[derive(Clone, Debug)]
pub struct Spans {
    pub service: &'static str,
    pub policy: PolicyTable,
}

pub type TraceLayer = AroundLayer<Spans>;

impl Around for Spans {
    fn around<F, Fut>(&self, mut request: Request, next: F) -> BoxFuture<Response>
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, BoxError>> + Send + 'static,
    {
        let started = Instant::now();
        let (grpc_service, grpc_method) = self.policy.labels(request.uri().path());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let incoming = request
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse);
        let tracestate = request.headers().get("tracestate").cloned();

        // Everything known now is set at creation: the log formatter re-renders a span's
        // fields on every later `record`, which is the most expensive thing this layer does.
        let exporting = exporting();
        let own = match incoming {
            Some(parent) => parent.child(),
            None => TraceContext::new_root(),
        };
        let span = tracing::info_span!(
            "rpc",
            rpc.service = %grpc_service,
            rpc.method = %grpc_method,
            service = self.service,
            request_id = %request_id,
            trace_id = %own.trace_id_hex(),
            span_id = Empty,
            otel.name = Empty,
            otel.kind = Empty,
            rpc.system = Empty,
            rpc.grpc.status_code = Empty,
        );
        if exporting {
            span.record("otel.name", format!("{grpc_service}/{grpc_method}"));
            span.record("otel.kind", "server");
            span.record("rpc.system", "grpc");
        }
        let own = join(&span, incoming, own);
        request.extensions_mut().insert(own);
        if let Some(state) = tracestate {
            request.extensions_mut().insert(TraceState(state));
        }

        let future = next(request).instrument(span.clone());
        Box::pin(async move {
            match future.await {
                Ok(response) => Ok(observe(
                    response,
                    Box::new(move |code| finish(&span, code, started)),
                )),
                Err(err) => {
                    finish(&span, error_code(&*err), started);
                    Err(err)
                }
            }
        })
    }
}

/// Records the outcome on the span (for export) and logs the call's completion inside it.
fn finish(span: &tracing::Span, code: Code, started: Instant) {
    if exporting() {
        span.record("rpc.grpc.status_code", code as i32);
    }
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let name = code_name(code);
    span.in_scope(|| match code {
        Code::Ok => tracing::debug!(grpc.code = name, latency_ms, "rpc finished"),
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable => {
            tracing::warn!(grpc.code = name, latency_ms, "rpc failed")
        }
        _ => tracing::info!(grpc.code = name, latency_ms, "rpc finished"),
    });
}

static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Declares that spans are exported (an OpenTelemetry layer is installed): spans then carry the
/// OpenTelemetry fields and ids. Called once by the telemetry setup.
pub fn set_exporting(on: bool) {
    EXPORTING.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether spans are exported (see [`set_exporting`]): OpenTelemetry-only span fields are
/// worth filling only then.
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Makes `span` the caller's child in the trace and returns the context to propagate onward.
/// `minted` (a child of `incoming`, or a new root) is that context when nothing is exported;
/// when spans are exported, OpenTelemetry's ids for `span` are used instead, so exported parent
/// links match what is propagated. `span` must have a `trace_id` field holding `minted`'s id and
/// an empty `span_id` field.
pub fn join(
    span: &tracing::Span,
    incoming: Option<TraceContext>,
    minted: TraceContext,
) -> TraceContext {
    if !exporting() {
        return minted;
    }
    if let Some(parent) = incoming {
        let _ = span.set_parent(remote_context(&parent));
    }
    let ids = exported_ids(span).unwrap_or(minted);
    if ids.trace_id != minted.trace_id {
        // A new trace started by OpenTelemetry: log its id, not the one minted here.
        span.record("trace_id", ids.trace_id_hex());
    }
    span.record("span_id", ids.span_id_hex());
    ids
}

/// The caller's span as an OpenTelemetry remote parent.
fn remote_context(parent: &TraceContext) -> opentelemetry::Context {
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let span_context = SpanContext::new(
        TraceId::from_bytes(parent.trace_id),
        SpanId::from_bytes(parent.span_id),
        flags,
        true,
        OtelTraceState::default(),
    );
    opentelemetry::Context::new().with_remote_span_context(span_context)
}

/// The ids OpenTelemetry gave `span`, when an OpenTelemetry layer is installed.
fn exported_ids(span: &tracing::Span) -> Option<TraceContext> {
    let context = span.context();
    let span_ref = context.span();
    let ids = span_ref.span_context();
    ids.is_valid().then(|| TraceContext {
        trace_id: ids.trace_id().to_bytes(),
        span_id: ids.span_id().to_bytes(),
        sampled: ids.is_sampled(),
    })
}
