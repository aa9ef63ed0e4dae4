//! API keys (`imk_<prefix>_<secret>`, for machines). Unlike access tokens they cannot be checked
//! locally — only auth knows which keys exist and which are revoked — so every service asks auth
//! (`AuthenticateApiKey`) and caches the answer, positive or negative, for a short TTL: a revoked
//! key stops working within that TTL, and a flood of calls with one key costs one lookup.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::{AuthFailure, Authenticator, Principal, fingerprint};

/// The prefix every API key starts with.
pub const API_KEY_PREFIX: &str = "imk_";

/// Cached answers above this many are dropped wholesale (bounded memory under a key flood).
const CACHE_LIMIT: usize = 10_000;

/// Asks auth about a key: `Ok(None)` means "no such valid key".
pub trait ApiKeyLookup: Send + Sync + 'static {
    fn lookup<'a>(
        &'a self,
        key: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<Principal>, AuthFailure>> + Send + 'a>>;
}

/// Verifies API keys through a lookup, with a TTL cache keyed by the key's SHA-256.
pub struct ApiKeyAuthenticator {
    lookup: Box<dyn ApiKeyLookup>,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], Answer>>,
}

/// What auth said about a key (`None`: not valid), and when.
type Answer = (Option<Principal>, Instant);

impl ApiKeyAuthenticator {
    pub fn new(lookup: impl ApiKeyLookup, ttl: Duration) -> Self {
        Self {
            lookup: Box::new(lookup),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// auth's answer for the key with fingerprint `id`, if it was asked within the TTL.
    fn remembered(&self, id: &[u8; 32]) -> Option<Result<Principal, AuthFailure>> {
        let cache = self.cache.lock();
        let (answer, at) = cache.get(id)?;
        (at.elapsed() < self.ttl).then(|| {
            answer
                .clone()
                .ok_or(AuthFailure::Rejected("unknown API key"))
        })
    }

    async fn verify(&self, key: &str) -> Result<Principal, AuthFailure> {
        let id = fingerprint(key);
        if let Some(answer) = self.remembered(&id) {
            return answer;
        }
        let now = Instant::now();
        let answer = self.lookup.lookup(key).await?;
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(id, (answer.clone(), now));
        answer.ok_or(AuthFailure::Rejected("unknown API key"))
    }
}

impl Authenticator for ApiKeyAuthenticator {
    fn verify_now(&self, credential: &str) -> Option<Result<Principal, AuthFailure>> {
        self.remembered(&fingerprint(credential))
    }

    fn authenticate<'a>(
        &'a self,
        credential: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>> {
        Box::pin(self.verify(credential))
    }
}

/// Routes a credential to the API-key authenticator when it looks like one, to the token
/// verifier otherwise.
pub struct Credentials {
    pub tokens: Arc<dyn Authenticator>,
    pub api_keys: Arc<dyn Authenticator>,
}

impl Authenticator for Credentials {
    fn verify_now(&self, credential: &str) -> Option<Result<Principal, AuthFailure>> {
        if credential.starts_with(API_KEY_PREFIX) {
            self.api_keys.verify_now(credential)
        } else {
            self.tokens.verify_now(credential)
        }
    }

    fn authenticate<'a>(
        &'a self,
        credential: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>> {
        if credential.starts_with(API_KEY_PREFIX) {
            self.api_keys.authenticate(credential)
        } else {
            self.tokens.authenticate(credential)
        }
    }
}
