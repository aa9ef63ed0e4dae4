//! The one client builder every service and the gateway use to call another service.
//!
//! ```text
//! deadline → retry → breaker → propagate → balanced endpoints (→ optional mTLS)
//! ```
//! [`ClientBuilder::build`] gives a [`GrpcChannel`] that any generated tonic client accepts:
//! `OrdersServiceClient::new(channel)`. Why each layer sits where it does is noted in `build`.

mod balance;
mod breaker;
mod deadline;
mod propagate;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tower::ServiceBuilder;

pub use balance::{Balanced, Target};
pub use breaker::{BreakerConfig, BreakerOpen, BreakerState};
pub use deadline::{ClientDeadlineLayer, Propagated};
pub use propagate::PropagateLayer;
pub use retry::{RetryConfig, RetryLayer};

use crate::around::{AroundLayer, AroundService};
use crate::auth::service::ServiceTokens;
use crate::policy::PolicyTable;
use crate::{BoxError, BoxFuture, Request, Response};

/// The client stack by name (see `ClientBuilder::build` for the order).
type Stack = AroundService<
    Propagated,
    retry::Retry<AroundService<breaker::Guarded, propagate::Propagate<Balanced>>>,
>;

/// What generated clients are built on. Errors leave the stack as `tonic::Status` (a concrete
/// type keeps generated client futures provably `Send` inside handlers). The stack is held by
/// name, not boxed: a generated client clones its channel for every call, and a clone of this is
/// a few reference counts where a boxed service was an allocation and a copy.
#[derive(Clone)]
pub struct GrpcChannel {
    inner: Stack,
}

impl std::fmt::Debug for GrpcChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcChannel")
    }
}

impl tower::Service<Request> for GrpcChannel {
    type Response = Response;
    type Error = tonic::Status;
    type Future = futures_util::future::MapErr<BoxFuture<Response>, fn(BoxError) -> tonic::Status>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(tonic::Status::from_error)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        use futures_util::TryFutureExt;
        let to_status: fn(BoxError) -> tonic::Status = tonic::Status::from_error;
        self.inner.call(request).map_err(to_status)
    }
}

/// mTLS settings for outgoing calls (PEM contents, not paths).
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// CA that signed the servers' certificates.
    pub ca_pem: Vec<u8>,
    /// Our certificate and key, presented to servers that require client certificates.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Name to verify the server certificate against (defaults to the target's host).
    pub domain: Option<String>,
}

impl ClientTls {
    fn config(&self, host: &str) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(self.domain.clone().unwrap_or_else(|| host.to_owned()));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        config
    }
}

/// Deadline settings of outgoing calls.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineConfig {
    /// Used when there is neither an inbound deadline nor one set on the request.
    pub default_timeout: Duration,
    /// Kept back from the inbound budget so this hop can still answer after the upstream does.
    pub margin: Duration,
}

impl Default for DeadlineConfig {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(10),
            margin: Duration::from_millis(5),
        }
    }
}

/// The credential outgoing calls carry — the one decision about authorization a client makes.
///
/// Why a choice and not always forwarding: a user's token forwarded service → service lets any
/// service act as that user at every other service (and turns a leaked hop into a leaked user
/// session), and it cannot pass `internal` methods anyway. So only the gateway, whose upstream
/// calls *are* the end user's calls, forwards the caller's `authorization`; a service calling
/// another presents its own identity, and the acting user travels in request fields (`actor`).
#[derive(Clone, Debug, Default)]
pub enum Credentials {
    /// No credential (public upstreams, tests): nothing borrowed by accident.
    #[default]
    None,
    /// The inbound call's `authorization`, unchanged: gateway → service hops only.
    ForwardCaller,
    /// This service's own short-lived token (`service:<name>`, see [`crate::auth::service`]).
    Service(Arc<ServiceTokens>),
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid target `{target}`: {reason}")]
    Target { target: String, reason: String },
}

/// Builds a [`GrpcChannel`] to one upstream.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    caller: &'static str,
    upstream: Arc<str>,
    target: String,
    policy: PolicyTable,
    retry: RetryConfig,
    breaker: BreakerConfig,
    deadline: DeadlineConfig,
    tls: Option<ClientTls>,
    credentials: Credentials,
    resolve_every: Duration,
    ejection: Duration,
    connect_timeout: Duration,
}

impl ClientBuilder {
    /// A client from `caller` (metrics label) to `upstream` (a name for metrics and messages) at
    /// `target`: one `http(s)://host:port` (a DNS name is re-resolved every
    /// [`Self::resolve_every`]), or several separated by commas (a static list).
    pub fn new(caller: &'static str, upstream: &str, target: &str) -> Self {
        Self {
            caller,
            upstream: upstream.into(),
            target: target.to_owned(),
            policy: PolicyTable::default(),
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            deadline: DeadlineConfig::default(),
            tls: None,
            credentials: Credentials::None,
            resolve_every: Duration::from_secs(10),
            ejection: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
        }
    }

    /// Which methods are idempotent (and so retried).
    pub fn policy(mut self, policy: PolicyTable) -> Self {
        self.policy = policy;
        self
    }

    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    pub fn deadline(mut self, deadline: DeadlineConfig) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// What authorization outgoing calls carry (default: none; see [`Credentials`]).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    pub fn resolve_every(mut self, every: Duration) -> Self {
        self.resolve_every = every;
        self
    }

    /// How long an endpoint that refused a connection is skipped.
    pub fn ejection(mut self, ejection: Duration) -> Self {
        self.ejection = ejection;
        self
    }

    /// Builds the channel. Must run inside a tokio runtime (DNS targets spawn a resolver task,
    /// which stops when the last clone of the channel is dropped).
    pub fn build(self) -> Result<GrpcChannel, ClientError> {
        let target = Target::parse(&self.target)?;
        let balanced = Balanced::new(
            self.upstream.clone(),
            target,
            self.tls.clone(),
            self.connect_timeout,
            self.ejection,
            self.resolve_every,
        )?;
        let breaker = breaker::Breaker::new(self.caller, self.upstream.clone(), self.breaker);
        let stack = ServiceBuilder::new()
            // Outermost: one deadline for the whole call, retries and backoff included, derived
            // from the inbound budget so no hop outlives its caller.
            .layer(AroundLayer(Propagated(self.deadline)))
            // Retries sit inside the deadline (attempts share it) and outside the breaker (each
            // attempt asks the breaker; an open breaker is not retried).
            .layer(RetryLayer::new(
                self.caller,
                self.upstream.clone(),
                self.policy,
                self.retry,
            ))
            // One breaker per upstream, judging every attempt.
            .layer(AroundLayer(breaker::Guarded(breaker)))
            // Per attempt: request id, trace context and the chosen credential go along (inside
            // the retries, so a retried attempt after a long backoff gets a fresh service token).
            .layer(PropagateLayer::new(self.credentials))
            .service(balanced);
        Ok(GrpcChannel { inner: stack })
    }
}
