//! grpc.health.v1 for one process, built on tonic-health.
//!
//! tonic-health's `Watch` streams never end, so a graceful drain would wait on every watcher until
//! the grace period ran out. [`DrainAwareHealth`] delegates `Check` and `Watch` to tonic-health and
//! ends a `Watch` stream right after it has delivered `NOT_SERVING` during a drain: watchers
//! (Kubernetes, load balancers) see the change, then the stream completes and the drain proceeds.
//!
//! A `Watch` of a name this process does not serve is answered as the health protocol says:
//! one `SERVICE_UNKNOWN` message and the stream stays open (tonic-health fails it with
//! `NOT_FOUND`, which is `Check`'s answer, not `Watch`'s). Names are fixed at start, so it never
//! becomes known; the stream ends when the drain begins, like every other.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health as HealthApi, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};

/// The health state of one process: its service names, whether the store is ready, and whether
/// a drain has begun. Cloning shares the state.
#[derive(Clone)]
pub struct HealthState {
    reporter: HealthReporter,
    names: Arc<Vec<String>>,
    ready: Arc<AtomicBool>,
    draining: CancellationToken,
}

impl HealthState {
    /// Registers `names` (plus the empty name, meaning the whole server) as NOT_SERVING until the
    /// first readiness report.
    pub async fn new(names: &[&str]) -> Self {
        let reporter = HealthReporter::new();
        let mut all = vec![String::new()];
        all.extend(names.iter().map(|name| (*name).to_owned()));
        for name in &all {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        Self {
            reporter,
            names: Arc::new(all),
            ready: Arc::new(AtomicBool::new(false)),
            draining: CancellationToken::new(),
        }
    }

    /// Records whether the store answers; every name follows it unless a drain has begun.
    pub async fn set_ready(&self, ready: bool) {
        if self.draining.is_cancelled() {
            return;
        }
        // Publish changes only: Watch streams must see one message per change, not one per poll.
        if self.ready.swap(ready, Ordering::SeqCst) == ready {
            return;
        }
        tracing::info!(ready, "readiness changed");
        self.publish(if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        })
        .await;
    }

    /// Begins the drain: every name turns NOT_SERVING for good and Watch streams end after
    /// delivering it.
    pub async fn start_drain(&self) {
        // Order matters: streams check `draining` when they see NOT_SERVING.
        self.draining.cancel();
        self.ready.store(false, Ordering::SeqCst);
        self.publish(ServingStatus::NotServing).await;
    }

    /// True while the store is ready and no drain has begun (what `/readyz` reports).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.draining.is_cancelled()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// The gRPC service to mount.
    pub fn service(&self) -> HealthServer<DrainAwareHealth> {
        HealthServer::new(DrainAwareHealth {
            inner: HealthService::from_health_reporter(self.reporter.clone()),
            draining: self.draining.clone(),
        })
    }

    async fn publish(&self, status: ServingStatus) {
        for name in self.names.iter() {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

/// tonic-health's service with drain-aware Watch streams (see the module docs).
pub struct DrainAwareHealth {
    inner: HealthService,
    draining: CancellationToken,
}

#[tonic::async_trait]
impl HealthApi for DrainAwareHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = DrainAwareWatch;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let state = match self.inner.watch(request).await {
            Ok(response) => WatchState::Known(response.into_inner()),
            Err(status) if status.code() == tonic::Code::NotFound => WatchState::Unknown {
                sent: false,
                drained: Box::pin(self.draining.clone().cancelled_owned()),
            },
            Err(status) => return Err(status),
        };
        Ok(Response::new(DrainAwareWatch {
            state,
            draining: self.draining.clone(),
            finished: false,
        }))
    }
}

/// A Watch stream that completes after delivering NOT_SERVING once a drain has begun.
pub struct DrainAwareWatch {
    state: WatchState,
    draining: CancellationToken,
    finished: bool,
}

enum WatchState {
    /// A served name: tonic-health's stream of changes.
    Known(tonic_health::server::WatchStream),
    /// A name this process does not serve: SERVICE_UNKNOWN once, then open until the drain.
    Unknown {
        sent: bool,
        drained: Pin<Box<WaitForCancellationFutureOwned>>,
    },
}

impl Stream for DrainAwareWatch {
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        use tonic_health::pb::health_check_response::ServingStatus as Wire;
        if self.finished {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match &mut this.state {
            WatchState::Known(inner) => {
                let item = Pin::new(inner).poll_next(cx);
                if let Poll::Ready(Some(Ok(response))) = &item {
                    let not_serving = response.status == Wire::NotServing as i32;
                    if not_serving && this.draining.is_cancelled() {
                        this.finished = true;
                    }
                }
                item
            }
            WatchState::Unknown { sent, drained } => {
                if !*sent {
                    *sent = true;
                    return Poll::Ready(Some(Ok(HealthCheckResponse {
                        status: Wire::ServiceUnknown as i32,
                    })));
                }
                match drained.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.finished = true;
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}
