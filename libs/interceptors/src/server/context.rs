//! Innermost layer: gathers what the layers above learnt (request id, trace, deadline) and the
//! caller's `authorization`, and runs the handler with it as the task's [`CallContext`], so client
//! calls made by the handler inherit it without passing it along by hand.

use std::future::Future;

use crate::around::{Around, AroundLayer};
use crate::context::CallContext;
use crate::{BoxError, Request, Response};

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallScope;

pub type ContextLayer = AroundLayer<CallScope>;

impl Around for CallScope {
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
        let mut context = CallContext::of(request.extensions())
            .cloned()
            .unwrap_or_default();
        context.authorization = request.headers().get(http::header::AUTHORIZATION).cloned();
        context.scope(next(request))
    }
}
