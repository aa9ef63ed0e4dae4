//! Circuit breaker, one per upstream: stop sending calls to an upstream that is failing, so it
//! can recover and callers fail fast instead of waiting out deadlines.
//!
//! closed ──(failure ratio ≥ threshold over the window, with ≥ min requests)──▶ open
//! open ──(cool-down passed)──▶ half-open: up to `probes` calls go through
//! half-open ──(every probe succeeded)──▶ closed;  ──(a probe failed)──▶ open
//!
//! Failures are the codes that speak of the upstream's health (UNAVAILABLE, INTERNAL, UNKNOWN,
//! DEADLINE_EXCEEDED, DATA_LOSS) and transport errors; a caller's own mistakes
//! (INVALID_ARGUMENT, NOT_FOUND, …) are successes here. No maintained tower breaker fits these
//! gRPC semantics, hence this file; the state lock is held for a few instructions, never across
//! an await.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::around::Around;
use crate::grpc::{error_code, observe};
use crate::metrics::Metrics;
use crate::{BoxError, Request, Response};

/// Breaker settings.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Share of failed calls in the window that opens the breaker.
    pub failure_ratio: f64,
    /// Fewer calls than this in the window never open it.
    pub min_requests: u32,
    /// The sliding window's length.
    pub window: Duration,
    /// How long the breaker stays open before probing.
    pub cool_down: Duration,
    /// Probe calls let through while half-open; all must succeed to close.
    pub probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_ratio: 0.5,
            min_requests: 20,
            window: Duration::from_secs(10),
            cool_down: Duration::from_secs(5),
            probes: 3,
        }
    }
}

/// The breaker's state, as exported (`ironmesh_grpc_client_breaker_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl BreakerState {
    fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }
}

/// The error of a call refused by an open breaker: UNAVAILABLE naming the logical upstream. The retry
/// layer recognises it and does not retry.
#[derive(Debug, thiserror::Error)]
#[error("{status}")]
pub struct BreakerOpen {
    #[source]
    pub status: Status,
}

const BUCKETS: usize = 10;

#[derive(Clone, Copy, Default)]
struct Bucket {
    started: Option<Instant>,
    total: u32,
    failures: u32,
}

enum State {
    /// Counting outcomes in `Inner::buckets`.
    Closed,
    Open {
        until: Instant,
    },
    HalfOpen {
        in_flight: u32,
        succeeded: u32,
    },
}

struct Inner {
    state: State,
    /// The sliding window while closed: outcomes per time slice.
    buckets: [Bucket; BUCKETS],
}

pub(super) struct Breaker {
    caller: &'static str,
    upstream: Arc<str>,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// Permission for one call; records its outcome (or, if dropped unused, frees its probe slot).
struct Permit {
    breaker: Arc<Breaker>,
    probe: bool,
    done: bool,
}

impl Breaker {
    pub(super) fn new(
        caller: &'static str,
        upstream: Arc<str>,
        config: BreakerConfig,
    ) -> Arc<Self> {
        let breaker = Arc::new(Self {
            caller,
            upstream,
            config,
            inner: Mutex::new(Inner {
                state: State::Closed,
                buckets: [Bucket::default(); BUCKETS],
            }),
        });
        breaker.export(BreakerState::Closed);
        breaker
    }

    fn export(&self, state: BreakerState) {
        Metrics::global()
            .breaker_state
            .with_label_values(&[self.caller, &self.upstream])
            .set(state as i64);
    }

    fn transition(&self, inner: &mut Inner, next: State, name: BreakerState) {
        if matches!(next, State::Closed) {
            inner.buckets = [Bucket::default(); BUCKETS];
        }
        inner.state = next;
        self.export(name);
        Metrics::global()
            .breaker_transitions
            .with_label_values(&[self.caller, &self.upstream, name.name()])
            .inc();
        tracing::warn!(upstream = %self.upstream, state = name.name(), "circuit breaker changed state");
    }

