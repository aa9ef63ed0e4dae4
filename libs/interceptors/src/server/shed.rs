//! Load shedding: at most `limit` calls in progress in this server; the next one is refused at
//! once with RESOURCE_EXHAUSTED instead of queueing (a queue would only turn overload into
//! latency and then into deadline failures).
//!
//! The limit is a tokio semaphore taken without waiting: a permit held by the call's future
//! until the handler answers. tower's `ConcurrencyLimit` + `LoadShed` do the same through
//! readiness, but as a service of their own they cost the call a boxed future; as an
//! [`Around`] the shedding joins the layers beside it in one future.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::Either;
use tokio::sync::Semaphore;
use tonic::Status;

use crate::around::{Around, AroundLayer};
use crate::metrics::Metrics;
use crate::{BoxError, Request, Response};

/// See the module docs. Clones share one limit (tonic clones the stack per connection).
#[derive(Clone, Debug)]
pub struct Shed {
    service: &'static str,
    permits: Arc<Semaphore>,
}

pub type LoadShedLayer = AroundLayer<Shed>;

impl Shed {
    /// At most `limit` (at least one) calls of `service` in progress at once.
    pub fn new(service: &'static str, limit: usize) -> Self {
        Self {
            service,
            permits: Arc::new(Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }
}

impl Around for Shed {
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
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let future = next(request);
                Either::Left(async move {
                    let outcome = future.await;
                    drop(permit);
                    outcome
                })
            }
            Err(_) => {
                Metrics::global()
                    .server_shed
                    .with_label_values(&[self.service])
                    .inc();
                Either::Right(std::future::ready(Err(
                    Box::new(Status::resource_exhausted(
                        "server is at its concurrency limit; retry with backoff",
                    )) as BoxError,
                )))
            }
        }
    }
}
