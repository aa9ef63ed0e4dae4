//! Orders' own counters in the process's `/metrics` (beside the stack's per-RPC ones):
//! transitions by the status entered, and recovery's steps by what came of them. Label sets are
//! fixed (seven statuses, four kinds of step, two outcomes).

use std::sync::LazyLock;

use ironmesh_interceptors::metrics::Metrics as Shared;
use prometheus::{IntCounterVec, Opts};

use crate::domain::OrderStatus;

const SERVICE: &str = "orders";

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    Shared::global()
        .register(Box::new(counter.clone()))
        .expect("orders metrics registered once");
    counter
}

static TRANSITIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "ironmesh_orders_transitions_total",
        "Order status changes, by the status entered (pending = created).",
        &["service", "status"],
    )
});

static RECOVERY: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "ironmesh_orders_recovery_steps_total",
        "Steps recovery ran for unfinished orders, by kind and whether inventory answered \
         (done) or it will try again (later).",
        &["service", "step", "outcome"],
    )
});

/// What recovery does for an order, by its state.
pub const STEPS: [&str; 4] = ["reserve", "payment", "expiry", "release"];

/// Registers the counters so `/metrics` shows them from the start (at zero).
pub fn register() {
    for status in OrderStatus::ALL {
        TRANSITIONS.with_label_values(&[SERVICE, status.event_name()]);
    }
    for step in STEPS {
        for outcome in ["done", "later"] {
            RECOVERY.with_label_values(&[SERVICE, step, outcome]);
        }
    }
}

pub fn transition(status: OrderStatus) {
    TRANSITIONS
        .with_label_values(&[SERVICE, status.event_name()])
        .inc();
}

pub fn recovery_step(step: &'static str, done: bool) {
    let outcome = if done { "done" } else { "later" };
    RECOVERY.with_label_values(&[SERVICE, step, outcome]).inc();
}
