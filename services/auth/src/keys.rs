//! Signing keys and the JWKS, answered from memory.
//!
//! Access tokens are signed with Ed25519. Private keys are stored sealed by the shared
//! `ironmesh-sealing` keyring (AES-256-GCM envelopes naming the master key's id).
//!
//! A key signs for the rotation period. Its successor is made `key_publish_secs` earlier and is
//! published from then on, but signs only from its `signs_from` time; the key it replaces stays
//! published until every token it signed has expired (its last signing moment + access-token
//! lifetime + leeway), so rotation never invalidates a live token.
//!
//! Each replica keeps the key set in memory and reads it again when it is older than
//! `jwks_cache_ms` — `GetJwks` and picking the signing key cost no database read in between.
//! That is safe across replicas (and against `ironmesh admin rotate-signing-key` run elsewhere)
//! because publication leads signing by more than the cache's age: by the time any replica
//! signs with a new key, every replica's set lists it, so a verifier that meets the new `kid`
//! and refetches (once, rate-limited) finds it wherever its fetch lands.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ironmesh_runtime::config::TokenConfig;
use ironmesh_sealing::Keyring;
use jsonwebtoken::EncodingKey;
use parking_lot::RwLock;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::domain::{AuthError, Fault, Sealed, SigningKey};
use crate::store::Store;

/// One public key of the JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// base64url of the 32-byte Ed25519 public key.
    pub x: String,
}

/// The key that signs new tokens.
#[derive(Clone)]
pub struct ActiveKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

/// A key made by [`SigningKeys::rotate`]: its id and when it starts signing.
#[derive(Clone, Debug)]
pub struct ScheduledKey {
    pub kid: String,
    pub signs_from: DateTime<Utc>,
}

/// The key set as read from the store at `read_at`, with the signing keys opened on first use.
struct KeySet {
    read_at: Instant,
    /// Every key not yet expired, by `signs_from`, oldest first.
    keys: Vec<SigningKey>,
    /// The opened private keys, by position in `keys` (opened once, when first chosen to sign).
    opened: RwLock<Vec<Option<ActiveKey>>>,
}

impl KeySet {
    fn new(keys: Vec<SigningKey>) -> Self {
        let opened = RwLock::new(vec![None; keys.len()]);
        Self {
            read_at: Instant::now(),
            keys,
            opened,
        }
    }

    /// The position of the key that signs at `now`: the latest whose `signs_from` has come.
    fn signer(&self, now: DateTime<Utc>) -> Option<usize> {
        self.keys.iter().rposition(|key| key.signs_from <= now)
    }

    /// The key made last (the one a rotation replaces).
    fn newest(&self) -> Option<&SigningKey> {
        self.keys.iter().max_by_key(|key| key.created_at)
    }
}

/// Keeps the signing keys: creates, rotates, retires, publishes.
pub struct SigningKeys {
    store: Store,
    sealing: Keyring,
    rotation: Duration,
    /// How long a new key is published before it signs.
    publish: Duration,
    /// How long a retired key stays published after it last signed: the access-token lifetime
    /// plus leeway.
    overlap: Duration,
    /// How long `set` is used before the store is read again.
    cache: Duration,
    set: RwLock<Option<Arc<KeySet>>>,
    /// One reload at a time; the others wait for its answer.
    reload: tokio::sync::Mutex<()>,
}

