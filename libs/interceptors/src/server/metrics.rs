//! RED metrics per method: calls started, calls handled by code, latency to the final status,
//! calls in flight. Recorded when the call really ends (its trailers), not when the handler
//! returns, so streaming calls are measured whole.

use std::task::{Context, Poll};
use std::time::Instant;

use tonic::Code;
use tower::{Layer, Service};

use crate::grpc::{code_name, error_code, observe};
use crate::metrics::Metrics;
use crate::policy::PolicyTable;
use crate::{BoxError, BoxFuture, Request, Response};

#[derive(Clone, Debug)]
pub struct MetricsLayer {
    service: &'static str,
    policy: PolicyTable,
}

impl MetricsLayer {
    pub fn new(service: &'static str, policy: PolicyTable) -> Self {
        Self { service, policy }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            service: self.service,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
    service: &'static str,
    policy: PolicyTable,
}

impl<S> Service<Request> for MetricsService<S>
where
    S: Service<Request, Response = Response>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let metrics = Metrics::global();
        let (grpc_service, grpc_method) = self.policy.labels(request.uri().path());
        let service = self.service;
        let labels = [service, &*grpc_service, &*grpc_method];
        metrics.server_started.with_label_values(&labels).inc();
        let in_flight = metrics.server_in_flight.with_label_values(&labels);
        in_flight.inc();
        let started = Instant::now();

        let done = move |code: Code| {
            let labels = [service, &*grpc_service, &*grpc_method];
            in_flight.dec();
            metrics
                .server_handling_seconds
                .with_label_values(&labels)
                .observe(started.elapsed().as_secs_f64());
            metrics
                .server_handled
                .with_label_values(&[service, &*grpc_service, &*grpc_method, code_name(code)])
                .inc();
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            match future.await.map_err(Into::into) {
                Ok(response) => Ok(observe(response, Box::new(done))),
                Err(err) => {
                    done(error_code(&*err));
                    Err(err)
                }
            }
        })
    }
}
