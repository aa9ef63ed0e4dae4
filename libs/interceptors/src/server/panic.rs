//! Panic catch: a handler that panics answers INTERNAL carrying only the request id (the panic
//! message is logged, never sent), and the server keeps serving. tower-http's CatchPanic answers
//! with a bare HTTP 500 and cannot see the request id, hence this small layer.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use crate::around::{Around, AroundLayer};
use crate::context::CallContext;
use crate::{BoxError, Request, Response};

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct CatchPanic;

pub type CatchPanicLayer = AroundLayer<CatchPanic>;

impl Around for CatchPanic {
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
        let request_id = CallContext::request_id_of(request.extensions())
            .map(|id| id.0)
            .unwrap_or_default();
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| next(request)));
        async move {
            let future = match started {
                Ok(future) => future,
                Err(payload) => return Err(panicked(&request_id, &payload)),
            };
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(result) => result,
                Err(payload) => Err(panicked(&request_id, &payload)),
            }
        }
    }
}

fn panicked(request_id: &str, payload: &(dyn std::any::Any + Send)) -> BoxError {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(request_id, panic = message, "handler panicked");
    Box::new(crate::grpc::internal_error(request_id))
}
