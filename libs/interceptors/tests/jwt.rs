//! Local JWT verification against the attack set: every token a hostile caller can craft is
//! refused; only a well-formed, EdDSA-signed, in-date access token for our issuer and audience
//! is accepted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ironmesh_interceptors::BoxError;
use ironmesh_interceptors::auth::jwt::{JwtAuthenticator, KeySource, PublicJwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

const ISSUER: &str = "ironmesh";
const AUDIENCE: &str = "ironmesh";

struct Key {
    kid: String,
    pkcs8: Vec<u8>,
    x: String,
}

fn key(kid: &str) -> Key {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    Key {
        kid: kid.to_owned(),
        x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        pkcs8: pkcs8.as_ref().to_vec(),
    }
}

/// A JWKS that counts how often it is fetched.
struct Jwks {
    keys: Vec<PublicJwk>,
    fetches: Arc<AtomicU32>,
}

impl KeySource for Jwks {
    fn fetch(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<PublicJwk>, BoxError>> + Send + '_>,
    > {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let keys = self.keys.clone();
        Box::pin(async move { Ok(keys) })
    }
}

fn verifier(published: &[&Key]) -> (JwtAuthenticator, Arc<AtomicU32>) {
    let fetches = Arc::new(AtomicU32::new(0));
    let jwks = Jwks {
        keys: published
            .iter()
            .map(|k| PublicJwk {
                kid: k.kid.clone(),
                x: k.x.clone(),
            })
            .collect(),
        fetches: fetches.clone(),
    };
    (
        JwtAuthenticator::new(jwks, ISSUER, AUDIENCE, Duration::from_secs(60)),
        fetches,
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> serde_json::Value {
    let now = now();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "sid": "session-1",
        "iat": now, "nbf": now, "exp": now + 900, "jti": "j1",
        "roles": ["customer"], "scope": ""
    })
}

fn sign(key: &Key, kid: &str, typ: &str, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&key.pkcs8)).unwrap()
}

fn with(mut claims: serde_json::Value, field: &str, value: serde_json::Value) -> serde_json::Value {
    claims[field] = value;
    claims
}

/// A genuine token is accepted and yields its subject, session and roles.
#[tokio::test]
async fn a_genuine_token_is_accepted() {
    let k1 = key("k1");
    let (verifier, _) = verifier(&[&k1]);
    let principal = verifier
        .verify(&sign(&k1, "k1", "at+jwt", &claims()))
        .await
        .expect("accepted");
    assert_eq!(&*principal.subject, "user-1");
    assert_eq!(principal.session.as_deref(), Some("session-1"));
    assert!(principal.has_role("customer"));
}

/// The attack set: each is refused.
#[tokio::test]
async fn the_attack_set_is_refused() {
    let k1 = key("k1");
    let other = key("k1");
    let (verifier, _) = verifier(&[&k1]);
    let now = now();
    let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());

    let alg_none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "at+jwt", "kid": "k1"})),
        b64(claims())
    );
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".to_owned());
        header.typ = Some("at+jwt".to_owned());
        jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(k1.x.as_bytes()),
        )
        .unwrap()
    };
    let cases: Vec<(&str, String)> = vec![
        ("alg none", alg_none),
        ("HS256 keyed with the public key", hs256_with_public_key),
        (
            "wrong audience",
            sign(&k1, "k1", "at+jwt", &with(claims(), "aud", json!("other"))),
        ),
        (
            "wrong issuer",
            sign(&k1, "k1", "at+jwt", &with(claims(), "iss", json!("evil"))),
        ),
        (
            "expired beyond leeway",
            sign(
                &k1,
                "k1",
                "at+jwt",
                &with(claims(), "exp", json!(now - 120)),
            ),
        ),
        (
            "not yet valid",
            sign(
                &k1,
                "k1",
                "at+jwt",
                &with(claims(), "nbf", json!(now + 600)),
            ),
        ),
        (
            "kid path traversal",
            sign(&k1, "../../x", "at+jwt", &claims()),
        ),
        (
            "10 kB kid",
            sign(&k1, &"k".repeat(10_000), "at+jwt", &claims()),
        ),
        (
            "not an access token (typ JWT)",
            sign(&k1, "k1", "JWT", &claims()),
        ),
        (
            "signed by another key with the same kid",
            sign(&other, "k1", "at+jwt", &claims()),
        ),
        ("no subject", {
            let mut c = claims();
            c.as_object_mut().unwrap().remove("sub");
            sign(&k1, "k1", "at+jwt", &c)
        }),
        ("garbage", "not.a.jwt".to_owned()),
        ("empty", String::new()),
    ];
    for (name, token) in cases {
        assert!(
            verifier.verify(&token).await.is_err(),
            "{name} must be refused"
        );
    }
}

/// An unknown kid triggers one JWKS refresh; further unknown kids within the refresh interval
/// do not (a flood of forged kids cannot become a flood of fetches). A key published later is
/// picked up by that one refresh.
#[tokio::test]
async fn unknown_kids_refresh_the_jwks_at_most_once_per_interval() {
    let k1 = key("k1");
    let k2 = key("k2");
    let (verifier, fetches) = verifier(&[&k1, &k2]);
    verifier
        .verify(&sign(&k1, "k1", "at+jwt", &claims()))
        .await
        .unwrap();
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "first use fetches the JWKS"
    );
    verifier
        .verify(&sign(&k2, "k2", "at+jwt", &claims()))
        .await
        .unwrap();
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "k2 came with the same fetch"
    );
    for i in 0..50 {
        let forged = key(&format!("forged{i}"));
        let token = sign(&forged, &forged.kid, "at+jwt", &claims());
        assert!(verifier.verify(&token).await.is_err());
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "no refetch inside the interval"
    );
}
