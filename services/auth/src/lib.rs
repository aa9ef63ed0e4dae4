//! Accounts, passwords, tokens (EdDSA JWT + JWKS), refresh sessions, API keys, TOTP and GDPR
//! export/delete — and the template the other services copy.
//!
//! # Layout
//! - [`run`]: load the master key, open and migrate the store, serve `AuthService` (and the
//!   outbox's `EventsAdminService`, with the relay beside it) until shutdown.
//! - [`events`]: the security events auth writes through the outbox, one constructor per type
//!   (payloads in `proto/ironmesh/auth/v1/events.proto`); never a secret.
//! - [`settings`]: auth's configuration sections (`lockout`; the sealing library's `secrets`).
//! - [`operator`]: `ironmesh admin create-user` / `rotate-signing-key` and the master key, with
//!   [`operator::OperatorError`].
//! - [`domain`]: users, sessions, API keys, signing keys, TOTP state, the refresh-rotation rules,
//!   input rules, redacted secret types, [`domain::AuthError`] (no proto, no SQL).
//! - `service/`: the operations over store, hasher, keys and lockout, one file per feature
//!   (`sessions`, `admin`, `api_keys`, `contacts`, `totp`, `gdpr`).
//! - `store/`: the schema per backend ([`MIGRATIONS`]) and every query, one file per feature;
//!   returns domain types, errors typed as `StoreError`.
//! - `grpc`: the tonic adapter: proto ⇄ domain with plain functions, errors → status in one
//!   function.
//! - `password`: argon2id hashing on a bounded blocking pool.
//! - `keys`: Ed25519 signing keys sealed at rest (through `ironmesh-sealing`), rotation, the JWKS.
//! - [`throttle`]: the brute-force [`throttle::Lockout`] of logins over counters in Redis when
//!   configured, else in process.
//! - `totp`: the TOTP codes and recovery codes.
#![forbid(unsafe_code)]

pub mod domain;
pub mod events;
mod grpc;
mod keys;
pub mod operator;
mod password;
mod service;
pub mod settings;
mod store;
pub mod throttle;
mod tokens;
mod totp;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ironmesh_interceptors::BoxError;
use ironmesh_interceptors::auth::api_key::ApiKeyLookup;
use ironmesh_interceptors::auth::jwt::{KeySource, PublicJwk};
use ironmesh_interceptors::auth::{AuthFailure, Principal, PrincipalKind};
use ironmesh_outbox::Events;
use ironmesh_proto::ironmesh::auth::v1::auth_service_server::AuthServiceServer;
use ironmesh_runtime::{Config, GrpcService, Listeners, RunError, ServiceKind, limit_sizes};

pub use keys::ScheduledKey;
pub use operator::{create_user, rotate_signing_key};
use settings::LockoutConfig;
pub use settings::SECTIONS;
pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Auth;

/// Serves auth on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let lockout_config = config.section::<LockoutConfig>()?;
    let sealing = operator::sealing(&config).map_err(|err| match err {
        operator::OperatorError::Config(err) => RunError::Config(err),
        other => RunError::Setup(other.to_string()),
    })?;
    let lockout = lockout(&config, &lockout_config).await;
    let limit = config.max_message_bytes;
    let tokens = config.tokens.clone();
    let trusted_forwarders = config.trusted_forwarders.clone();
    let events = Events::from_config(&config, KIND)?;
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
        let store = store::Store::new(db.clone(), events.outbox().clone());
        let ttl = |secs: u64| chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX));
        let keys = Arc::new(keys::SigningKeys::configured(
            &tokens,
            store.clone(),
            sealing.clone(),
        ));
        let accounts = service::Accounts::new(
            store,
            password::Hasher::default(),
            keys.clone(),
            service::TokenSettings {
                issuer: tokens.issuer.clone(),
                audience: tokens.audience.clone(),
                access_ttl: ttl(tokens.access_ttl_secs),
                refresh_ttl: ttl(tokens.refresh_ttl_secs),
                race_window: chrono::Duration::milliseconds(
                    i64::try_from(tokens.refresh_race_window_ms).unwrap_or(i64::MAX),
                ),
            },
            lockout,
            sealing,
        );
        // Auth checks credentials against its own keys and store, not over gRPC to itself.
        let authenticator = ironmesh_runtime::auth::credentials(
            &tokens,
            LocalJwks(keys),
            LocalApiKeys(accounts.clone()),
        );
        let service = GrpcService::new(KIND)
            .add_service(limit_sizes!(
                AuthServiceServer::new(grpc::AuthApi::new(accounts, trusted_forwarders)),
                limit
            ))
            .authenticator(authenticator);
        events.mount(service, db)
    })
    .await
}

/// Brute-force protection as configured: counters in Redis when `redis_url` is set (falling back
/// to this process if Redis cannot be reached at start), in this process otherwise.
async fn lockout(config: &Config, lockout: &LockoutConfig) -> throttle::Lockout {
    let policy = |threshold| throttle::Policy {
        threshold,
        window: Duration::from_secs(lockout.window_secs),
        base: Duration::from_secs(lockout.base_secs),
        max: Duration::from_secs(lockout.max_secs),
    };
    let throttle = match &config.redis_url {
        Some(url) => match throttle::Throttle::redis(url).await {
            Ok(throttle) => throttle,
            Err(err) => {
                tracing::warn!(error = %err, "Redis unavailable at start; login counters stay in this process");
                throttle::Throttle::in_memory()
            }
        },
        None => throttle::Throttle::in_memory(),
    };
    throttle::Lockout {
        throttle,
        account: policy(lockout.account_threshold),
        address: policy(lockout.ip_threshold),
    }
}

/// API keys straight from auth's own store.
struct LocalApiKeys(service::Accounts);

impl ApiKeyLookup for LocalApiKeys {
    fn lookup<'a>(
        &'a self,
        key: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<Principal>, AuthFailure>> + Send + 'a>>
    {
        Box::pin(async move {
            match self.0.authenticate_api_key(key).await {
                Ok(key) => Ok(Some(Principal {
                    subject: key.user_id.into(),
                    session: None,
                    roles: std::sync::Arc::default(),
                    scopes: key.scopes.into(),
                    kind: PrincipalKind::ApiKey,
                })),
                Err(domain::AuthError::InvalidApiKey) => Ok(None),
                // For the log only: callers see a generic UNAUTHENTICATED.
                Err(err) => Err(AuthFailure::KeysUnavailable(error_chain(&err))),
            }
        })
    }
}

/// The JWKS straight from auth's own key ring.
struct LocalJwks(Arc<keys::SigningKeys>);

impl KeySource for LocalJwks {
    fn fetch(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<PublicJwk>, BoxError>> + Send + '_>> {
        Box::pin(async move {
            let keys = self.0.jwks().await.map_err(|e| Box::new(e) as BoxError)?;
            Ok(keys
                .into_iter()
                .map(|k| PublicJwk { kid: k.kid, x: k.x })
                .collect())
        })
    }
}

/// `err: source: source…` on one line, for logs and operator messages.
pub(crate) use ironmesh_interceptors::grpc::error_chain;