    fn acquire(self: &Arc<Self>) -> Result<Permit, BreakerOpen> {
        let mut inner = self.inner.lock();
        let now = Instant::now();
        let probe = match &mut inner.state {
            State::Closed => false,
            State::Open { until } if now < *until => return Err(self.open_error()),
            State::Open { .. } => {
                self.transition(
                    &mut inner,
                    State::HalfOpen {
                        in_flight: 1,
                        succeeded: 0,
                    },
                    BreakerState::HalfOpen,
                );
                true
            }
            State::HalfOpen {
                in_flight,
                succeeded,
            } => {
                if *in_flight + *succeeded >= self.config.probes {
                    return Err(self.open_error());
                }
                *in_flight += 1;
                true
            }
        };
        Ok(Permit {
            breaker: self.clone(),
            probe,
            done: false,
        })
    }

    /// Names the logical upstream (never an endpoint: the message may reach a REST caller).
    fn open_error(&self) -> BreakerOpen {
        BreakerOpen {
            status: Status::unavailable(format!(
                "{} is unavailable (circuit breaker open)",
                self.upstream
            )),
        }
    }

    fn record(&self, probe: bool, failed: bool) {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let now = Instant::now();
        match &mut inner.state {
            State::Closed => {
                let width = self.config.window / BUCKETS as u32;
                let slot = bucket_index(now, width);
                let bucket = &mut inner.buckets[slot];
                if bucket
                    .started
                    .is_none_or(|s| now.duration_since(s) >= width)
                {
                    *bucket = Bucket {
                        started: Some(now),
                        ..Bucket::default()
                    };
                }
                bucket.total += 1;
                bucket.failures += u32::from(failed);
                let (total, failures) = inner
                    .buckets
                    .iter()
                    .filter(|b| {
                        b.started
                            .is_some_and(|s| now.duration_since(s) < self.config.window)
                    })
                    .fold((0, 0), |(t, f), b| (t + b.total, f + b.failures));
                if total >= self.config.min_requests
                    && f64::from(failures) / f64::from(total) >= self.config.failure_ratio
                {
                    let until = now + self.config.cool_down;
                    self.transition(inner, State::Open { until }, BreakerState::Open);
                }
            }
            State::HalfOpen {
                in_flight,
                succeeded,
            } if probe => {
                *in_flight = in_flight.saturating_sub(1);
                if failed {
                    let until = now + self.config.cool_down;
                    self.transition(inner, State::Open { until }, BreakerState::Open);
                } else {
                    *succeeded += 1;
                    if *succeeded >= self.config.probes {
                        self.transition(inner, State::Closed, BreakerState::Closed);
                    }
                }
            }
            // Outcomes of calls admitted before the state changed say nothing about it now.
            _ => {}
        }
    }

    fn release(&self, probe: bool) {
        if probe && let State::HalfOpen { in_flight, .. } = &mut self.inner.lock().state {
            *in_flight = in_flight.saturating_sub(1);
        }
    }
}

fn bucket_index(now: Instant, width: Duration) -> usize {
    // Buckets are keyed by time slice since an arbitrary origin (process start).
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    let width = width.as_nanos().max(1);
    ((now.duration_since(origin).as_nanos() / width) % BUCKETS as u128) as usize
}

impl Permit {
    fn finish(mut self, code: Code) {
        self.done = true;
        self.breaker.record(self.probe, is_failure(code));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.release(self.probe);
        }
    }
}

fn is_failure(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Internal
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::DataLoss
    )
}

/// The breaker judging every attempt to one upstream.
#[derive(Clone)]
pub(super) struct Guarded(pub(super) Arc<Breaker>);

impl Around for Guarded {
    fn around<F, Fut>(
        &self,
        request: Request,
        next: F,
    ) -> impl Future<Output = Result<Response, BoxError>> + Send + 'static
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, BoxError>> + Send + 'static,
    {
        let started = self.0.acquire().map(|permit| (permit, next(request)));
        async move {
            let (permit, future) = started.map_err(|open| Box::new(open) as BoxError)?;
            match future.await {
                Ok(response) => Ok(observe(response, move |code| permit.finish(code))),
                Err(err) => {
                    permit.finish(error_code(&*err));
                    Err(err)
                }
            }
        }
    }
}
