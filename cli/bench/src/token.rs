//! Real token verification for the `stack+auth` server: an Ed25519 key the bench generates, its
//! public half published as a static JWKS, and an access token minted exactly as auth mints them
//! (header `alg` EdDSA, `typ` `at+jwt`, `kid`; claims iss/aud from `config.tokens`, sub, sid,
//! iat, nbf, exp = now + 900 s, jti, roles, scope).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ironmesh_interceptors::BoxError;
use ironmesh_interceptors::auth::api_key::ApiKeyLookup;
use ironmesh_interceptors::auth::jwt::{KeySource, PublicJwk};
use ironmesh_interceptors::auth::{AuthFailure, Authenticator, Principal};
use ironmesh_runtime::config::TokenConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};

/// Lifetime of the minted token (auth's default `access_ttl_secs`).
const TOKEN_TTL_SECS: u64 = 900;

/// An Ed25519 signing key and its published half.
pub(super) struct BenchKey {
    kid: String,
    pkcs8: Vec<u8>,
    x: String,
}

impl BenchKey {
    pub fn generate(kid: &str) -> Result<Self, String> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| "cannot generate an Ed25519 key".to_owned())?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| "cannot read back the Ed25519 key".to_owned())?;
        Ok(Self {
            kid: kid.to_owned(),
            x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            pkcs8: pkcs8.as_ref().to_vec(),
        })
    }

    /// The public JWK as the server child takes it on its command line: `kid:x`.
    pub fn jwk_arg(&self) -> String {
        format!("{}:{}", self.kid, self.x)
    }

    /// An access token for a `customer`, signed with this key.
    pub fn mint(&self, settings: &TokenConfig) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|err| format!("the clock is before 1970: {err}"))?
            .as_secs();
        let claims = serde_json::json!({
            "iss": settings.issuer,
            "aud": settings.audience,
            "sub": "bench-user",
            "sid": "bench-session",
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_TTL_SECS,
            "jti": random_hex(16)?,
            "roles": ["customer"],
            "scope": "",
        });
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some(ironmesh_interceptors::auth::jwt::ACCESS_TOKEN_TYPE.to_owned());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&self.pkcs8))
            .map_err(|err| format!("cannot sign the access token: {err}"))
    }
}

/// `n` random bytes as lower-case hex.
pub(super) fn random_hex(n: usize) -> Result<String, String> {
    let bytes = random_bytes(n)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(super) fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random source failed".to_owned())?;
    Ok(bytes)
}

/// `kid:x` back into a JWK.
pub(super) fn parse_jwk(arg: &str) -> Option<PublicJwk> {
    let (kid, x) = arg.split_once(':')?;
    (!kid.is_empty() && !x.is_empty()).then(|| PublicJwk {
        kid: kid.to_owned(),
        x: x.to_owned(),
    })
}

/// A JWKS that never changes.
struct StaticJwks(Vec<PublicJwk>);

impl KeySource for StaticJwks {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Vec<PublicJwk>, BoxError>> + Send + '_>> {
        let keys = self.0.clone();
        Box::pin(async move { Ok(keys) })
    }
}

/// No API key is valid (the bench only presents access tokens).
struct NoApiKeys;

impl ApiKeyLookup for NoApiKeys {
    fn lookup<'a>(
        &'a self,
        _key: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<Principal>, AuthFailure>> + Send + 'a>> {
        Box::pin(async { Ok(None) })
    }
}

/// The authenticator a production service builds (`ironmesh_runtime::auth::credentials`: access
/// tokens verified locally, API keys looked up), over `jwk` instead of auth's JWKS over gRPC.
pub(super) fn authenticator(settings: &TokenConfig, jwk: PublicJwk) -> Arc<dyn Authenticator> {
    ironmesh_runtime::auth::credentials(settings, StaticJwks(vec![jwk]), NoApiKeys)
}

/// Mean time of one `authenticate(token)` over `calls` calls, on this thread (after a warm-up
/// that also loads the JWKS). Every call must accept the token.
pub(super) fn time_verification(
    runtime: &tokio::runtime::Runtime,
    authenticator: &dyn Authenticator,
    token: &str,
    calls: u32,
) -> Result<Duration, String> {
    runtime.block_on(async {
        for _ in 0..calls.div_ceil(10) {
            authenticator
                .authenticate(token)
                .await
                .map_err(|err| format!("the bench token was refused: {err}"))?;
        }
        let started = Instant::now();
        for _ in 0..calls {
            authenticator
                .authenticate(token)
                .await
                .map_err(|err| format!("the bench token was refused: {err}"))?;
        }
        Ok(started.elapsed() / calls.max(1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_is_accepted_and_a_forged_one_refused() {
        let settings = TokenConfig::default();
        let key = BenchKey::generate("bench-1").unwrap();
        let jwk = parse_jwk(&key.jwk_arg()).unwrap();
        let verifier = authenticator(&settings, jwk);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let token = key.mint(&settings).unwrap();
        let principal = runtime.block_on(verifier.authenticate(&token)).unwrap();
        assert_eq!(&*principal.subject, "bench-user");
        assert!(principal.has_role("customer"));

        let forged = BenchKey::generate("bench-1")
            .unwrap()
            .mint(&settings)
            .unwrap();
        assert!(runtime.block_on(verifier.authenticate(&forged)).is_err());
        assert!(time_verification(&runtime, &*verifier, &token, 10).is_ok());
    }

    #[test]
    fn jwk_arguments() {
        assert_eq!(
            parse_jwk("k1:abc"),
            Some(PublicJwk {
                kid: "k1".to_owned(),
                x: "abc".to_owned()
            })
        );
        assert_eq!(parse_jwk("k1"), None);
        assert_eq!(parse_jwk(":abc"), None);
    }
}
