//! Every metric the stack records, in one process-wide Prometheus registry. Every series carries a
//! `service` label (the process component that recorded it), so `ironmesh up` — six services in
//! one process — can show each admin port only its own series ([`Metrics::render`]).
//!
//! Names follow go-grpc-prometheus, prefixed `ironmesh_`. Method labels come only from the policy
//! table of known methods (unknown paths are counted as `unknown`), so a caller cannot blow up
//! the series count by inventing paths.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// Calls started, by method.
    pub server_started: IntCounterVec,
    /// Calls finished, by method and code.
    pub server_handled: IntCounterVec,
    /// Time from request to final status, by method.
    pub server_handling_seconds: HistogramVec,
    /// Calls in progress, by method.
    pub server_in_flight: IntGaugeVec,
    /// Calls refused by load shedding.
    pub server_shed: IntCounterVec,
    /// Client attempts (first tries and retries) by upstream, method and code.
    pub client_attempts: IntCounterVec,
    /// Client retries by upstream and method.
    pub client_retries: IntCounterVec,
    /// Retries not made because the retry budget was spent.
    pub client_retry_budget_exhausted: IntCounterVec,
    /// Breaker state per upstream: 0 closed, 1 half-open, 2 open.
    pub breaker_state: IntGaugeVec,
    /// Breaker transitions per upstream, by the state entered.
    pub breaker_transitions: IntCounterVec,
    /// REST requests refused by the gateway's rate limit, by key kind.
    pub rate_limited: IntCounterVec,
    /// Rate-limit decisions made in process because Redis could not be reached.
    pub rate_limit_fallbacks: IntCounterVec,
    /// REST requests finished, by route template, HTTP method and status.
    pub http_requests: IntCounterVec,
    /// REST request durations (to the response head), by route template and HTTP method.
    pub http_request_seconds: HistogramVec,
    /// REST requests in progress.
    pub http_in_flight: IntGaugeVec,
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    /// The process-wide instance.
    pub fn global() -> &'static Metrics {
        &GLOBAL
    }

    fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        const METHOD: &[&str] = &["service", "grpc_service", "grpc_method"];
        const METHOD_CODE: &[&str] = &["service", "grpc_service", "grpc_method", "grpc_code"];
        const UPSTREAM: &[&str] = &["service", "upstream"];
        const UPSTREAM_METHOD: &[&str] = &["service", "upstream", "grpc_method"];

        let server_handling_seconds = HistogramVec::new(
            HistogramOpts::new(
                "ironmesh_grpc_server_handling_seconds",
                "Time from receiving a gRPC call to its final status, in seconds.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            METHOD,
        )
        .expect("valid metric");
        registry
            .register(Box::new(server_handling_seconds.clone()))
            .expect("registered once");
        let http_request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "ironmesh_http_request_duration_seconds",
                "Time from receiving a REST request to its response head, in seconds.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["service", "route", "method"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(http_request_seconds.clone()))
            .expect("registered once");

        Self {
            server_started: counter(
                "ironmesh_grpc_server_started_total",
                "gRPC calls started on the server.",
                METHOD,
            ),
            server_handled: counter(
                "ironmesh_grpc_server_handled_total",
                "gRPC calls completed on the server, by status code.",
                METHOD_CODE,
            ),
            server_handling_seconds,
            server_in_flight: gauge(
                "ironmesh_grpc_server_in_flight",
                "gRPC calls in progress on the server.",
                METHOD,
            ),
            server_shed: counter(
                "ironmesh_grpc_server_shed_total",
                "gRPC calls refused with RESOURCE_EXHAUSTED because the server was at its concurrency limit.",
                &["service"],
            ),
            client_attempts: counter(
                "ironmesh_grpc_client_attempts_total",
                "gRPC client attempts (first tries and retries), by final status code.",
                &["service", "upstream", "grpc_method", "grpc_code"],
            ),
            client_retries: counter(
                "ironmesh_grpc_client_retries_total",
                "gRPC client retries.",
                UPSTREAM_METHOD,
            ),
            client_retry_budget_exhausted: counter(
                "ironmesh_grpc_client_retry_budget_exhausted_total",
                "Retries not attempted because the retry budget was spent.",
                UPSTREAM,
            ),
            breaker_state: gauge(
                "ironmesh_grpc_client_breaker_state",
                "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
                UPSTREAM,
            ),
            breaker_transitions: counter(
                "ironmesh_grpc_client_breaker_transitions_total",
                "Circuit breaker transitions per upstream, by the state entered.",
                &["service", "upstream", "to"],
            ),
            rate_limited: counter(
                "ironmesh_http_rate_limited_total",
                "REST requests refused with 429 by the rate limit, by key kind (address or credential).",
                &["service", "key"],
            ),
            rate_limit_fallbacks: counter(
                "ironmesh_http_rate_limit_fallbacks_total",
                "Rate-limit decisions made in process because Redis was unreachable.",
                &["service"],
            ),
            http_requests: counter(
                "ironmesh_http_requests_total",
                "REST requests finished, by route template (unmatched paths are `unmatched`), method and status.",
                &["service", "route", "method", "status"],
            ),
            http_request_seconds,
            http_in_flight: gauge(
                "ironmesh_http_in_flight",
                "REST requests in progress.",
                &["service"],
            ),
            registry,
        }
    }

    /// Adds a collector owned by a crate above this one (e.g. the outbox relay's metrics) to the
    /// same registry, so every admin port renders it with the rest. Its series must carry a
    /// `service` label like every other. Fails if a metric of the same name is already there.
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// Prometheus text exposition of every series, or only those whose `service` label is
    /// `service`.
    pub fn render(&self, service: Option<&str>) -> String {
        let mut families = self.registry.gather();
        if let Some(service) = service {
            for family in &mut families {
                let kept: Vec<_> = family
                    .take_metric()
                    .into_iter()
                    .filter(|metric| {
                        metric
                            .get_label()
                            .iter()
                            .any(|l| l.name() == "service" && l.value() == service)
                    })
                    .collect();
                family.set_metric(kept);
            }
            families.retain(|family| !family.get_metric().is_empty());
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .expect("text encoding to memory");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
