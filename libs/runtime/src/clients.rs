//! Channels to other services, all built by the one shared client builder with this process's
//! policy table, the configured endpoint and mTLS settings. A service's channels carry its own
//! identity ([`channel`]); only the gateway forwards the end user's token ([`forwarding_channel`]).

use std::sync::Arc;

use ironmesh_interceptors::auth::service::{ServiceSecretError, ServiceTokens};
use ironmesh_interceptors::client::{ClientBuilder, ClientError, Credentials, GrpcChannel};

use crate::config::{Config, ServiceKind};
use crate::tls::TlsError;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Retries are decided by the policy table, which the contracts could not build.
    #[error(transparent)]
    Policy(#[from] ironmesh_interceptors::policy::PolicyError),
    /// No service identity secret to call other services with.
    #[error(transparent)]
    Identity(#[from] ServiceSecretError),
}

/// A channel from the service `caller` to `upstream`, ready for a generated client; every call
/// authenticates as `service:<caller>`:
/// `InventoryServiceClient::new(clients::channel(&config, "orders", ServiceKind::Inventory)?)`.
/// Must be called inside a tokio runtime.
pub fn channel(
    config: &Config,
    caller: &'static str,
    upstream: ServiceKind,
) -> Result<GrpcChannel, ClientSetupError> {
    let secret = crate::auth::service_secret(config)?;
    let tokens = ServiceTokens::new(&secret, caller, upstream.name());
    build(
        config,
        caller,
        upstream,
        Credentials::Service(Arc::new(tokens)),
    )
}

/// The gateway's channel to `upstream`: calls carry the end user's `authorization` unchanged
/// (the gateway → service hop is the only one that forwards it, DESIGN.md §6).
pub fn forwarding_channel(
    config: &Config,
    caller: &'static str,
    upstream: ServiceKind,
) -> Result<GrpcChannel, ClientSetupError> {
    build(config, caller, upstream, Credentials::ForwardCaller)
}

fn build(
    config: &Config,
    caller: &'static str,
    upstream: ServiceKind,
    credentials: Credentials,
) -> Result<GrpcChannel, ClientSetupError> {
    let mut builder = ClientBuilder::new(caller, upstream.name(), &config.endpoint(upstream))
        .policy(crate::try_policy()?.clone())
        .credentials(credentials);
    if let Some(tls) = crate::tls::client_config(&config.tls)? {
        builder = builder.tls(tls);
    }
    Ok(builder.build()?)
}
