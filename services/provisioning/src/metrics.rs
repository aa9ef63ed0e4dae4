//! Provisioning's own series in the process's `/metrics` (beside the stack's per-RPC ones):
//! transitions of requests, the queries that compute queue positions (the shared board's
//! refreshes and single lookups — what 1,000 watchers must not multiply), the watchers, and
//! credential sets stored, read and re-wrapped.
//! Label sets are fixed.

use std::sync::LazyLock;

use ironmesh_interceptors::metrics::Metrics as Shared;
use prometheus::{IntCounterVec, IntGauge, Opts};

const SERVICE: &str = "provisioning";

fn register<M: prometheus::core::Collector + Clone + 'static>(metric: M) -> M {
    Shared::global()
        .register(Box::new(metric.clone()))
        .expect("provisioning metrics registered once");
    metric
}

static TRANSITIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "ironmesh_provisioning_transitions_total",
                "Request transitions, by transition (submitted, claimed, succeeded, requeued, \
                 failed, dead_lettered, cancelled, replayed).",
            ),
            &["service", "transition"],
        )
        .expect("valid metric"),
    )
});

static POSITION_QUERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "ironmesh_provisioning_position_queries_total",
                "Queries computing queue positions: board (one refresh of every position, \
                 shared by all watchers) or single (one request's, for GetQueuePosition and a \
                 watch's first and last message).",
            ),
            &["service", "kind"],
        )
        .expect("valid metric"),
    )
});

static WATCHERS: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::with_opts(
            Opts::new(
                "ironmesh_provisioning_position_watchers",
                "WatchQueuePosition streams open in this process.",
            )
            .const_label("service", SERVICE),
        )
        .expect("valid metric"),
    )
});

static CREDENTIALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "ironmesh_provisioning_credentials_total",
                "Credential sets by operation: stored (SubmitCredentials), read (decrypted for a \
                 worker's live lease), rewrapped (data key moved to the newest key).",
            ),
            &["service", "operation"],
        )
        .expect("valid metric"),
    )
});

/// Makes every series visible from the start.
pub fn register_all() {
    for t in [
        "submitted",
        "claimed",
        "succeeded",
        "requeued",
        "failed",
        "dead_lettered",
        "cancelled",
        "replayed",
    ] {
        TRANSITIONS.with_label_values(&[SERVICE, t]);
    }
    for kind in ["board", "single"] {
        POSITION_QUERIES.with_label_values(&[SERVICE, kind]);
    }
    for op in ["stored", "read", "rewrapped"] {
        CREDENTIALS.with_label_values(&[SERVICE, op]);
    }
    LazyLock::force(&WATCHERS);
}

pub fn credentials_stored() {
    CREDENTIALS.with_label_values(&[SERVICE, "stored"]).inc();
}

pub fn credentials_read(sets: usize) {
    CREDENTIALS
        .with_label_values(&[SERVICE, "read"])
        .inc_by(sets as u64);
}

pub fn credentials_rewrapped(rows: u64) {
    CREDENTIALS
        .with_label_values(&[SERVICE, "rewrapped"])
        .inc_by(rows);
}

pub fn transition(word: &str) {
    TRANSITIONS.with_label_values(&[SERVICE, word]).inc();
}

/// One position query of `kind` (`board` or `single`).
pub fn position_query(kind: &'static str) {
    POSITION_QUERIES.with_label_values(&[SERVICE, kind]).inc();
}

/// Position queries so far, of both kinds (what the scaling test reads).
pub fn position_queries() -> u64 {
    ["board", "single"]
        .iter()
        .map(|k| POSITION_QUERIES.with_label_values(&[SERVICE, k]).get())
        .sum()
}

/// A watcher opened (+1) or closed (−1).
pub fn watchers(delta: i64) {
    WATCHERS.add(delta);
}
