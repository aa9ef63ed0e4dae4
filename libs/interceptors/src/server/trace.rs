//! Trace context: every call joins the caller's W3C trace (`traceparent`, `tracestate`) or
//! starts one, and the context to propagate onward goes into the call context (the
//! handler's client calls carry it). A tracing span is built for a call **only when traces are
//! exported and the call is sampled** ([`Sampler`], OpenTelemetry's parent-based sampler with a
//! ratio, from `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`): then it carries
//! `rpc.system`, `rpc.service`, `rpc.method`, `request_id`, `trace_id` and
//! `rpc.grpc.status_code`, is exported with the caller's span as parent, and its ids are the
//! ones propagated onward. Otherwise the call pays for no span at all: log lines still carry
//! `request_id`, `trace_id` and the method — the completion line as its own fields, the
//! handler's lines from the call context the log formatter reads (`CallContext`, task-local).
//!
//! A line is logged when each call ends: DEBUG for OK, INFO for caller errors, WARN for server
//! errors (a log line per OK call would cost more than the call at load).
//!
//! [`Spans::begin`] starts a call's trace; [`super::Observe`] runs it beside the metrics and
//! finishes both from one look at the outcome.

use std::time::Instant;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState as OtelTraceState,
};
use tonic::Code;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::Request;
use crate::context::{CallContext, CallLabels, RequestId, TraceContext};
use crate::grpc::code_name;
use crate::headers::{TRACEPARENT, TRACESTATE};
use crate::policy::PolicyTable;

/// Spans for the calls of `service`; names from `policy`.
#[derive(Clone, Debug)]
pub struct Spans {
    pub service: &'static str,
    pub policy: PolicyTable,
}

impl Spans {
    /// Starts the call's trace: the context (joined or new) and labels go into the call
    /// context; the span exists only when traces are exported and the call is sampled.
    pub(crate) fn begin(&self, request: &mut Request) -> (Done, Option<tracing::Span>) {
        let started = Instant::now();
        let (grpc_service, grpc_method) = self.policy.labels(request.uri().path());
        let request_id = CallContext::request_id_of(request.extensions())
            .map(|id| id.0)
            .unwrap_or_default();
        let incoming = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse);
        let tracestate = request.headers().get(TRACESTATE).cloned();

        let labels = CallLabels {
            service: self.service,
            rpc_service: grpc_service,
            rpc_method: grpc_method,
        };
        let (own, span) = start(incoming, |own| {
            // Everything known now is set at creation: the log formatter re-renders a span's
            // fields on every later `record`.
            tracing::info_span!(
                "rpc",
                rpc.service = %labels.rpc_service,
                rpc.method = %labels.rpc_method,
                service = labels.service,
                request_id = %request_id,
                trace_id = %own.trace_id_hex(),
                span_id = Empty,
                otel.name = %format_args!("{}/{}", labels.rpc_service, labels.rpc_method),
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.grpc.status_code = Empty,
            )
        });
        let context = CallContext::in_place(request.extensions_mut());
        context.trace = Some(own);
        context.labels = Some(labels.clone());
        context.tracestate = tracestate;
        let done = Done {
            labels,
            request_id: RequestId(request_id),
            trace: own,
            started,
            span: span.clone(),
        };
        (done, span)
    }
}

/// What the completion line needs once the call's code is known.
pub(crate) struct Done {
    labels: CallLabels,
    request_id: RequestId,
    trace: TraceContext,
    started: Instant,
    span: Option<tracing::Span>,
}

impl Done {
    /// Records the outcome on the span (when there is one) and logs the call's completion, with
    /// the call's ids as fields whether or not there is a span.
    pub(crate) fn finish(self, code: Code) {
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let name = code_name(code);
        let log = || {
            let (l, id, trace) = (&self.labels, &self.request_id, &self.trace);
            macro_rules! line {
                ($level:ident, $message:literal) => {
                    tracing::$level!(
                        grpc.code = name,
                        latency_ms,
                        service = l.service,
                        rpc.service = %l.rpc_service,
                        rpc.method = %l.rpc_method,
                        request_id = %id,
                        trace_id = %trace.trace_id_hex(),
                        $message
                    )
                };
            }
            match code {
                Code::Ok => line!(debug, "rpc finished"),
                Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable => {
                    line!(warn, "rpc failed")
                }
                _ => line!(info, "rpc finished"),
            }
        };
        match &self.span {
            Some(span) => {
                span.record("rpc.grpc.status_code", code as i32);
                span.in_scope(log);
            }
            None => log(),
        }
    }
}

/// Which calls get an exported span: OpenTelemetry's samplers by their `OTEL_TRACES_SAMPLER`
/// names. Parent-based ones follow the caller's `sampled` flag and apply their root rule only
/// to calls that start a trace; the ratio rule keeps a trace when the low 63 bits of its id fall
/// below `ratio · 2^63` (as OpenTelemetry's `TraceIdRatioBased`), so every hop of a trace
/// decides alike.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    pub parent_based: bool,
    /// 0.0 (never) to 1.0 (always), for roots (and for every call when not parent-based).
    pub ratio: f64,
}

impl Sampler {
    /// OpenTelemetry's default: `parentbased_always_on`.
    pub const DEFAULT: Self = Self {
        parent_based: true,
        ratio: 1.0,
    };

