//! Accounts, passwords, tokens (EdDSA JWT + JWKS), refresh sessions — and, in the next
//! increments, API keys, TOTP and GDPR export/delete.
//!
//! # Layout
//! - [`run`]: open the store, migrate, load the master key, serve `AuthService` until shutdown.
//! - `domain`: roles, email and password rules, [`domain::AuthError`] (no proto, no SQL).
//! - `password`: argon2id hashing on a bounded blocking pool.
//! - `keys`: Ed25519 signing keys sealed at rest, rotation, the JWKS.
//! - [`throttle`]: brute-force lockout counters, in Redis when configured, else in process.
//! - `totp`: the TOTP second factor and recovery codes.
//! - `tokens`: access tokens (JWT) and opaque refresh tokens.
//! - `service`: the operations (register, login, refresh, sessions, …) over store, hasher, keys.
//! - `store`: the schema per backend ([`MIGRATIONS`]) and every query.
//! - `grpc`: the tonic adapter; errors → status in one place.
//! - `access`: who may call each RPC.
#![forbid(unsafe_code)]

mod access;
pub mod domain;
mod grpc;
mod keys;
mod password;
mod service;
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
use ironmesh_interceptors::auth::{AuthFailure, Principal};
use ironmesh_proto::ironmesh::auth::v1::auth_service_server::AuthServiceServer;
use ironmesh_runtime::config::TokenConfig;
use ironmesh_runtime::{Config, GrpcService, Listeners, RunError, ServiceKind, limit_sizes};
use ironmesh_sealing::Keyring;

pub use store::MIGRATIONS;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Auth;

/// Serves auth on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let sealing = sealing(&config).map_err(RunError::Setup)?;
    let guard = guard(&config).await;
    let limit = config.max_message_bytes;
    let tokens = config.tokens.clone();
    let trusted_forwarders = config.trusted_forwarders.clone();
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
        let store = store::Store::new(db);
        let ttl = |secs: u64| chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX));
        let keys = Arc::new(key_ring(&tokens, store.clone(), sealing.clone()));
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
            guard,
            sealing,
        );
        // Auth checks credentials against its own keys and store, not over gRPC to itself.
        let authenticator = ironmesh_runtime::auth::credentials(
            &tokens,
            LocalJwks(keys),
            LocalApiKeys(accounts.clone()),
        );
        GrpcService::new(KIND)
            .add_service(limit_sizes!(
                AuthServiceServer::new(grpc::AuthApi::new(accounts, trusted_forwarders)),
                limit
            ))
            .access(&access::table())
            .authenticator(authenticator)
    })
    .await
}

/// Makes a new signing key now and retires the current ones (they stay published until their
/// tokens expire) — `ironmesh admin rotate-signing-key`. Returns the new key id.
pub async fn rotate_signing_key(config: &Config) -> Result<String, String> {
    let sealing = sealing(config)?;
    let db = open(config).await?;
    let ring = key_ring(&config.tokens, store::Store::new(db.clone()), sealing);
    let key = ring
        .rotate(chrono::Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    Ok(key.kid)
}

/// Creates an account with `roles` directly in the store — how the first administrator comes to
/// exist (`ironmesh admin create-user`). The password policy applies. Returns the user id.
pub async fn create_user(
    config: &Config,
    email: &str,
    password: &str,
    display_name: &str,
    roles: &[domain::Role],
) -> Result<String, String> {
    let mut problems = Vec::new();
    let email = domain::Email::parse(email)
        .map_err(|v| problems.push(v))
        .ok();
    let name = domain::check_display_name(display_name)
        .map_err(|v| problems.push(v))
        .ok();
    if let Err(v) = domain::check_new_password("password", password) {
        problems.push(v);
    }
    if roles.is_empty() {
        problems.push(domain::Violation {
            field: "roles",
            description: "at least one role is required".to_owned(),
        });
    }
    if !problems.is_empty() {
        let text: Vec<String> = problems
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect();
        return Err(text.join("; "));
    }
    let (email, name) = (email.expect("checked"), name.expect("checked"));
    let db = open(config).await?;
    let hash = password::Hasher::default()
        .hash(password)
        .await
        .map_err(|e| e.to_string())?;
    let id = uuid::Uuid::now_v7().to_string();
    let result = store::Store::new(db.clone())
        .insert_user(&id, email.as_str(), &hash, &name, roles, chrono::Utc::now())
        .await;
    db.close().await;
    result.map_err(|e| e.to_string())?;
    Ok(id)
}

/// Opens and migrates auth's store for an operator command.
async fn open(config: &Config) -> Result<ironmesh_runtime::Database, String> {
    let db = ironmesh_runtime::Database::connect(&config.database_url(KIND), KIND.name())
        .await
        .map_err(|e| e.to_string())?;
    db.migrate(KIND.name(), &MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    Ok(db)
}

/// The key ring for `tokens`' rotation period; a retired key stays published for one access
/// token lifetime plus the verifiers' leeway.
fn key_ring(tokens: &TokenConfig, store: store::Store, sealing: Keyring) -> keys::KeyRing {
    keys::KeyRing::new(
        store,
        sealing,
        Duration::from_secs(tokens.key_rotation_secs),
        Duration::from_secs(tokens.access_ttl_secs)
            + Duration::from_secs(ironmesh_interceptors::auth::jwt::LEEWAY_SECS),
    )
}

/// Brute-force protection as configured: counters in Redis when `redis_url` is set (falling back
/// to this process if Redis cannot be reached at start), in this process otherwise.
async fn guard(config: &Config) -> service::Guard {
    let lockout = &config.lockout;
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
    service::Guard {
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
                    roles: Vec::new(),
                    scopes: key.scopes,
                })),
                Err(domain::AuthError::InvalidApiKey) => Ok(None),
                Err(err) => Err(AuthFailure::KeysUnavailable(err.to_string())),
            }
        })
    }
}

/// The JWKS straight from auth's own key ring.
struct LocalJwks(Arc<keys::KeyRing>);

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

/// The keyring sealing secrets at rest, holding the master key: configured, or — for a SQLite
/// (single-node) setup — generated once into `data_dir/master.key` with owner-only permissions.
/// It also opens the values auth sealed before sealed values named their key (see
/// `ironmesh_sealing::envelope`); new values are always written as envelopes.
fn sealing(config: &Config) -> Result<Keyring, String> {
    use ironmesh_sealing::MasterKeyError;
    let file = config
        .database_url(KIND)
        .starts_with("sqlite:")
        .then(|| config.data_dir.join("master.key"));
    let key = ironmesh_sealing::load_master_key(config.secrets.master_key.as_deref(), file.as_deref())
        .map_err(|err| match err {
            MasterKeyError::Invalid => "secrets.master_key is invalid".to_owned(),
            MasterKeyError::Required => "secrets.master_key (IRONMESH_SECRETS__MASTER_KEY) is required with PostgreSQL: every replica must share it".to_owned(),
            other => other.to_string(),
        })?;
    Ok(Keyring::new(ironmesh_sealing::Key::derived(&key)).accept_legacy())
}
