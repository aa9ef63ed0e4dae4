//! Access tokens (JWT, EdDSA, `typ` `at+jwt`, RFC 9068 claims) and refresh tokens (opaque
//! random strings, stored only as SHA-256 hashes).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use sha2::{Digest, Sha256};

use ironmesh_interceptors::auth::jwt::ACCESS_TOKEN_TYPE;

use crate::domain::{AuthError, Fault, Role, TokenHash};
use crate::keys::ActiveKey;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    sid: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    roles: Vec<&'static str>,
    scope: String,
}

/// Who a token is for.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub roles: &'a [Role],
}

/// Signs an access token valid from `now` for `ttl`.
pub fn access_token(
    key: &ActiveKey,
    issuer: &str,
    audience: &str,
    subject: &Subject<'_>,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> Result<(String, DateTime<Utc>), AuthError> {
    let expires = now + ttl;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
    let claims = Claims {
        iss: issuer,
        aud: audience,
        sub: subject.user_id,
        sid: subject.session_id,
        exp: expires.timestamp(),
        iat: now.timestamp(),
        nbf: now.timestamp(),
        jti: uuid::Uuid::now_v7().to_string(),
        roles: subject.roles.iter().map(|r| r.as_str()).collect(),
        scope: String::new(),
    };
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
        .map_err(|err| Fault::Signing(Box::new(err)))?;
    Ok((token, expires))
}

/// A new opaque refresh token (256 random bits) and the hash to store.
pub fn refresh_token() -> Result<(String, TokenHash), AuthError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Fault::Randomness)?;
    let token = format!("imr_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_secret(&token);
    Ok((token, hash))
}

/// The stored form of a refresh token, API-key secret or recovery code (hex SHA-256). Tokens and
/// keys are 256 random bits and recovery codes are single-use and rate-limited by the login
/// lockout, so a fast hash is enough — argon2 here would only slow every refresh.
pub fn hash_secret(secret: &str) -> TokenHash {
    let digest = Sha256::digest(secret.as_bytes());
    TokenHash::new(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    )
}

/// A new API key's public prefix (16 hex digits, unique, shown in listings) and its secret
/// (256 random bits, base64url); the full key is `imk_<prefix>_<secret>`.
pub fn api_key_secret() -> Result<(String, String), AuthError> {
    let random = SystemRandom::new();
    let mut prefix = [0u8; 8];
    let mut secret = [0u8; 32];
    random
        .fill(&mut prefix)
        .and_then(|()| random.fill(&mut secret))
        .map_err(|_| Fault::Randomness)?;
    let prefix = prefix.iter().map(|b| format!("{b:02x}")).collect();
    Ok((prefix, URL_SAFE_NO_PAD.encode(secret)))
}