impl SigningKeys {
    pub fn new(
        store: Store,
        sealing: Keyring,
        rotation: Duration,
        publish: Duration,
        overlap: Duration,
        cache: Duration,
    ) -> Self {
        Self {
            store,
            sealing,
            rotation,
            publish,
            overlap,
            cache,
            set: RwLock::new(None),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// The signing keys for `tokens`' rotation, publication and cache periods; a retired key
    /// stays published for one access-token lifetime plus the verifiers' leeway.
    pub fn configured(tokens: &TokenConfig, store: Store, sealing: Keyring) -> Self {
        Self::new(
            store,
            sealing,
            Duration::from_secs(tokens.key_rotation_secs),
            Duration::from_secs(tokens.key_publish_secs),
            Duration::from_secs(tokens.access_ttl_secs)
                + Duration::from_secs(ironmesh_interceptors::auth::jwt::LEEWAY_SECS),
            Duration::from_millis(tokens.jwks_cache_ms),
        )
    }

    /// The key to sign with now. Schedules the next key when the newest one is due for
    /// rotation within the publication period (another replica may have done so first: the
    /// store keeps that to one new key).
    pub async fn active(&self) -> Result<ActiveKey, AuthError> {
        self.active_at(Utc::now()).await
    }

    /// [`Self::active`] as of `now`, which may be a moment before the set was read (the call
    /// read the clock, then waited for another call's reload).
    async fn active_at(&self, now: DateTime<Utc>) -> Result<ActiveKey, AuthError> {
        let mut set = self.current(now).await?;
        let due = set.newest().is_some_and(|newest| {
            newest.signs_from + chrono_duration(self.rotation.saturating_sub(self.publish)) <= now
        });
        if due {
            let expected = set.newest().map(|key| key.kid.clone());
            self.rotate_from(
                expected.as_deref(),
                now,
                now + chrono_duration(self.publish),
            )
            .await?;
            set = self.reread(now).await?;
        }
        // None only for a first key made an instant after `now` (a concurrent first call made
        // it while this one waited for the set): it signs, as nothing could have signed before.
        let at = set
            .signer(now)
            .or((!set.keys.is_empty()).then_some(0))
            .ok_or(AuthError::Internal(Fault::KeyGeneration))?;
        if let Some(key) = set.opened.read()[at].clone() {
            return Ok(key);
        }
        let key = self.open(&set.keys[at])?;
        set.opened.write()[at] = Some(key.clone());
        Ok(key)
    }

    /// Makes a new signing key that signs from `key_publish_secs` after `now` (at once when
    /// there is no key yet), and retires the current one from then
    /// (`ironmesh admin rotate-signing-key`).
    pub async fn rotate(&self, now: DateTime<Utc>) -> Result<ScheduledKey, AuthError> {
        loop {
            let newest = self.store.newest_signing_key().await?;
            let signs_from = match newest {
                Some(_) => now + chrono_duration(self.publish),
                None => now,
            };
            let expected = newest.as_ref().map(|row| row.kid.as_str());
            if let Some(kid) = self.rotate_from(expected, now, signs_from).await? {
                self.reread(now).await?;
                return Ok(ScheduledKey { kid, signs_from });
            }
        }
    }

    /// Every key whose tokens may be live or that is about to sign.
    pub async fn jwks(&self) -> Result<Vec<PublicKey>, AuthError> {
        let now = Utc::now();
        let set = self.current(now).await?;
        Ok(set
            .keys
            .iter()
            .filter(|key| key.expires_at.is_none_or(|at| at > now))
            .map(|key| PublicKey {
                kid: key.kid.clone(),
                x: URL_SAFE_NO_PAD.encode(&key.public_key),
            })
            .collect())
    }

    /// The key set from memory while it is younger than the cache period; else read again.
    /// With no key at all, the first one is made (signing at once).
    async fn current(&self, now: DateTime<Utc>) -> Result<Arc<KeySet>, AuthError> {
        if let Some(set) = self.fresh() {
            return Ok(set);
        }
        let _one = self.reload.lock().await;
        // Another call may have read it while this one waited.
        if let Some(set) = self.fresh() {
            return Ok(set);
        }
        let set = self.read(now).await?;
        if !set.keys.is_empty() {
            return Ok(set);
        }
        // A concurrent first key from another replica just means this one reads theirs.
        self.rotate_from(None, now, now).await?;
        self.read(now).await
    }

    fn fresh(&self) -> Option<Arc<KeySet>> {
        self.set
            .read()
            .as_ref()
            .filter(|set| set.read_at.elapsed() < self.cache)
            .cloned()
    }

    /// Reads the set now, whatever the cache holds (after this replica changed it).
    async fn reread(&self, now: DateTime<Utc>) -> Result<Arc<KeySet>, AuthError> {
        let _one = self.reload.lock().await;
        self.read(now).await
    }

    async fn read(&self, now: DateTime<Utc>) -> Result<Arc<KeySet>, AuthError> {
        let set = Arc::new(KeySet::new(self.store.signing_keys(now).await?));
        *self.set.write() = Some(set.clone());
        Ok(set)
    }

    /// Stores a new signing key signing from `signs_from`, retiring the newest one then, if
    /// that is still `expected`; `None` when another task or replica rotated first (see
    /// `Store::rotate_signing_keys`).
    async fn rotate_from(
        &self,
        expected: Option<&str>,
        now: DateTime<Utc>,
        signs_from: DateTime<Utc>,
    ) -> Result<Option<String>, AuthError> {
        let random = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random).map_err(|_| Fault::KeyGeneration)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| Fault::KeyGeneration)?;
        let kid = format!("k{}", uuid::Uuid::now_v7().simple());
        let row = SigningKey {
            kid: kid.clone(),
            public_key: pair.public_key().as_ref().to_vec(),
            sealed_private_key: Sealed::new(self.sealing.seal(pkcs8.as_ref())?),
            created_at: now,
            signs_from,
            expires_at: None,
        };
        let rotated = self
            .store
            .rotate_signing_keys(&row, expected, signs_from + chrono_duration(self.overlap))
            .await?;
        if !rotated {
            return Ok(None);
        }
        tracing::info!(kid = %kid, signs_from = %signs_from, "signing key rotated");
        Ok(Some(kid))
    }

    fn open(&self, row: &SigningKey) -> Result<ActiveKey, AuthError> {
        let pkcs8 = self.sealing.open(row.sealed_private_key.expose())?;
        Ok(ActiveKey {
            kid: row.kid.clone(),
            encoding: EncodingKey::from_ed_der(&pkcs8),
        })
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use ironmesh_sealing::Key;

    use super::*;

    /// The first calls on a store with no key, all at once (a mesh just started under load):
    /// one makes the key, every one signs with it — including a call that read the clock just
    /// before the key was made and then waited for the set (as under a multi-threaded runtime).
    #[tokio::test]
    async fn concurrent_first_calls_all_sign_with_the_one_first_key() {
        let (_dir, store) = Store::for_test().await;
        let keys = SigningKeys::new(
            store,
            Keyring::new(Key::derived(&[7; 32])),
            Duration::from_secs(3600),
            Duration::from_secs(30),
            Duration::from_secs(60),
            Duration::from_secs(5),
        );
        let before = Utc::now() - chrono::Duration::milliseconds(1);
        let calls = (0..16).map(|_| keys.active());
        let signed = futures_util::future::join_all(calls).await;
        let kids: Vec<String> = signed
            .into_iter()
            .map(|key| key.map(|key| key.kid).unwrap_or_else(|e| panic!("{e:?}")))
            .collect();
        assert!(kids.iter().all(|kid| *kid == kids[0]), "{kids:?}");
        let early = keys.active_at(before).await.unwrap();
        assert_eq!(
            early.kid, kids[0],
            "a clock read before the first key still signs with it"
        );
        assert_eq!(keys.jwks().await.unwrap().len(), 1);
    }
}
