//! Notification's own series in the process's `/metrics` (beside the stack's per-RPC ones).
//! Every label set is fixed: channel (`email`, `webhook`), final state, attempt outcome,
//! circuit state. Circuits are counted per state, not labelled per endpoint, so the series
//! stay bounded however many endpoints customers register.

use std::sync::LazyLock;

use ironmesh_interceptors::metrics::Metrics as Shared;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts};

const SERVICE: &str = "notification";
const CHANNELS: [&str; 2] = ["email", "webhook"];
/// What an attempt came to.
pub const OUTCOMES: [&str; 4] = ["delivered", "failed", "gone", "refused"];
/// Circuit states.
pub const CIRCUITS: [&str; 3] = ["closed", "open", "half_open"];

fn register<M: prometheus::core::Collector + Clone + 'static>(metric: M) -> M {
    Shared::global()
        .register(Box::new(metric.clone()))
        .expect("notification metrics registered once");
    metric
}

static DELIVERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "ironmesh_notification_deliveries_total",
                "Deliveries that reached a final state, by channel and state (delivered, failed).",
            ),
            &["service", "channel", "state"],
        )
        .expect("valid metric"),
    )
});

static ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "ironmesh_notification_attempts_total",
                "Delivery attempts, by channel and outcome (delivered; failed; gone = webhook \
                 410; refused = not attempted: the SSRF guard or a missing address).",
            ),
            &["service", "channel", "outcome"],
        )
        .expect("valid metric"),
    )
});

static LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "ironmesh_notification_delivery_seconds",
                "From a delivery's creation to its receiver's acceptance, by channel.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0, 86400.0,
            ]),
            &["service", "channel"],
        )
        .expect("valid metric"),
    )
});

static CIRCUIT_GAUGE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "ironmesh_notification_circuits",
                "Delivery targets (webhook endpoints, the SMTP relay) this process tracks, by \
                 channel and circuit state.",
            ),
            &["service", "channel", "state"],
        )
        .expect("valid metric"),
    )
});

static QUEUE: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "ironmesh_notification_queue_depth",
            "PENDING deliveries (all replicas: read from the database).",
        )
        .expect("valid metric"),
    )
});

static OLDEST: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "ironmesh_notification_oldest_pending_seconds",
            "Age of the oldest PENDING delivery; 0 when none.",
        )
        .expect("valid metric"),
    )
});

/// Registers every series so `/metrics` shows them from the start (at zero).
pub fn register_all() {
    for channel in CHANNELS {
        for state in ["delivered", "failed"] {
            DELIVERIES.with_label_values(&[SERVICE, channel, state]);
        }
        for outcome in OUTCOMES {
            ATTEMPTS.with_label_values(&[SERVICE, channel, outcome]);
        }
        LATENCY.with_label_values(&[SERVICE, channel]);
        for state in CIRCUITS {
            CIRCUIT_GAUGE.with_label_values(&[SERVICE, channel, state]);
        }
    }
    LazyLock::force(&QUEUE);
    LazyLock::force(&OLDEST);
}

pub fn attempt(channel: &'static str, outcome: &'static str) {
    ATTEMPTS
        .with_label_values(&[SERVICE, channel, outcome])
        .inc();
}

pub fn finished(channel: &'static str, delivered: bool, seconds_since_creation: f64) {
    let state = if delivered { "delivered" } else { "failed" };
    DELIVERIES
        .with_label_values(&[SERVICE, channel, state])
        .inc();
    if delivered {
        LATENCY
            .with_label_values(&[SERVICE, channel])
            .observe(seconds_since_creation.max(0.0));
    }
}

pub fn circuits(channel: &'static str, state: &'static str, count: i64) {
    CIRCUIT_GAUGE
        .with_label_values(&[SERVICE, channel, state])
        .set(count);
}

pub fn queue(depth: i64, oldest_seconds: i64) {
    QUEUE.set(depth);
    OLDEST.set(oldest_seconds.max(0));
}
