//! How a service learns who is calling: access tokens are verified locally
//! ([`ironmesh_interceptors::auth::jwt::JwtAuthenticator`]) against auth's JWKS, fetched over gRPC
//! through the shared client stack and cached; API keys are resolved by auth's internal
//! `AuthenticateApiKey`, called as this service (its service identity); service tokens are
//! verified locally with the deployment's service secret ([`service_secret`]).

use std::sync::Arc;
use std::time::Duration;

use ironmesh_interceptors::BoxError;
use ironmesh_interceptors::auth::api_key::{ApiKeyAuthenticator, ApiKeyLookup, Credentials};
use ironmesh_interceptors::auth::jwt::{JwtAuthenticator, KeySource, PublicJwk};
use ironmesh_interceptors::auth::service::{
    ServiceAuthenticator, ServiceSecret, ServiceSecretError, WithServices,
};
use ironmesh_interceptors::auth::{AuthFailure, Authenticator, Principal, PrincipalKind};
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
                        roles: std::sync::Arc::default(),
                        scopes: answer.scopes.into(),
                        kind: PrincipalKind::ApiKey,
                    }))
                }
                Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(None),
                Err(status) => Err(AuthFailure::KeysUnavailable(status.code().to_string())),
            }
        })
    }
}

/// The file the service secret is generated into when none is configured.
pub const SERVICE_KEY_FILE: &str = "service.key";

/// The deployment's service identity secret: `service_identity.secret`, else — when every
/// service stores in SQLite, i.e. one node — `data_dir/service.key` (generated once, mode 0600).
/// PostgreSQL means replicas, whose generated files would differ: there it must be configured.
pub fn service_secret(config: &Config) -> Result<ServiceSecret, ServiceSecretError> {
    let single_node = ServiceKind::ALL
        .iter()
        .all(|kind| config.database_url(*kind).starts_with("sqlite:"));
    ServiceSecret::load(
        config.service_identity.secret.as_deref(),
        single_node
            .then(|| config.data_dir.join(SERVICE_KEY_FILE))
            .as_deref(),
    )
}

/// `authenticator`, plus service tokens addressed to `service`: what every server's
/// authentication layer runs, so internal methods can admit other services.
pub fn with_service_identities(
    config: &Config,
    service: &str,
    authenticator: Arc<dyn Authenticator>,
) -> Result<Arc<dyn Authenticator>, ServiceSecretError> {
    let secret = service_secret(config)?;
    Ok(Arc::new(WithServices {
        services: Arc::new(ServiceAuthenticator::new(&secret, service)),
        others: authenticator,
    }))
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
