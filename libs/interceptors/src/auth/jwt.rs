//! Local verification of the access tokens auth issues: Ed25519-signed JWTs (`alg` pinned to
//! EdDSA, `typ` `at+jwt`), checked against a JWKS that is fetched once, cached, and refreshed
//! when a token names an unknown `kid` — at most once per `refresh_interval`, so a flood of
//! forged `kid`s cannot turn into a flood of JWKS fetches. Everything a hostile token can vary
//! (size, header, `kid`, algorithm, audience, issuer, times) fails closed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use serde::Deserialize;
use tokio::time::Instant;

use super::{AuthFailure, Authenticator, Principal, fingerprint};
use crate::BoxError;

/// The `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Tokens longer than this are not parsed.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// One public key of the JWKS (OKP / Ed25519).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicJwk {
    pub kid: String,
    /// The base64url public key (`x`).
    pub x: String,
}

/// Where the JWKS comes from (auth's `GetJwks` over gRPC, or auth's own store).
pub trait KeySource: Send + Sync + 'static {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Vec<PublicJwk>, BoxError>> + Send + '_>>;
}

/// The claims of an access token.
#[derive(Debug, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scope: String,
}

/// How long a verified token is remembered (never beyond its own expiry).
const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// Remembered tokens above this many are dropped wholesale (bounded memory).
const VERIFIED_LIMIT: usize = 10_000;

/// Verifies access tokens against a cached JWKS. A token that verified is remembered for up to a
/// minute (never past its `exp`): callers present the same token many times, and an Ed25519
/// check plus JSON parsing costs several times a cheap RPC. Access tokens cannot be revoked
/// before they expire anyway, so remembering one changes no answer.
pub struct JwtAuthenticator {
    source: Box<dyn KeySource>,
    validation: Validation,
    refresh_interval: Duration,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    verified: RwLock<HashMap<[u8; 32], (Principal, Instant)>>,
}

#[derive(Debug, Deserialize)]
struct Expiry {
    exp: u64,
}

impl JwtAuthenticator {
    pub fn new(
        source: impl KeySource,
        issuer: &str,
        audience: &str,
        refresh_interval: Duration,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "sub", "iss", "aud", "jti"]);
        Self {
            source: Box::new(source),
            validation,
            refresh_interval,
            keys: RwLock::new(HashMap::new()),
            last_refresh: tokio::sync::Mutex::new(None),
            verified: RwLock::new(HashMap::new()),
        }
    }

    pub fn shared(self) -> Arc<dyn Authenticator> {
        Arc::new(self)
    }

    /// The key for `kid`, refreshing the JWKS if it is unknown and a refresh is allowed now.
    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthFailure> {
        if let Some(key) = self.keys.read().get(kid) {
            return Ok(key.clone());
        }
        let mut last = self.last_refresh.lock().await;
        // Another call may have refreshed while we waited for the lock.
        if let Some(key) = self.keys.read().get(kid) {
            return Ok(key.clone());
        }
        if last.is_some_and(|at| at.elapsed() < self.refresh_interval) {
            return Err(AuthFailure::Rejected("unknown kid"));
        }
        *last = Some(Instant::now());
        let jwks = self
            .source
            .fetch()
            .await
            .map_err(|e| AuthFailure::KeysUnavailable(e.to_string()))?;
        let mut keys = HashMap::with_capacity(jwks.len());
        for jwk in jwks {
            match DecodingKey::from_ed_components(&jwk.x) {
                Ok(key) => {
                    keys.insert(jwk.kid, key);
                }
                Err(err) => tracing::warn!(kid = %jwk.kid, error = %err, "ignoring unusable JWK"),
            }
        }
        let found = keys.get(kid).cloned();
        *self.keys.write() = keys;
        found.ok_or(AuthFailure::Rejected("unknown kid"))
    }

    /// The principal of the token with `fingerprint`, if it was verified recently.
    fn remembered(&self, fingerprint: &[u8; 32]) -> Option<Principal> {
        let verified = self.verified.read();
        let (principal, until) = verified.get(fingerprint)?;
        (*until > Instant::now()).then(|| principal.clone())
    }

    /// Verifies `token` and returns its principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthFailure::Rejected("oversized token"));
        }
        let fingerprint = fingerprint(token);
        if let Some(principal) = self.remembered(&fingerprint) {
            return Ok(principal);
        }
        let now = Instant::now();
        let principal = self.verify_uncached(token).await?;
        let until = now + VERIFIED_TTL.min(remaining_lifetime(token));
        let mut verified = self.verified.write();
        if verified.len() >= VERIFIED_LIMIT {
            verified.retain(|_, (_, at)| *at > now);
            if verified.len() >= VERIFIED_LIMIT {
                verified.clear();
            }
        }
        verified.insert(fingerprint, (principal.clone(), until));
        Ok(principal)
    }

    async fn verify_uncached(&self, token: &str) -> Result<Principal, AuthFailure> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Rejected("malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthFailure::Rejected("algorithm not allowed"));
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(AuthFailure::Rejected("not an access token"));
        }
        let kid = header.kid.ok_or(AuthFailure::Rejected("no kid"))?;
        if !valid_kid(&kid) {
            return Err(AuthFailure::Rejected("hostile kid"));
        }
        let key = self.key(&kid).await?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|_| AuthFailure::Rejected("signature or claims invalid"))?;
        let claims = data.claims;
        Ok(Principal {
            subject: claims.sub.into(),
            session: claims.sid.map(Into::into),
            roles: claims.roles.into(),
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            kind: super::PrincipalKind::User,
        })
    }
}

/// Time left before a (verified) token's `exp`, or zero if it cannot be read.
fn remaining_lifetime(token: &str) -> Duration {
    use base64::Engine;
    let exp = token
        .split('.')
        .nth(1)
        .and_then(|claims| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .ok()
        })
        .and_then(|json| serde_json::from_slice::<Expiry>(&json).ok())
        .map_or(0, |e| e.exp);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Duration::from_secs(exp.saturating_sub(now))
}

/// Key ids are short and plain: letters, digits, `-`, `_`.
fn valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Authenticator for JwtAuthenticator {
    fn verify_now(&self, credential: &str) -> Option<Result<Principal, AuthFailure>> {
        if credential.len() > MAX_TOKEN_BYTES {
            return None;
        }
        self.remembered(&fingerprint(credential)).map(Ok)
    }

    fn authenticate<'a>(
        &'a self,
        credential: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>> {
        Box::pin(self.verify(credential))
    }
}

#[cfg(test)]
mod tests {
    use super::valid_kid;

    #[test]
    fn hostile_kids_are_rejected() {
        assert!(valid_kid("k-2026_11"));
        assert!(!valid_kid("../../x"));
        assert!(!valid_kid(""));
        assert!(!valid_kid(&"a".repeat(10_000)));
        assert!(!valid_kid("a b"));
    }
}
