//! RED metrics per method: calls started, calls handled by code, latency to the final status,
//! calls in flight. Recorded when the call really ends (its trailers), not when the handler
//! returns, so streaming calls are measured whole.

use std::future::Future;
use std::time::Instant;

use tonic::Code;

use crate::around::{Around, AroundLayer};
use crate::grpc::{code_name, error_code, observe};
use crate::metrics::Metrics;
use crate::policy::PolicyTable;
use crate::{BoxError, BoxFuture, Request, Response};

/// RED metrics for the calls of `service`; method labels from `policy`.
#[derive(Clone, Debug)]
pub struct Red {
    pub service: &'static str,
    pub policy: PolicyTable,
}

pub type MetricsLayer = AroundLayer<Red>;

impl Around for Red {
    fn around<F, Fut>(&self, request: Request, next: F) -> BoxFuture<Response>
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, BoxError>> + Send + 'static,
    {
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
        let future = next(request);
        Box::pin(async move {
            match future.await {
                Ok(response) => Ok(observe(response, Box::new(done))),
                Err(err) => {
                    done(error_code(&*err));
                    Err(err)
                }
            }
        })
    }
}
