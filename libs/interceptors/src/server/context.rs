//! Innermost layer: gathers what the layers above learnt (request id, trace, deadline) and the
//! caller's `authorization`, and runs the handler with it as the task's [`CallContext`], so client
//! calls made by the handler inherit it without passing it along by hand.

use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::context::CallContext;
use crate::{BoxError, BoxFuture, Request, Response};

#[derive(Clone, Copy, Debug, Default)]
pub struct ContextLayer;

impl<S> Layer<S> for ContextLayer {
    type Service = ContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ContextService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct ContextService<S> {
    inner: S,
}

impl<S> Service<Request> for ContextService<S>
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
        let mut context = CallContext::from_extensions(request.extensions());
        context.authorization = request.headers().get(http::header::AUTHORIZATION).cloned();
        request.extensions_mut().insert(context.clone());
        let future = self.inner.call(request);
        Box::pin(context.scope(async move { future.await.map_err(Into::into) }))
    }
}
