//! Panic catch: a handler that panics answers INTERNAL carrying only the request id (the panic
//! message is logged, never sent), and the server keeps serving. tower-http's CatchPanic answers
//! with a bare HTTP 500 and cannot see the request id, hence this small layer.

use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use tonic::Status;
use tower::{Layer, Service};

use crate::context::RequestId;
use crate::{BoxError, BoxFuture, Request, Response};

#[derive(Clone, Copy, Debug, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanicService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanicService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct CatchPanicService<S> {
    inner: S,
}

impl<S> Service<Request> for CatchPanicService<S>
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
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let future = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => future,
            Err(payload) => return Box::pin(async move { Err(panicked(&request_id, &payload)) }),
        };
        Box::pin(async move {
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(result) => result.map_err(Into::into),
                Err(payload) => Err(panicked(&request_id, &payload)),
            }
        })
    }
}

fn panicked(request_id: &str, payload: &(dyn std::any::Any + Send)) -> BoxError {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(request_id, panic = message, "handler panicked");
    Box::new(Status::internal(format!(
        "internal error (request id {request_id})"
    )))
}
