//! The server stack: what every Ironmesh gRPC server runs each call through before the handler.
//!
//! [`ServerStack`] is one tower layer that assembles the others in a fixed order. Each sits where
//! it does for a reason given next to it in [`ServerStack::layer`].

mod context;
mod deadline;
mod metrics;
mod observe;
mod panic;
mod request_id;
mod shed;
mod trace;

use std::sync::Arc;
use std::time::Duration;

use tower::util::Either;
use tower::{Layer, Service, ServiceBuilder};

pub use context::{CallScope, ContextLayer};
pub use deadline::{DeadlineLayer, Deadlines};
pub use metrics::Red;
pub use observe::Observe;
pub use panic::{CatchPanic, CatchPanicLayer};
pub use request_id::{RequestIdLayer, RequestIds};
pub use shed::{LoadShedLayer, Shed};
pub use trace::{Sampler, Spans, exporting, sampling, set_sampling, start as start_trace};

use crate::around::{AroundLayer, AroundService, Then};
use crate::auth::{AuthLayer, AuthService, Authenticator};
use crate::policy::PolicyTable;
use crate::{BoxError, Request, Response};

/// Settings of the server stack for one service.
#[derive(Clone)]
pub struct ServerStackConfig {
    /// The component name recorded in metrics and logs (`orders`).
    pub service: &'static str,
    /// The methods this server knows (labels, idempotency, access).
    pub policy: PolicyTable,
    /// Calls in progress at once; more are refused with RESOURCE_EXHAUSTED.
    pub concurrency_limit: usize,
    /// The deadline of a call whose caller sent no `grpc-timeout`.
    pub default_deadline: Duration,
    /// The longest deadline a caller may ask for.
    pub max_deadline: Duration,
    /// Verifies credentials for methods that are not public; `None` lets every call through
    /// (only for tests and tools that run the stack without an auth service).
    pub authenticator: Option<Arc<dyn Authenticator>>,
}

/// The handler's end of the stack: the panic catch and the call context.
type Innermost<S> = AroundService<Then<CatchPanic, CallScope>, S>;

/// Everything before authentication, as one [`crate::around::Around`] (one future per call).
type Outermost = Then<Then<RequestIds, Observe>, Then<Shed, Deadlines>>;

/// The whole stack around `S`, by name rather than boxed: tonic and hyper clone the service for
/// every request, and a clone of this is a few reference counts where a boxed service was an
/// allocation and a copy (and its future a second box around the outer layer's). A call pays
/// two boxed futures: the outermost run of layers and the innermost one (authentication,
/// between them, answers from memory without a box of its own).
pub type Stacked<S> = AroundService<Outermost, Either<AuthService<Innermost<S>>, Innermost<S>>>;

/// The whole server stack as one layer (see the module docs).
#[derive(Clone)]
pub struct ServerStack {
    config: ServerStackConfig,
}

impl ServerStack {
    pub fn new(config: ServerStackConfig) -> Self {
        Self { config }
    }
}

impl<S> Layer<S> for ServerStack
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Service = Stacked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let config = &self.config;
        ServiceBuilder::new()
            // One layer (one boxed future per call, see `Then`), in this order: outermost the
            // request id, so every later layer, log line and response carries it, even for calls
            // that are shed or time out; then, finishing from one look at the outcome
            // (`Observe`), the call's span (when sampled) and completion line around everything
            // below, so shed and timed-out calls are traced too (it also fixes the trace context
            // handlers propagate), and RED metrics, which see every outcome, including the
            // RESOURCE_EXHAUSTED of load shedding; then the shedding, refusing excess work
            // before anything is spent on it (deadline timers, auth, handler); then the
            // deadline, which bounds authentication and the handler alike, and cancels them.
            .layer(AroundLayer(Then(
                Then(
                    RequestIds,
                    Observe {
                        spans: Spans {
                            service: config.service,
                            policy: config.policy.clone(),
                        },
                        red: Red::new(config.service, config.policy.clone()),
                    },
                ),
                Then(
                    Shed::new(config.service, config.concurrency_limit),
                    Deadlines {
                        default: config.default_deadline,
                        max: config.max_deadline,
                    },
                ),
            )))
            // Who is calling and may they: after the deadline (authentication can fetch keys
            // and must not outlive the call) and before any handler work.
            .option_layer(
                config
                    .authenticator
                    .clone()
                    .map(|authenticator| AuthLayer::new(config.policy.clone(), authenticator)),
            )
            // Panics become INTERNAL with the request id, so the connection and server live on;
            // innermost, the handler runs with the call's context as the task's current context.
            .layer(AroundLayer(Then(CatchPanic, CallScope)))
            .service(inner)
    }
}
