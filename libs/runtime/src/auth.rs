//! How a service learns who is calling: access tokens are verified locally
//! ([`ironmesh_interceptors::auth::jwt::JwtAuthenticator`]) against auth's JWKS, fetched over gRPC
//! through the shared client stack and cached.

use std::sync::Arc;
use std::time::Duration;

use ironmesh_interceptors::BoxError;
use ironmesh_interceptors::auth::Authenticator;
use ironmesh_interceptors::auth::jwt::{JwtAuthenticator, KeySource, PublicJwk};
use ironmesh_interceptors::client::GrpcChannel;
use ironmesh_proto::ironmesh::auth::v1::GetJwksRequest;
use ironmesh_proto::ironmesh::auth::v1::auth_service_client::AuthServiceClient;

use crate::clients::ClientSetupError;
use crate::config::{Config, ServiceKind};

/// The JWKS as auth publishes it (`GetJwks`).
pub struct RemoteJwks {
    client: AuthServiceClient<GrpcChannel>,
}

impl KeySource for RemoteJwks {
    fn fetch(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<PublicJwk>, BoxError>> + Send + '_>,
    > {
        let mut client = self.client.clone();
        Box::pin(async move {
            let keys = client
                .get_jwks(GetJwksRequest {})
                .await
                .map_err(|status| Box::new(status) as BoxError)?
                .into_inner()
                .keys;
            Ok(keys
                .into_iter()
                .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
                .map(|k| PublicJwk { kid: k.kid, x: k.x })
                .collect())
        })
    }
}

/// The verifier `caller` uses for incoming calls: tokens checked against auth's JWKS.
pub fn remote_authenticator(
    config: &Config,
    caller: &'static str,
) -> Result<Arc<dyn Authenticator>, ClientSetupError> {
    let channel = crate::clients::channel(config, caller, ServiceKind::Auth)?;
    Ok(verifier(
        &config.tokens,
        RemoteJwks {
            client: AuthServiceClient::new(channel),
        },
    ))
}

/// A verifier for `settings`' issuer and audience over any key source.
pub fn verifier(
    settings: &crate::config::TokenConfig,
    source: impl KeySource,
) -> Arc<dyn Authenticator> {
    JwtAuthenticator::new(
        source,
        &settings.issuer,
        &settings.audience,
        Duration::from_secs(settings.jwks_refresh_secs),
    )
    .shared()
}
