//! Deadlines: every call gets one — the caller's `grpc-timeout` (capped at `max`), or `default`
//! when it sent none. When it passes, the handler's future is dropped (its work is cancelled at
//! the next await) and the caller gets DEADLINE_EXCEEDED. The deadline goes into the call context, so
//! the client stack can hand the remaining budget to upstream calls.
//!
//! tonic's own `grpc-timeout` handling, further out, answers CANCELLED; this layer answers a
//! hair earlier (`ANSWER_AHEAD`) so the caller receives the DEADLINE_EXCEEDED the spec asks for.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tonic::Status;

use crate::around::{Around, AroundLayer};
use crate::context::CallContext;
use crate::grpc::parse_timeout;
use crate::headers::GRPC_TIMEOUT;
use crate::{BoxError, Request, Response};

const ANSWER_AHEAD: Duration = Duration::from_millis(1);

/// The deadline policy: `default` when the caller sent none, callers capped at `max`.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    pub default: Duration,
    pub max: Duration,
}

pub type DeadlineLayer = AroundLayer<Deadlines>;

impl Around for Deadlines {
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
        let budget = match request.headers().get(GRPC_TIMEOUT).and_then(parse_timeout) {
            Some(asked) => asked.min(self.max).saturating_sub(ANSWER_AHEAD),
            None => self.default,
        };
        let deadline = Instant::now() + budget;
        CallContext::in_place(request.extensions_mut()).deadline = Some(deadline);
        let future = next(request);
        async move {
            match tokio::time::timeout_at(deadline, future).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(Status::deadline_exceeded(format!(
                    "deadline of {} ms exceeded",
                    budget.as_millis()
                ))) as BoxError),
            }
        }
    }
}
