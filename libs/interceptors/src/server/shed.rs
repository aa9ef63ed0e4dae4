//! Load shedding: at most `limit` calls in progress in this server; the next one is refused at
//! once with RESOURCE_EXHAUSTED instead of queueing (a queue would only turn overload into
//! latency and then into deadline failures). The limiting is tower's `GlobalConcurrencyLimit` +
//! `LoadShed`; this layer only names the refusal in gRPC terms and counts it.

use std::task::{Context, Poll};

use futures_util::FutureExt;
use tonic::Status;
use tower::limit::{ConcurrencyLimit, GlobalConcurrencyLimitLayer};
use tower::load_shed::LoadShed;
use tower::load_shed::error::Overloaded;
use tower::{Layer, Service};

use crate::metrics::Metrics;
use crate::{BoxError, BoxFuture, Request, Response};

#[derive(Clone, Debug)]
pub struct LoadShedLayer {
    service: &'static str,
    // One semaphore for every clone of the layered service (tonic clones it per connection).
    limit: GlobalConcurrencyLimitLayer,
}

impl LoadShedLayer {
    pub fn new(service: &'static str, limit: usize) -> Self {
        Self {
            service,
            limit: GlobalConcurrencyLimitLayer::new(limit.max(1)),
        }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShedService {
            inner: LoadShed::new(self.limit.layer(inner)),
            service: self.service,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LoadShedService<S> {
    inner: LoadShed<ConcurrencyLimit<S>>,
    service: &'static str,
}

impl<S> Service<Request> for LoadShedService<S>
where
    S: Service<Request, Response = Response>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let service = self.service;
        Box::pin(self.inner.call(request).map(move |result| {
            result.map_err(|err| {
                if err.is::<Overloaded>() {
                    Metrics::global()
                        .server_shed
                        .with_label_values(&[service])
                        .inc();
                    Box::new(Status::resource_exhausted(
                        "server is at its concurrency limit; retry with backoff",
                    )) as BoxError
                } else {
                    err
                }
            })
        }))
    }
}
