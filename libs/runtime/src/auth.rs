//! How a service learns who is calling: access tokens are verified locally
//! ([`ironmesh_interceptors::auth::jwt::JwtAuthenticator`]) against auth's JWKS, fetched over gRPC
//! through the shared client stack and cached.

use std::sync::Arc;
use std::time::Duration;

use ironmesh_interceptors::BoxError;
use ironmesh_interceptors::auth::api_key::{ApiKeyAuthenticator, ApiKeyLookup, Credentials};
use ironmesh_interceptors::auth::jwt::{JwtAuthenticator, KeySource, PublicJwk};
use ironmesh_interceptors::auth::{AuthFailure, Authenticator, Principal};
use ironmesh_interceptors::client::GrpcChannel;
use ironmesh_proto::ironmesh::auth::v1::auth_service_client::AuthServiceClient;
use ironmesh_proto::ironmesh::auth::v1::{AuthenticateApiKeyRequest, GetJwksRequest};

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

/// API keys as auth resolves them (`AuthenticateApiKey`).
pub struct RemoteApiKeys {
    client: AuthServiceClient<GrpcChannel>,
}

impl ApiKeyLookup for RemoteApiKeys {
    fn lookup<'a>(
        &'a self,
        key: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Option<Principal>, AuthFailure>> + Send + 'a>,
    > {
        let mut client = self.client.clone();
        Box::pin(async move {
            let request = AuthenticateApiKeyRequest {
                api_key: key.to_owned(),
            };
            match client.authenticate_api_key(request).await {
                Ok(response) => {
                    let answer = response.into_inner();
                    Ok(Some(Principal {
                        subject: answer.principal_id.into(),
                        session: None,
                        roles: Vec::new(),
                        scopes: answer.scopes,
                    }))
                }
                Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(None),
                Err(status) => Err(AuthFailure::KeysUnavailable(status.code().to_string())),
            }
        })
    }
}

/// The verifier `caller` uses for incoming calls: access tokens checked against auth's JWKS,
/// API keys checked with auth and cached briefly.
pub fn remote_authenticator(
    config: &Config,
    caller: &'static str,
) -> Result<Arc<dyn Authenticator>, ClientSetupError> {
    let client =
        AuthServiceClient::new(crate::clients::channel(config, caller, ServiceKind::Auth)?);
    Ok(credentials(
        &config.tokens,
        RemoteJwks {
            client: client.clone(),
        },
        RemoteApiKeys { client },
    ))
}

/// Tokens verified over `keys`, API keys resolved by `api_keys`.
pub fn credentials(
    settings: &crate::config::TokenConfig,
    keys: impl KeySource,
    api_keys: impl ApiKeyLookup,
) -> Arc<dyn Authenticator> {
    Arc::new(Credentials {
        tokens: verifier(settings, keys),
        api_keys: Arc::new(ApiKeyAuthenticator::new(
            api_keys,
            Duration::from_millis(settings.api_key_cache_ms),
        )),
    })
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
