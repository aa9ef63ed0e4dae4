//! Per-target isolation for the delivery engine: every webhook endpoint (and the SMTP relay)
//! gets its own concurrency cap and circuit breaker, so a dead or slow receiver holds only its
//! own slots and, once its circuit opens, none at all — the others' deliveries never wait
//! behind it.
//!
//! The circuit counts consecutive unhealthy attempts (timeouts, connection errors, 5xx, 429):
//! `breaker_failures` of them open it for `breaker_cool_down`; then one probe goes through —
//! success closes it, failure opens it again. The client stack's breaker
//! (`ironmesh_interceptors::client`) does not fit here: it judges gRPC status codes, lives in a
//! tower layer per upstream service, and labels its metrics per upstream — per customer
//! endpoint that would be an unbounded label set. This one is a few lines of state under a
//! mutex never held across an await.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::metrics;

/// Past this many tracked targets, idle healthy ones are forgotten.
const MAX_TRACKED: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Circuit {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// One receiver: its slots and its circuit.
pub struct Target {
    /// `email` or `webhook` (a metrics label).
    pub channel: &'static str,
    pub permits: Arc<Semaphore>,
    concurrency: usize,
    circuit: Mutex<Circuit>,
}

/// Whether an attempt may go to its target now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Go; `probe` when it is the half-open circuit's one trial.
    Go { probe: bool },
    /// The circuit is open (or probing) until then.
    Wait(Instant),
}

impl Target {
    /// May an attempt go now?
    pub fn admit(&self, now: Instant, cool_down: Duration) -> Admission {
        let mut circuit = self.circuit.lock();
        match *circuit {
            Circuit::Closed { .. } => Admission::Go { probe: false },
            Circuit::Open { until } if now < until => Admission::Wait(until),
            Circuit::Open { .. } => {
                *circuit = Circuit::HalfOpen { probing: true };
                tracing::info!(
                    channel = self.channel,
                    "a delivery target's circuit is half-open: probing"
                );
                Admission::Go { probe: true }
            }
            Circuit::HalfOpen { probing: true } => Admission::Wait(now + cool_down),
            Circuit::HalfOpen { probing: false } => {
                *circuit = Circuit::HalfOpen { probing: true };
                Admission::Go { probe: true }
            }
        }
    }

    /// Records how an admitted attempt went (`healthy`: the receiver answered, whatever it
    /// said, other than 5xx/429).
    pub fn record(
        &self,
        probe: bool,
        healthy: bool,
        now: Instant,
        limit: u32,
        cool_down: Duration,
    ) {
        let mut circuit = self.circuit.lock();
        let next = match (*circuit, healthy) {
            (_, true) if probe => Circuit::Closed { failures: 0 },
            (Circuit::Closed { .. }, true) => Circuit::Closed { failures: 0 },
            (_, false) if probe => Circuit::Open {
                until: now + cool_down,
            },
            (Circuit::Closed { failures }, false) if failures + 1 >= limit => Circuit::Open {
                until: now + cool_down,
            },
            (Circuit::Closed { failures }, false) => Circuit::Closed {
                failures: failures + 1,
            },
            // An attempt admitted before the state changed says nothing about it now.
            (state, _) => state,
        };
        if matches!(next, Circuit::Open { .. }) && !matches!(*circuit, Circuit::Open { .. }) {
            tracing::warn!(channel = self.channel, "a delivery target's circuit opened");
        }
        *circuit = next;
    }

    fn state(&self, now: Instant) -> &'static str {
        match *self.circuit.lock() {
            Circuit::Closed { .. } => "closed",
            Circuit::Open { until } if now < until => "open",
            Circuit::Open { .. } | Circuit::HalfOpen { .. } => "half_open",
        }
    }

    /// Claiming more for it now would only wait: circuit open or probing, or every slot taken.
    fn blocked(&self, now: Instant) -> bool {
        self.permits.available_permits() == 0
            || match *self.circuit.lock() {
                Circuit::Open { until } => now < until,
                Circuit::HalfOpen { probing } => probing,
                Circuit::Closed { .. } => false,
            }
    }

    fn idle(&self) -> bool {
        self.permits.available_permits() == self.concurrency
            && *self.circuit.lock() == Circuit::Closed { failures: 0 }
    }
}

/// Every target this process delivers to, by key (endpoint id, or the relay's name).
pub struct Targets {
    concurrency: usize,
    map: Mutex<HashMap<String, Arc<Target>>>,
}

/// What the claim must leave alone for now.
pub struct Blocked {
    pub endpoints: Vec<String>,
    pub email: bool,
}

impl Targets {
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The target for `key`, made on first use.
    pub fn get(&self, key: &str, channel: &'static str) -> Arc<Target> {
        let mut map = self.map.lock();
        if map.len() > MAX_TRACKED {
            map.retain(|_, t| !t.idle());
        }
        map.entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Target {
                    channel,
                    permits: Arc::new(Semaphore::new(self.concurrency)),
                    concurrency: self.concurrency,
                    circuit: Mutex::new(Circuit::Closed { failures: 0 }),
                })
            })
            .clone()
    }

    /// The targets a claim should skip now.
    pub fn blocked(&self, now: Instant) -> Blocked {
        let map = self.map.lock();
        let mut blocked = Blocked {
            endpoints: Vec::new(),
            email: false,
        };
        for (key, target) in map.iter().filter(|(_, t)| t.blocked(now)) {
            if target.channel == "email" {
                blocked.email = true;
            } else {
                blocked.endpoints.push(key.clone());
            }
        }
        blocked
    }

    /// Exports how many targets are in each circuit state.
    pub fn export(&self, now: Instant) {
        let map = self.map.lock();
        for channel in ["email", "webhook"] {
            for state in metrics::CIRCUITS {
                let n = map
                    .values()
                    .filter(|t| t.channel == channel && t.state(now) == state)
                    .count();
                metrics::circuits(channel, state, i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens after the limit of consecutive failures, refuses until the cool-down, lets one
    /// probe through, closes on its success and reopens on its failure.
    #[test]
    fn the_circuit_opens_probes_and_closes() {
        let targets = Targets::new(2);
        let t = targets.get("e1", "webhook");
        let start = Instant::now();
        let cool = Duration::from_secs(10);
        for _ in 0..2 {
            assert_eq!(t.admit(start, cool), Admission::Go { probe: false });
            t.record(false, false, start, 3, cool);
        }
        t.record(false, true, start, 3, cool);
        for _ in 0..3 {
            t.record(false, false, start, 3, cool);
        }
        assert_eq!(t.admit(start, cool), Admission::Wait(start + cool));
        assert_eq!(targets.blocked(start).endpoints, ["e1"]);
        let later = start + cool;
        assert_eq!(t.admit(later, cool), Admission::Go { probe: true });
        assert!(matches!(t.admit(later, cool), Admission::Wait(_)));
        t.record(true, false, later, 3, cool);
        assert!(matches!(t.admit(later, cool), Admission::Wait(_)));
        let again = later + cool;
        assert_eq!(t.admit(again, cool), Admission::Go { probe: true });
        t.record(true, true, again, 3, cool);
        assert_eq!(t.admit(again, cool), Admission::Go { probe: false });
        assert!(targets.blocked(again).endpoints.is_empty());
    }
}
