//! Service identities: how a service calls another as itself (`service:<name>`), never with a
//! borrowed user token.
//!
//! # Mechanism
//! One deployment-wide secret (32 random bytes, [`ServiceSecret`]) is shared by every service
//! process: configured as base64 (`service_identity.secret`, from a Kubernetes Secret), or — for a
//! single-node setup such as `ironmesh up` — generated once into `data_dir/service.key` with mode
//! 0600 ([`ServiceSecret::load`]). A calling service mints short-lived HS256 JWTs for itself
//! ([`ServiceTokens`]: `typ` `svc+jwt`, `sub` `service:<caller>`, `aud` `ironmesh:<upstream>`,
//! `exp` [`TOKEN_LIFETIME`] ahead), cached and re-minted once half their lifetime has passed. The
//! receiving service verifies them ([`ServiceAuthenticator`]: algorithm pinned to HS256, `typ`,
//! signature (HMAC compared in constant time by `ring`), `exp`, and `aud` naming itself) into a
//! principal of kind [`PrincipalKind::Service`] — the only kind the `internal` level admits.
//!
//! The secret never leaves the process: its `Debug` is redacted, and errors name files, not
//! contents. Anyone holding it can act as any service, so it is as sensitive as the master key.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{AuthFailure, Authenticator, Principal, PrincipalKind};

mod secret;

pub use secret::{ServiceSecret, ServiceSecretError};

/// The `typ` header of service tokens (never the `at+jwt` of user access tokens).
pub const SERVICE_TOKEN_TYPE: &str = "svc+jwt";
/// The subject prefix of service principals.
pub const SERVICE_SUBJECT_PREFIX: &str = "service:";
/// How long a minted service token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 5;

/// The audience a service token for `service` carries.
pub fn audience(service: &str) -> String {
    format!("ironmesh:{service}")
}

/// The claims of a service token.
#[derive(Debug, Serialize, Deserialize)]
struct ServiceClaims {
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
}

/// Now, in Unix seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Mints (and caches) this service's tokens for one upstream.
pub struct ServiceTokens {
    key: EncodingKey,
    subject: String,
    audience: String,
    cached: Mutex<Option<(Arc<str>, u64)>>,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokens")
            .field("subject", &self.subject)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// Tokens of `caller` (`service:<caller>`) for calls to `upstream`.
    pub fn new(secret: &ServiceSecret, caller: &str, upstream: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.0.as_slice()),
            subject: format!("{SERVICE_SUBJECT_PREFIX}{caller}"),
            audience: audience(upstream),
            cached: Mutex::new(None),
        }
    }

    /// A valid token: the cached one until half its lifetime has passed, then a new one.
    pub fn token(&self) -> Arc<str> {
        let now = now_secs();
        let mut cached = self.cached.lock();
        if let Some((token, refresh_at)) = &*cached
            && now < *refresh_at
        {
            return token.clone();
        }
        let token: Arc<str> = self.mint(now, now + TOKEN_LIFETIME.as_secs()).into();
        *cached = Some((token.clone(), now + TOKEN_LIFETIME.as_secs() / 2));
        token
    }

    /// A token with explicit issue and expiry times (Unix seconds), uncached: for tests and
    /// tools; calls use [`Self::token`].
    pub fn mint(&self, iat: u64, exp: u64) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(SERVICE_TOKEN_TYPE.to_owned());
        let claims = ServiceClaims {
            sub: self.subject.clone(),
            aud: self.audience.clone(),
            iat,
            exp,
        };
        // HS256 over serialisable claims cannot fail.
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap_or_default()
    }
}

/// Whether `token` claims to be a service token (HS256, `svc+jwt`); decides which verifier
/// judges it, never whether it is valid.
pub fn is_service_token(token: &str) -> bool {
    jsonwebtoken::decode_header(token)
        .is_ok_and(|h| h.alg == Algorithm::HS256 && h.typ.as_deref() == Some(SERVICE_TOKEN_TYPE))
}

