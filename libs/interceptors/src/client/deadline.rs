//! Deadline propagation. An outgoing call's deadline is the earliest of: the inbound call's
//! deadline minus a safety margin (so this hop can still answer), a timeout set on the request
//! itself (`grpc-timeout`, e.g. `tonic::Request::set_timeout`), and — only when neither exists —
//! the default timeout. It is sent upstream as `grpc-timeout` and enforced here: when it passes
//! the call is abandoned with DEADLINE_EXCEEDED. A budget already spent fails at once, without a
//! network call.

use std::task::{Context, Poll};

use tokio::time::Instant;
use tonic::Status;
use tower::{Layer, Service};

use super::DeadlineConfig;
use crate::context::{CallContext, Deadline};
use crate::grpc::{encode_timeout, parse_timeout};
use crate::{BoxError, BoxFuture, Request, Response};

#[derive(Clone, Copy, Debug)]
pub struct ClientDeadlineLayer {
    config: DeadlineConfig,
}

impl ClientDeadlineLayer {
    pub fn new(config: DeadlineConfig) -> Self {
        Self { config }
    }
}

impl<S> Layer<S> for ClientDeadlineLayer {
    type Service = ClientDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientDeadline {
            inner,
            config: self.config,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientDeadline<S> {
    inner: S,
    config: DeadlineConfig,
}

impl<S> Service<Request> for ClientDeadline<S>
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

    fn call(&mut self, mut request: Request) -> Self::Future {
        let now = Instant::now();
        let inbound = CallContext::current()
            .and_then(|context| context.deadline)
            .map(|deadline| deadline.checked_sub(self.config.margin).unwrap_or(now));
        let requested = request
            .headers()
            .get("grpc-timeout")
            .and_then(parse_timeout)
            .map(|timeout| now + timeout);
        let deadline = match (inbound, requested) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => now + self.config.default_timeout,
        };
        if deadline <= now {
            return Box::pin(async {
                Err(Box::new(Status::deadline_exceeded(
                    "deadline already passed before the upstream call",
                )) as BoxError)
            });
        }
        request
            .headers_mut()
            .insert("grpc-timeout", encode_timeout(deadline - now));
        request.extensions_mut().insert(Deadline(deadline));
        let future = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline, future).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(Status::deadline_exceeded(
                    "deadline exceeded waiting for the upstream",
                )) as BoxError),
            }
        })
    }
}