    /// The sampler `OTEL_TRACES_SAMPLER` = `name` with `OTEL_TRACES_SAMPLER_ARG` = `arg`
    /// describes; `None` for an unknown name (the caller says so and uses the default).
    pub fn from_env(name: Option<&str>, arg: Option<&str>) -> Option<Self> {
        let ratio = || {
            arg.and_then(|a| a.trim().parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(1.0)
        };
        let (parent_based, ratio) = match name.map(str::trim).unwrap_or("") {
            "" | "parentbased_always_on" => (true, 1.0),
            "parentbased_always_off" => (true, 0.0),
            "parentbased_traceidratio" => (true, ratio()),
            "always_on" => (false, 1.0),
            "always_off" => (false, 0.0),
            "traceidratio" => (false, ratio()),
            _ => return None,
        };
        Some(Self {
            parent_based,
            ratio,
        })
    }

    /// Whether a call of trace `trace_id` (whose caller sent `parent`) is sampled.
    pub fn samples(&self, parent: Option<&TraceContext>, trace_id: &[u8; 16]) -> bool {
        if self.parent_based
            && let Some(parent) = parent
        {
            return parent.sampled;
        }
        if self.ratio >= 1.0 {
            return true;
        }
        // The bound is below 2^63, so the float-to-integer conversion cannot saturate.
        let bound = (self.ratio.max(0.0) * (1u64 << 63) as f64) as u64;
        let low = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes")) >> 1;
        low < bound
    }
}

/// The sampler while traces are exported (`None`: not exported), as f64 bits and a mode.
static SAMPLING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// 0: not exported; 1: exported, parent-based; 2: exported, not parent-based.
static MODE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Declares that spans are exported with `sampler` (an OpenTelemetry layer is installed), or
/// not (`None`). Called once by the telemetry setup.
pub fn set_sampling(sampler: Option<Sampler>) {
    use std::sync::atomic::Ordering::Relaxed;
    match sampler {
        Some(s) => {
            SAMPLING.store(s.ratio.to_bits(), Relaxed);
            MODE.store(if s.parent_based { 1 } else { 2 }, Relaxed);
        }
        None => MODE.store(0, Relaxed),
    }
}

/// The sampler of exported spans; `None` when nothing is exported.
pub fn sampling() -> Option<Sampler> {
    use std::sync::atomic::Ordering::Relaxed;
    match MODE.load(Relaxed) {
        0 => None,
        mode => Some(Sampler {
            parent_based: mode == 1,
            ratio: f64::from_bits(SAMPLING.load(Relaxed)),
        }),
    }
}

/// Whether spans are exported at all (see [`set_sampling`]).
pub fn exporting() -> bool {
    sampling().is_some()
}

/// How a call joins its trace: the context to propagate onward (a child of `incoming`, or a new
/// root) and, only when spans are exported and the call is sampled, the span `make` builds for
/// it (given the minted context; it must have an empty `span_id` field and a `trace_id` one),
/// joined as the caller's child. An unsampled call propagates `sampled = 0`, so the hops after it
/// skip their spans too.
pub fn start(
    incoming: Option<TraceContext>,
    make: impl FnOnce(&TraceContext) -> tracing::Span,
) -> (TraceContext, Option<tracing::Span>) {
    let mut minted = match incoming {
        Some(parent) => parent.child(),
        None => TraceContext::new_root(),
    };
    let Some(sampler) = sampling() else {
        return (minted, None);
    };
    if !sampler.samples(incoming.as_ref(), &minted.trace_id) {
        minted.sampled = false;
        return (minted, None);
    }
    minted.sampled = true;
    let span = make(&minted);
    let own = join(&span, incoming, minted);
    (own, Some(span))
}

/// Makes `span` the caller's child in the trace and returns the context to propagate onward:
/// OpenTelemetry's ids for `span`, so exported parent links match what is propagated (`minted`
/// when OpenTelemetry gave it none).
fn join(
    span: &tracing::Span,
    incoming: Option<TraceContext>,
    minted: TraceContext,
) -> TraceContext {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn trace_with_low_bits(low: u64) -> [u8; 16] {
        let mut id = [7u8; 16];
        id[8..].copy_from_slice(&low.to_be_bytes());
        id
    }

    /// OpenTelemetry's names; parent-based samplers follow the caller, ratios cut the trace id
    /// space, an unknown name is refused.
    #[test]
    fn samplers_by_their_names_decide_like_opentelemetry() {
        let parent = |sampled| TraceContext {
            sampled,
            ..TraceContext::new_root()
        };
        let default = Sampler::from_env(None, None).unwrap();
        assert_eq!(default, Sampler::DEFAULT);
        let id = trace_with_low_bits(u64::MAX);
        assert!(default.samples(None, &id));
        assert!(!default.samples(Some(&parent(false)), &id));
        let one_percent =
            Sampler::from_env(Some("parentbased_traceidratio"), Some("0.01")).unwrap();
        // Below 1 % of the id space: kept; above: dropped; a sampled parent keeps it anyway.
        assert!(one_percent.samples(None, &trace_with_low_bits(1 << 20)));
        assert!(!one_percent.samples(None, &trace_with_low_bits(u64::MAX / 2)));
        assert!(one_percent.samples(Some(&parent(true)), &trace_with_low_bits(u64::MAX / 2)));
        let ratio = Sampler::from_env(Some("traceidratio"), Some("0.5")).unwrap();
        assert!(!ratio.samples(Some(&parent(true)), &trace_with_low_bits(u64::MAX)));
        assert!(
            !Sampler::from_env(Some("always_off"), None)
                .unwrap()
                .samples(None, &id)
        );
        assert_eq!(Sampler::from_env(Some("xray"), None), None);
        // Of 10,000 random roots, about 1 % are sampled.
        let kept = (0..10_000)
            .filter(|_| one_percent.samples(None, &TraceContext::new_root().trace_id))
            .count();
        assert!((40..=200).contains(&kept), "{kept}");
    }
}
