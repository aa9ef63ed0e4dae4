//! [`serve`]: the one way an Ironmesh service runs its gRPC and admin listeners.
//!
//! It binds nothing itself (callers pass [`Listeners`], so tests use port 0 and the CLI can report
//! a busy port before anything starts) and stops when the injected `shutdown` future resolves:
//!
//! 1. health turns NOT_SERVING for every name and `/readyz` answers 503 (load balancers stop
//!    sending new work), Watch streams end after saying so;
//! 2. tonic stops accepting, sends GOAWAY and waits for in-flight calls;
//! 3. if they are not done within `shutdown_grace`, the rest are cut off and that is logged;
//! 4. background tasks ([`GrpcService::background`]: relays, sweepers, retention) are cancelled
//!    once in-flight calls are done — so events those calls committed are still relayed — and
//!    awaited;
//! 5. the admin listener closes last, so probes see the drain until it is over.

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use ironmesh_interceptors::auth::Authenticator;
use ironmesh_interceptors::policy::{PolicyError, PolicyTable};
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::Instrument;

mod listeners;

pub use listeners::{BindError, Listeners, bind};

use crate::config::{Config, ServiceKind};
use crate::health::HealthState;
use crate::limits::MessageLimitLayer;
use crate::storage::{Database, MigrationSet, StorageError};
use ironmesh_interceptors::server::{ServerStack, ServerStackConfig};

/// Service names that reflection advertises besides the service's own.
const INFRA_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// HTTP/2 keepalive: ping idle connections so dead peers (a killed pod, a dropped NAT entry) are
/// noticed and their resources freed, not held until TCP gives up minutes later.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a service crate hands to [`serve`]: its tonic routes and the names to report health and
/// reflection for, collected as services are added.
pub struct GrpcService {
    kind: ServiceKind,
    routes: Routes,
    names: Vec<&'static str>,
    authenticator: Option<Arc<dyn Authenticator>>,
    background: Vec<(&'static str, BackgroundTask)>,
}

/// A task that runs beside the listeners until its token is cancelled (see [`serve`], step 4).
pub type BackgroundTask =
    Box<dyn FnOnce(CancellationToken) -> futures_util::future::BoxFuture<'static, ()> + Send>;

impl GrpcService {
    pub fn new(kind: ServiceKind) -> Self {
        Self {
            kind,
            routes: Routes::default(),
            names: Vec::new(),
            authenticator: None,
            background: Vec::new(),
        }
    }

    /// Runs `task` beside the listeners for the life of the process (an outbox relay, a sweeper,
    /// retention); it must return soon after its token is cancelled. `name` is for the log.
    pub fn background<F, Fut>(mut self, name: &'static str, task: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.background
            .push((name, Box::new(move |token| Box::pin(task(token)))));
        self
    }

    /// Verifies credentials with `authenticator` instead of auth's JWKS over gRPC (auth itself
    /// verifies against its own store).
    pub fn authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticator = Some(authenticator);
        self
    }

    /// Mounts a generated tonic server (`XServiceServer::new(api)`).
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    pub fn kind(&self) -> ServiceKind {
        self.kind
    }

