//! Deadline propagation. An outgoing call's deadline is the earliest of: the inbound call's
//! deadline minus a safety margin (so this hop can still answer), a timeout set on the request
//! itself (`grpc-timeout`, e.g. `tonic::Request::set_timeout`), and — only when neither exists —
//! the default timeout. It is sent upstream as `grpc-timeout` and enforced here: when it passes
//! the call is abandoned with DEADLINE_EXCEEDED. A budget already spent fails at once, without a
//! network call.

use std::future::Future;

use tokio::time::Instant;
use tonic::Status;

use super::DeadlineConfig;
use crate::around::{Around, AroundLayer};
use crate::context::{CallContext, Deadline};
use crate::grpc::{encode_timeout, parse_timeout};
use crate::headers::{GRPC_TIMEOUT, per_call};
use crate::{BoxError, Request, Response};

/// Deadline propagation with `DeadlineConfig`'s default and margin.
#[derive(Clone, Copy, Debug)]
pub struct Propagated(pub DeadlineConfig);

pub type ClientDeadlineLayer = AroundLayer<Propagated>;

impl Around for Propagated {
    fn around<F, Fut>(
        &self,
        mut request: Request,
        next: F,
    ) -> impl Future<Output = Result<Response, BoxError>> + Send + 'static
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, BoxError>> + Send + 'static,
    {
        let now = Instant::now();
        let inbound = CallContext::current()
            .and_then(|context| context.deadline)
            .map(|deadline| deadline.checked_sub(self.0.margin).unwrap_or(now));
        let requested = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(parse_timeout)
            .map(|timeout| now + timeout);
        let deadline = match (inbound, requested) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => now + self.0.default_timeout,
        };
        let future = (deadline > now).then(|| {
            request
                .headers_mut()
                .insert(GRPC_TIMEOUT, per_call(encode_timeout(deadline - now)));
            request.extensions_mut().insert(Deadline(deadline));
            next(request)
        });
        async move {
            let Some(future) = future else {
                return Err(Box::new(Status::deadline_exceeded(
                    "deadline already passed before the upstream call",
                )) as BoxError);
            };
            match tokio::time::timeout_at(deadline, future).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(Status::deadline_exceeded(
                    "deadline exceeded waiting for the upstream",
                )) as BoxError),
            }
        }
    }
}
