//! Channels to other services, all built by the one shared client builder with this process's
//! policy table, the configured endpoint and mTLS settings.

use ironmesh_interceptors::client::{ClientBuilder, ClientError, GrpcChannel};

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
}

/// A channel from `caller` to `upstream`, ready for a generated client:
/// `OrdersServiceClient::new(clients::channel(&config, "gateway", ServiceKind::Orders)?)`.
/// Must be called inside a tokio runtime.
pub fn channel(
    config: &Config,
    caller: &'static str,
    upstream: ServiceKind,
) -> Result<GrpcChannel, ClientSetupError> {
    let mut builder = ClientBuilder::new(caller, upstream.name(), &config.endpoint(upstream))
        .policy(crate::try_policy()?.clone());
    if let Some(tls) = crate::tls::client_config(&config.tls)? {
        builder = builder.tls(tls);
    }
    Ok(builder.build()?)
}