    /// Fully-qualified names of the mounted services.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// Why a service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A service could not prepare what it needs (key material, clients, …).
    #[error("{0}")]
    Setup(String),
    /// A configuration section the service reads is invalid (the error names the key); the
    /// process exits 64 like for any other bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The whole life of a service process: open its store, migrate it, build its gRPC services on
/// it, serve until `shutdown`, drain. Every service's `run` is this with its own parts.
pub async fn run_service(
    config: Config,
    kind: ServiceKind,
    migrations: &MigrationSet,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
    build: impl FnOnce(Database) -> GrpcService,
) -> Result<(), RunError> {
    // Every log line of this service, including its background tasks, carries its name.
    let span = tracing::info_span!("service", service = %kind);
    async move {
        // Before the database is touched: contracts that cannot be enforced never start.
        crate::try_policy().map_err(ServeError::from)?;
        let db = Database::connect(&config.database_url(kind), kind.name()).await?;
        db.migrate(kind.name(), migrations).await?;
        let service = build(db.clone());
        serve(&config, service, db, listeners, shutdown).await?;
        Ok(())
    }
    .instrument(span)
    .await
}

/// Why [`serve`] stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The contracts cannot be enforced (a method without an access option): never serve them.
    #[error("refusing to start: {0}")]
    Policy(#[from] PolicyError),
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("admin listener failed: {0}")]
    Admin(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Clients(#[from] crate::clients::ClientSetupError),
}

/// Runs `service` until `shutdown` resolves, then drains (see the module docs).
pub async fn serve(
    config: &Config,
    service: GrpcService,
    db: Database,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let kind = service.kind;
    // First: a contract whose access cannot be read must not serve anything, not even health.
    let policy = crate::try_policy()?.clone();
    let grpc_addr = listeners.grpc.local_addr()?;
    let admin_addr = listeners.admin.local_addr()?;

    let health = HealthState::new(&service.names).await;
    health.set_ready(db.ping().await).await;

    let mut names: Vec<&str> = service.names.clone();
    names.extend(INFRA_SERVICES);
    let reflection_v1 = reflection_builder(&names).build_v1()?;
    let reflection_v1alpha = reflection_builder(&names).build_v1alpha()?;

    // Store readiness drives health until the drain starts.
    let poll_stop = CancellationToken::new();
    let poller = tokio::spawn(
        poll_readiness(
            health.clone(),
            db.clone(),
            config.health_poll(),
            poll_stop.clone(),
        )
        .in_current_span(),
    );

    let admin_stop = CancellationToken::new();
    let admin = tokio::spawn(
        crate::admin::serve(
            listeners.admin,
            crate::admin::router(health.clone(), kind.name()),
            admin_stop.clone().cancelled_owned(),
        )
        .in_current_span(),
    );

    let background_stop = CancellationToken::new();
    let background: Vec<_> = service
        .background
        .into_iter()
        .map(|(name, task)| {
            let task = task(background_stop.clone());
            (name, tokio::spawn(task.in_current_span()))
        })
        .collect();

    let drain_started = CancellationToken::new();
    let signal = {
        let health = health.clone();
        let drain_started = drain_started.clone();
        async move {
            shutdown.await;
            tracing::info!(service = %kind, "draining");
            drain_started.cancel();
            health.start_drain().await;
        }
    };

    let incoming = TcpIncoming::from(listeners.grpc).with_nodelay(Some(true));
    let authenticator = match service.authenticator.clone() {
        Some(authenticator) => authenticator,
        None => crate::auth::remote_authenticator(config, kind.name())?,
    };
    let authenticator = crate::auth::with_service_identities(config, kind.name(), authenticator)
        .map_err(crate::clients::ClientSetupError::from)?;
    let server = grpc_server(config, kind.name(), policy, Some(authenticator))?
        .add_routes(service.routes)
        .add_service(health.service())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, signal);

    tracing::info!(service = %kind, grpc = %grpc_addr, admin = %admin_addr, "listening");

    let grace = config.shutdown_grace();
    let deadline = async {
        drain_started.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = server => result.map_err(ServeError::from),
        () = deadline => {
            tracing::warn!(service = %kind, grace_secs = grace.as_secs(), "drain deadline passed; cutting off in-flight calls");
            Ok(())
        }
    };

    poll_stop.cancel();
    let _ = poller.await;
    background_stop.cancel();
    for (name, task) in background {
        if let Err(err) = task.await {
            tracing::error!(service = %kind, task = name, error = %err, "background task failed");
        }
    }
    admin_stop.cancel();
    let admin_result = admin.await;
    db.close().await;
    tracing::info!(service = %kind, "stopped");
    result?;
    match admin_result {
        Ok(inner) => inner.map_err(ServeError::from),
        Err(join) => Err(ServeError::Admin(std::io::Error::other(join.to_string()))),
    }
}

/// The layers every Ironmesh gRPC server runs: the message limit, then the shared stack.
pub type GrpcLayers = tower::layer::util::Stack<
    ServerStack,
    tower::layer::util::Stack<MessageLimitLayer, tower::layer::util::Identity>,
>;

/// A tonic server builder with everything a service's listener needs — keepalive, optional mTLS,
/// the message limit and the interceptor stack for `service` — but no routes yet. [`serve`] uses
/// it, and so does `ironmesh-bench`, so what is measured is what runs. `policy` says who may
/// call what; `authenticator` verifies credentials (`None`: no authentication layer at all).
pub fn grpc_server(
    config: &Config,
    service: &'static str,
    policy: PolicyTable,
    authenticator: Option<Arc<dyn Authenticator>>,
) -> Result<Server<GrpcLayers>, ServeError> {
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT));
    if let Some(tls) = crate::tls::server_config(&config.tls)? {
        builder = builder.tls_config(tls)?;
    }
    let stack = ServerStack::new(ServerStackConfig {
        service,
        policy,
        authenticator,
        concurrency_limit: config.concurrency_limit,
        default_deadline: config.default_deadline(),
        max_deadline: config.max_deadline(),
    });
    Ok(builder
        // Outermost, so every request body is wrapped before anything else sees it. It rejects
        // nothing here: the wrapped body fails with RESOURCE_EXHAUSTED when tonic reads an
        // oversized message's length prefix, which happens inside the handler, after every
        // layer below has run — but before that message's payload is buffered.
        .layer(MessageLimitLayer::new(config.max_message_bytes))
        // The shared interceptor stack (request id, trace, metrics, load shed, deadline, …).
        .layer(stack))
}

fn reflection_builder<'a>(names: &[&str]) -> tonic_reflection::server::Builder<'a> {
    // Both reflection versions are listed by both servers, so both descriptor sets are
    // registered explicitly: tonic-reflection on its own adds only the version it builds, and
    // `buf curl --list-methods` then fails to resolve the other listed name.
    let mut builder = tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(ironmesh_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    for name in names {
        builder = builder.with_service_name(*name);
    }
    builder
}

async fn poll_readiness(
    health: HealthState,
    db: Database,
    every: Duration,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; serve() already checked once
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => health.set_ready(db.ping().await).await,
        }
    }
}
