//! The shape most layers share: look at (or change) the request, call the next service, then
//! look at (or change) the outcome. [`Around`] is that one decision; [`AroundLayer`] and
//! [`AroundService`] are the tower boilerplate written once for every such layer, and [`Then`]
//! joins two of them into one layer, so a run of them costs one boxed future per call rather
//! than one each (an allocation, a copy of the future into it and a dynamic poll, per layer).

use std::future::Future;
use std::task::{Context, Poll};

use futures_util::TryFutureExt;
use tower::{Layer, Service};

use crate::{BoxError, BoxFuture, Request, Response};

/// What a layer does around one call. `next` calls the inner service (call it at most once, and
/// synchronously inside `around`, as tower's readiness contract requires).
pub trait Around: Clone + Send + Sync + 'static {
    fn around<F, Fut>(
        &self,
        request: Request,
        next: F,
    ) -> impl Future<Output = Result<Response, BoxError>> + Send + 'static
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, BoxError>> + Send + 'static;
}

/// `A` around `B` as one [`Around`]: `B`'s future is a field of `A`'s, not boxed apart.
#[derive(Clone, Copy, Debug, Default)]
pub struct Then<A, B>(pub A, pub B);

impl<A: Around, B: Around> Around for Then<A, B> {
    #[inline(always)]
    fn around<F, Fut>(
        &self,
        request: Request,
        next: F,
    ) -> impl Future<Output = Result<Response, BoxError>> + Send + 'static
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, BoxError>> + Send + 'static,
    {
        let Self(outer, inner) = self;
        outer.around(request, move |request| inner.around(request, next))
    }
}

/// A tower layer made of an [`Around`].
#[derive(Clone, Debug)]
pub struct AroundLayer<A>(pub A);

impl<A: Clone, S> Layer<S> for AroundLayer<A> {
    type Service = AroundService<A, S>;

    fn layer(&self, inner: S) -> Self::Service {
        AroundService {
            around: self.0.clone(),
            inner,
        }
    }
}

/// The service an [`AroundLayer`] wraps around `S`.
#[derive(Clone, Debug)]
pub struct AroundService<A, S> {
    around: A,
    inner: S,
}

impl<A, S> Service<Request> for AroundService<A, S>
where
    A: Around,
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

    #[inline]
    fn call(&mut self, request: Request) -> Self::Future {
        let Self { around, inner } = self;
        Box::pin(around.around(request, |request| inner.call(request).err_into()))
    }
}
