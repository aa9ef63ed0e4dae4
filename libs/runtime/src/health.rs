//! grpc.health.v1 for one process, built on tonic-health.
//!
//! tonic-health's `Watch` streams never end, so a graceful drain would wait on every watcher until
//! the grace period ran out. [`DrainAwareHealth`] delegates `Check` and `Watch` to tonic-health and
//! ends a `Watch` stream right after it has delivered `NOT_SERVING` during a drain: watchers
//! (Kubernetes, load balancers) see the change, then the stream completes and the drain proceeds.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio_util::sync::CancellationToken;
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
        let inner = self.inner.watch(request).await?.into_inner();
        Ok(Response::new(DrainAwareWatch {
            inner,
            draining: self.draining.clone(),
            finished: false,
        }))
    }
}

/// A Watch stream that completes after delivering NOT_SERVING once a drain has begun.
pub struct DrainAwareWatch {
    inner: tonic_health::server::WatchStream,
    draining: CancellationToken,
    finished: bool,
}

impl Stream for DrainAwareWatch {
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(response))) = &item {
            let not_serving = response.status
                == tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
            if not_serving && self.draining.is_cancelled() {
                self.finished = true;
            }
        }
        item
    }
}