/// Verifies service tokens addressed to one service.
pub struct ServiceAuthenticator {
    key: DecodingKey,
    validation: Validation,
}

impl ServiceAuthenticator {
    /// Accepts tokens addressed to `service` (`aud` `ironmesh:<service>`).
    pub fn new(secret: &ServiceSecret, service: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience(service)]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Self {
            key: DecodingKey::from_secret(secret.0.as_slice()),
            validation,
        }
    }

    fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        if !is_service_token(token) {
            return Err(AuthFailure::Rejected("not a service token"));
        }
        let data = jsonwebtoken::decode::<ServiceClaims>(token, &self.key, &self.validation)
            .map_err(|_| AuthFailure::Rejected("service token signature or claims invalid"))?;
        let sub = data.claims.sub;
        if sub
            .strip_prefix(SERVICE_SUBJECT_PREFIX)
            .is_none_or(str::is_empty)
        {
            return Err(AuthFailure::Rejected("not a service subject"));
        }
        Ok(Principal {
            subject: sub.into(),
            session: None,
            roles: Arc::default(),
            scopes: Arc::default(),
            kind: PrincipalKind::Service,
        })
    }
}

impl Authenticator for ServiceAuthenticator {
    /// Service tokens are checked locally (an HMAC), so always at once.
    fn verify_now(&self, credential: &str) -> Option<Result<Principal, AuthFailure>> {
        Some(self.verify(credential))
    }

    fn authenticate<'a>(
        &'a self,
        credential: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>> {
        let answer = self.verify(credential);
        Box::pin(async move { answer })
    }
}

/// Service tokens to [`ServiceAuthenticator`], every other credential to `others`.
pub struct WithServices {
    pub services: Arc<ServiceAuthenticator>,
    pub others: Arc<dyn Authenticator>,
}

impl Authenticator for WithServices {
    fn verify_now(&self, credential: &str) -> Option<Result<Principal, AuthFailure>> {
        if is_service_token(credential) {
            self.services.verify_now(credential)
        } else {
            self.others.verify_now(credential)
        }
    }

    fn authenticate<'a>(
        &'a self,
        credential: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>> {
        if is_service_token(credential) {
            self.services.authenticate(credential)
        } else {
            self.others.authenticate(credential)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> ServiceSecret {
        ServiceSecret::from_bytes([byte; 32])
    }

    /// A token minted by orders for auth verifies at auth as `service:orders`.
    #[test]
    fn minted_tokens_verify_as_the_service() {
        let tokens = ServiceTokens::new(&secret(1), "orders", "auth");
        let principal = ServiceAuthenticator::new(&secret(1), "auth")
            .verify(&tokens.token())
            .expect("a valid service token");
        assert_eq!(&*principal.subject, "service:orders");
        assert_eq!(principal.kind, PrincipalKind::Service);
        // Cached: the same token until half its lifetime has passed.
        assert_eq!(tokens.token(), tokens.token());
    }

    /// Forged (another secret), expired, wrong-audience and non-service-subject tokens fail.
    #[test]
    fn bad_tokens_are_rejected() {
        let verifier = ServiceAuthenticator::new(&secret(1), "auth");
        let forged = ServiceTokens::new(&secret(2), "orders", "auth").token();
        assert!(verifier.verify(&forged).is_err(), "forged");
        let wrong_audience = ServiceTokens::new(&secret(1), "orders", "inventory").token();
        assert!(verifier.verify(&wrong_audience).is_err(), "audience");
        let now = now_secs();
        let expired = ServiceTokens::new(&secret(1), "orders", "auth").mint(now - 600, now - 300);
        assert!(verifier.verify(&expired).is_err(), "expired");
        let mut user = ServiceTokens::new(&secret(1), "orders", "auth");
        user.subject = "0190-user".to_owned();
        assert!(verifier.verify(&user.token()).is_err(), "subject");
        assert!(verifier.verify("not.a.token").is_err());
    }
}
