//! Deadlines: every call gets one — the caller's `grpc-timeout` (capped at `max`), or `default`
//! when it sent none. When it passes, the handler's future is dropped (its work is cancelled at
//! the next await) and the caller gets DEADLINE_EXCEEDED. The deadline is a request extension, so
//! the client stack can hand the remaining budget to upstream calls.
//!
//! tonic's own `grpc-timeout` handling, further out, answers CANCELLED; this layer answers a
//! hair earlier (`ANSWER_AHEAD`) so the caller receives the DEADLINE_EXCEEDED the spec asks for.

use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::Status;
use tower::{Layer, Service};

use crate::context::Deadline;
use crate::grpc::parse_timeout;
use crate::{BoxError, BoxFuture, Request, Response};

const ANSWER_AHEAD: Duration = Duration::from_millis(1);

#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    default: Duration,
    max: Duration,
}

impl DeadlineLayer {
    pub fn new(default: Duration, max: Duration) -> Self {
        Self { default, max }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            default: self.default,
            max: self.max,
        }
    }
}

#[derive(Clone, Debug)]
pub struct DeadlineService<S> {
    inner: S,
    default: Duration,
    max: Duration,
}

impl<S> Service<Request> for DeadlineService<S>
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
        let budget = match request
            .headers()
            .get("grpc-timeout")
            .and_then(parse_timeout)
        {
            Some(asked) => asked.min(self.max).saturating_sub(ANSWER_AHEAD),
            None => self.default,
        };
        let deadline = Instant::now() + budget;
        request.extensions_mut().insert(Deadline(deadline));
        let future = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline, future).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(Status::deadline_exceeded(format!(
                    "deadline of {} ms exceeded",
                    budget.as_millis()
                ))) as BoxError),
            }
        })
    }
}
