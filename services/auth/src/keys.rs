//! Signing keys and the JWKS.
//!
//! Access tokens are signed with Ed25519. Private keys are stored sealed by the shared
//! `ironmesh-sealing` keyring (AES-256-GCM envelopes naming the master key's id). The newest key signs; when it is older than the
//! rotation period a new one is made and the old one is retired — it stays in the JWKS until
//! every token it signed has expired (retirement + access-token lifetime + leeway), so rotation
//! never invalidates a live token.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ironmesh_runtime::config::TokenConfig;
use ironmesh_sealing::Keyring;
use jsonwebtoken::EncodingKey;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use tokio::sync::Mutex;

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

/// Keeps the signing keys: creates, rotates, retires, publishes.
pub struct SigningKeys {
    store: Store,
    sealing: Keyring,
    rotation: Duration,
    /// How long a retired key stays published: the access-token lifetime plus leeway.
    overlap: Duration,
    active: Mutex<Option<ActiveKey>>,
}

impl SigningKeys {
    pub fn new(store: Store, sealing: Keyring, rotation: Duration, overlap: Duration) -> Self {
        Self {
            store,
            sealing,
            rotation,
            overlap,
            active: Mutex::new(None),
        }
    }

    /// The signing keys for `tokens`' rotation period; a retired key stays published for one
    /// access-token lifetime plus the verifiers' leeway.
    pub fn configured(tokens: &TokenConfig, store: Store, sealing: Keyring) -> Self {
        Self::new(
            store,
            sealing,
            Duration::from_secs(tokens.key_rotation_secs),
            Duration::from_secs(tokens.access_ttl_secs)
                + Duration::from_secs(ironmesh_interceptors::auth::jwt::LEEWAY_SECS),
        )
    }

    /// The key to sign with now: the newest stored key (another replica or `ironmesh admin
    /// rotate-signing-key` may have rotated), after rotating if it is due. Decrypted keys are
    /// cached by kid; the store is asked every time, which costs one indexed read per token.
    pub async fn active(&self) -> Result<ActiveKey, AuthError> {
        let now = Utc::now();
        let newest = self.store.newest_signing_key().await?;
        let row = match newest {
            Some(row) if now - row.created_at < chrono_duration(self.rotation) => row,
            other => {
                let expected = other.as_ref().map(|row| row.kid.as_str());
                if let Some(key) = self.rotate_from(expected, now).await? {
                    return Ok(key);
                }
                // Someone rotated first: sign with theirs.
                self.store
                    .newest_signing_key()
                    .await?
                    .ok_or(AuthError::Internal(Fault::KeyGeneration))?
            }
        };
        let mut cached = self.active.lock().await;
        if let Some(key) = cached.as_ref().filter(|k| k.kid == row.kid) {
            return Ok(key.clone());
        }
        let key = self.load(&row)?;
        *cached = Some(key.clone());
        Ok(key)
    }

    /// Makes a new signing key and retires the others (`ironmesh admin rotate-signing-key`).
    pub async fn rotate(&self, now: DateTime<Utc>) -> Result<ActiveKey, AuthError> {
        loop {
            let newest = self.store.newest_signing_key().await?;
            if let Some(key) = self
                .rotate_from(newest.as_ref().map(|row| row.kid.as_str()), now)
                .await?
            {
                return Ok(key);
            }
        }
    }

    /// Makes a new signing key if the newest active one is still `expected`; `None` when another
    /// task or replica rotated first (see `Store::rotate_signing_keys`).
    async fn rotate_from(
        &self,
        expected: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<ActiveKey>, AuthError> {
        let random = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random).map_err(|_| Fault::KeyGeneration)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| Fault::KeyGeneration)?;
        let kid = format!("k{}", uuid::Uuid::now_v7().simple());
        let row = SigningKey {
            kid: kid.clone(),
            public_key: pair.public_key().as_ref().to_vec(),
            sealed_private_key: Sealed::new(self.sealing.seal(pkcs8.as_ref())?),
            created_at: now,
        };
        let rotated = self
            .store
            .rotate_signing_keys(&row, expected, now, now + chrono_duration(self.overlap))
            .await?;
        if !rotated {
            return Ok(None);
        }
        tracing::info!(kid = %kid, "signing key rotated");
        self.load(&row).map(Some)
    }

    fn load(&self, row: &SigningKey) -> Result<ActiveKey, AuthError> {
        let pkcs8 = self.sealing.open(row.sealed_private_key.expose())?;
        Ok(ActiveKey {
            kid: row.kid.clone(),
            encoding: EncodingKey::from_ed_der(&pkcs8),
        })
    }

    /// Every key whose tokens may still be live.
    pub async fn jwks(&self) -> Result<Vec<PublicKey>, AuthError> {
        // Make sure there is at least one key to publish.
        self.active().await?;
        Ok(self
            .store
            .published_keys(Utc::now())
            .await?
            .into_iter()
            .map(|(kid, public)| PublicKey {
                kid,
                x: URL_SAFE_NO_PAD.encode(public),
            })
            .collect())
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
