//! The REST edge of Ironmesh.
//!
//! # Layout
//! - [`upstream`]: one channel per service through the shared client stack, the readiness check
//!   over grpc.health.v1 that `/readyz` uses, and the admin routes (`/healthz`, `/readyz`,
//!   `/metrics`).
//! - [`access`]: who may call a method, from the contract (`ironmesh.api.v1.access`): internal
//!   methods are never routed, the rest is published in OpenAPI.
//! - [`config`]: the `gateway` configuration section ([`GatewayConfig`]), validated here.
//! - [`error`]: every error the gateway answers — the gRPC code → HTTP table and the gateway's
//!   own refusals ([`error::ApiError`]), all as `google.rpc.Status` JSON.
//! - [`header_limit`]: 431 for request headers over the limit, before any other work.
//! - [`ratelimit`]: GCRA rate limiting per address and per credential, per route group, shared
//!   through Redis.
//! - [`rest`]: the public REST router: `/openapi.json`, metrics, security headers, CORS.
//! - `red`: the RED metrics layer, with each route's metric handles resolved once.
//! - [`transcode`]: descriptor-driven REST → gRPC transcoding (`google.api.http` rules), unary
//!   and server streaming; [`Api`] says which descriptors and channels it serves.
//! - [`openapi`]: the OpenAPI 3.1 document, from the same route table.
//! - `serve`: the accept loop (header read timeout, optional TLS, graceful drain).
//! - [`run`] / [`run_with`]: serve REST and admin listeners until shutdown, then drain.
#![forbid(unsafe_code)]

pub mod access;
pub mod config;
pub mod error;
pub mod header_limit;
pub mod openapi;
pub mod ratelimit;
mod red;
pub mod rest;
mod serve;
pub mod transcode;
pub mod upstream;

pub use config::GatewayConfig;
pub use transcode::{Api, Transcoder};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use ironmesh_runtime::Config;
use ironmesh_runtime::server::{BindError, bind};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The gateway's bound listeners: public REST and admin HTTP.
#[derive(Debug)]
pub struct GatewayListeners {
    pub http: TcpListener,
    pub admin: TcpListener,
}

impl GatewayListeners {
    /// Binds the configured REST and admin ports (`gateway`'s section) on `config.bind_host`.
    pub async fn bind(config: &Config, gateway: &GatewayConfig) -> Result<Self, BindError> {
        let http = bind(
            "gateway",
            "REST",
            SocketAddr::new(config.bind_host, gateway.http_port),
        )
        .await?;
        let admin = bind(
            "gateway",
            "admin HTTP",
            SocketAddr::new(config.bind_host, gateway.admin_port),
        )
        .await?;
        Ok(Self { http, admin })
    }
}

/// Why the gateway stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot set up the client for {service}: {source}")]
    Upstream {
        service: &'static str,
        #[source]
        source: ironmesh_runtime::clients::ClientSetupError,
    },
    #[error("listener failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid REST routes: {0}")]
    Routes(String),
    #[error("cannot load the REST TLS certificate or key: {0}")]
    Tls(String),
    #[error(transparent)]
    Config(#[from] ironmesh_runtime::config::ConfigError),
}

/// Serves the gateway in front of the six Ironmesh services until `shutdown` resolves;
/// `/readyz` turns 503 as soon as the drain starts.
pub async fn run(
    config: Config,
    listeners: GatewayListeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let upstreams = upstream::Upstreams::connect_lazy(&config)?;
    let api = upstreams.api()?;
    serve_api(config, listeners, api, upstreams, shutdown).await
}

/// Serves the gateway in front of `api` (any descriptors and channels: tests use their own
/// contract); `/readyz` still checks the six Ironmesh services.
pub async fn run_with(
    config: Config,
    listeners: GatewayListeners,
    api: Api,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let upstreams = upstream::Upstreams::connect_lazy(&config)?;
    serve_api(config, listeners, api, upstreams, shutdown).await
}

async fn serve_api(
    config: Config,
    listeners: GatewayListeners,
    api: Api,
    upstreams: upstream::Upstreams,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let gateway = config.section::<GatewayConfig>()?;
    let tls = serve::tls_acceptor(&gateway)?;
    let transcoder =
        Arc::new(Transcoder::new(api, &config, &gateway).map_err(GatewayError::Routes)?);
    let openapi = openapi::document(transcoder.table());
    let draining = CancellationToken::new();
    let http_addr = listeners.http.local_addr()?;
    let admin_addr = listeners.admin.local_addr()?;
    tracing::info!(service = "gateway", rest = %http_addr, admin = %admin_addr, tls = tls.is_some(), "listening");

    let limiter = ratelimit::Limiter::new(&gateway, config.redis_url.as_deref()).await;
    let router = rest::router(
        transcoder,
        rest::Edge {
            limiter,
            cors_origins: &gateway.cors_origins,
            tls: tls.is_some(),
            openapi,
            max_header_bytes: gateway.max_header_bytes,
        },
    );
    let rest = serve::serve(
        listeners.http,
        router,
        tls,
        std::time::Duration::from_millis(gateway.header_read_timeout_ms),
        draining.clone(),
    );
    let admin_stop = CancellationToken::new();
    let admin = axum::serve(
        listeners.admin,
        upstream::admin_router(upstreams, draining.clone()),
    )
    .with_graceful_shutdown(admin_stop.clone().cancelled_owned());
    let admin = tokio::spawn(async move { admin.await });

    let grace = config.shutdown_grace();
    let drain = draining.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(service = "gateway", "draining");
        drain.cancel();
    });
    let deadline = async {
        draining.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = rest => {}
        () = deadline => {
            tracing::warn!(service = "gateway", "drain deadline passed; closing open requests");
        }
    }
    admin_stop.cancel();
    let admin_result = admin.await.map_err(std::io::Error::other)?;
    tracing::info!(service = "gateway", "stopped");
    admin_result?;
    Ok(())
}
