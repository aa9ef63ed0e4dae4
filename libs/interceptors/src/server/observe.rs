//! Trace and metrics around a call with one look at how it ended: the span and completion line
//! ([`Spans`]) and the RED series ([`Red`]) finish from the same response-body observer, so a
//! call pays one body wrapper, one status lookup and one future for both.

use std::future::Future;

use futures_util::future::Either;
use tonic::Code;
use tracing::Instrument;

use super::{Red, Spans};
use crate::around::Around;
use crate::grpc::{error_code, observe};
use crate::{BoxError, Request, Response};

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Observe {
    pub spans: Spans,
    pub red: Red,
}

impl Around for Observe {
    #[inline(always)]
    fn around<F, Fut>(
        &self,
        mut request: Request,
        next: F,
    ) -> impl Future<Output = Result<Response, BoxError>> + Send + 'static
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, BoxError>> + Send + 'static,
    {
        let (trace, span) = self.spans.begin(&mut request);
        let red = self.red.begin(request.uri().path());
        let future = match span {
            Some(span) => Either::Left(next(request).instrument(span)),
            None => Either::Right(next(request)),
        };
        async move {
            // Metrics first, as when the RED layer sat inside the trace layer.
            let finish = move |code: Code| {
                red.finish(code);
                trace.finish(code);
            };
            match future.await {
                Ok(response) => Ok(observe(response, finish)),
                Err(err) => {
                    finish(error_code(&*err));
                    Err(err)
                }
            }
        }
    }
}
