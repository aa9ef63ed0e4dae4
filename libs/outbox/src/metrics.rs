//! The outbox's series, registered once in the process-wide registry of
//! `ironmesh_interceptors::metrics` so every admin port renders them. Labels: `service` (the
//! producer, or the consumer for the inbox) and `subscriber`.

use std::sync::LazyLock;

use ironmesh_interceptors::metrics::Metrics as Shared;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};

pub(crate) struct Metrics {
    pub pending: IntGaugeVec,
    pub oldest_pending_age: GaugeVec,
    pub delivered: IntCounterVec,
    pub failed: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    pub relay_errors: IntCounterVec,
    pub inbox_duplicates: IntCounterVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

const PAIR: &[&str] = &["service", "subscriber"];

impl Metrics {
    pub fn get() -> &'static Metrics {
        &METRICS
    }

    fn new() -> Self {
        let shared = Shared::global();
        let register = |collector: Box<dyn prometheus::core::Collector>| {
            shared
                .register(collector)
                .expect("outbox metrics registered once");
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            register(Box::new(metric.clone()));
            metric
        };
        let pending = IntGaugeVec::new(
            Opts::new(
                "ironmesh_outbox_pending",
                "Outbox deliveries not yet delivered or dead, per subscriber.",
            ),
            PAIR,
        )
        .expect("valid metric");
        register(Box::new(pending.clone()));
        let oldest_pending_age = GaugeVec::new(
            Opts::new(
                "ironmesh_outbox_oldest_pending_age_seconds",
                "Age of the oldest pending outbox delivery per subscriber, in seconds (0 when none).",
            ),
            PAIR,
        )
        .expect("valid metric");
        register(Box::new(oldest_pending_age.clone()));
        Self {
            pending,
            oldest_pending_age,
            delivered: counter(
                "ironmesh_outbox_delivered_total",
                "Outbox events a subscriber accepted (or already had).",
                PAIR,
            ),
            failed: counter(
                "ironmesh_outbox_failed_total",
                "Failed outbox delivery attempts (RPC errors and rejections).",
                PAIR,
            ),
            dead_lettered: counter(
                "ironmesh_outbox_dead_lettered_total",
                "Outbox deliveries moved to the dead letters.",
                PAIR,
            ),
            relay_errors: counter(
                "ironmesh_outbox_relay_errors_total",
                "Relay rounds that failed on the database.",
                PAIR,
            ),
            inbox_duplicates: counter(
                "ironmesh_inbox_duplicates_total",
                "Events a consumer had already recorded, by producing source.",
                &["service", "source"],
            ),
        }
    }

    pub fn set_pending(&self, service: &str, subscriber: &str, count: i64, oldest_age: f64) {
        self.pending
            .with_label_values(&[service, subscriber])
            .set(count);
        self.oldest_pending_age
            .with_label_values(&[service, subscriber])
            .set(oldest_age);
    }

    pub fn relay_errors(&self, service: &str, subscriber: &str) {
        self.relay_errors
            .with_label_values(&[service, subscriber])
            .inc();
    }
}
