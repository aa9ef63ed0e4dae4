//! Audit's Ed25519 signing key: made on first use, stored only sealed by the shared
//! `ironmesh-sealing` keyring (AES-256-GCM envelope naming the master key), opened into memory
//! once per process, never logged. The public halves are published (ListPublicKeys) so anyone
//! can verify checkpoints and retention anchors.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ironmesh_runtime::Config;
use ironmesh_sealing::Keyring;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use tokio::sync::OnceCell;

use crate::domain::{ALGORITHM, Checkpoint, TrustedKeys, key_id};
use crate::store::{Store, StoreError, StoredKey};

/// Why there is no key to sign with.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sealing the signing key")]
    Sealing(#[from] ironmesh_sealing::Error),
    #[error("generating or loading an Ed25519 key failed")]
    Key,
}

/// The key pair that signs, with its id. Its `Debug` shows the id only.
struct Signer {
    key_id: String,
    pair: Ed25519KeyPair,
}

/// One published public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// Makes, opens and uses audit's signing key.
#[derive(Clone)]
pub struct SigningKeys {
    store: Store,
    sealing: Keyring,
    signer: Arc<OnceCell<Signer>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("key_id", &self.signer.get().map(|s| s.key_id.as_str()))
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    pub fn new(store: Store, sealing: Keyring) -> Self {
        Self {
            store,
            sealing,
            signer: Arc::new(OnceCell::new()),
        }
    }

    /// The key that signs: the newest stored one, made now if there is none. Two replicas
    /// making the first key at once both insert generation 1; one insert wins and both use it.
    async fn signer(&self) -> Result<&Signer, KeyError> {
        self.signer
            .get_or_try_init(|| async {
                let stored = match self.store.newest_signing_key().await? {
                    Some(stored) => stored,
                    None => {
                        let made = self.generate()?;
                        if self.store.insert_signing_key(&made).await? {
                            tracing::info!(key_id = %made.key_id, "audit signing key created");
                        }
                        self.store
                            .newest_signing_key()
                            .await?
                            .ok_or(KeyError::Key)?
                    }
                };
                let pkcs8 = self.sealing.open(&stored.sealed_private_key)?;
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::Key)?;
                if pair.public_key().as_ref() != stored.public_key.as_slice() {
                    return Err(KeyError::Key);
                }
                Ok(Signer {
                    key_id: stored.key_id,
                    pair,
                })
            })
            .await
    }

    /// A new first-generation key, its private half sealed.
    fn generate(&self) -> Result<StoredKey, KeyError> {
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Key)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Key)?;
        let public_key = pair.public_key().as_ref().to_vec();
        Ok(StoredKey {
            generation: 1,
            key_id: key_id(&public_key),
            sealed_private_key: self.sealing.seal(pkcs8.as_ref())?,
            public_key,
            created_at: Utc::now(),
        })
    }

    /// Signs (`sequence`, `hash`) now: a head checkpoint, or a retention anchor.
    pub async fn sign(
        &self,
        sequence: i64,
        hash: Vec<u8>,
        retention_anchor: bool,
    ) -> Result<Checkpoint, KeyError> {
        let signer = self.signer().await?;
        let mut checkpoint = Checkpoint {
            sequence,
            hash,
            // Whole microseconds: what every store and JSON encoder keeps exactly.
            signed_at: crate::domain::from_nanos(
                Utc::now().timestamp_micros().saturating_mul(1000),
            ),
            key_id: signer.key_id.clone(),
            algorithm: ALGORITHM.to_owned(),
            signature: Vec::new(),
            retention_anchor,
        };
        checkpoint.signature = signer
            .pair
            .sign(&checkpoint.signing_input())
            .as_ref()
            .to_vec();
        Ok(checkpoint)
    }

    /// Every public key, oldest first (making the first key if there is none, so it can be
    /// handed to verifiers before anything was signed).
    pub async fn public_keys(&self) -> Result<Vec<PublicKey>, KeyError> {
        self.signer().await?;
        Ok(self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .map(|k| PublicKey {
                key_id: k.key_id,
                public_key: k.public_key,
                created_at: k.created_at,
            })
            .collect())
    }

    /// The stored public keys as a verifier's trusted set (for the server's own checks).
    pub async fn trusted(&self) -> Result<TrustedKeys, KeyError> {
        let keys = self.store.signing_keys().await?;
        Ok(TrustedKeys::with_ids(
            keys.into_iter().map(|k| (k.key_id, k.public_key)),
        ))
    }
}

/// The sealing keyring from `config` (the shared loader: the same key auth finds).
pub fn sealing(config: &Config) -> Result<Keyring, ironmesh_sealing::KeyringError> {
    ironmesh_sealing::configured_keyring(config, crate::KIND)
}

impl From<KeyError> for crate::domain::AuditError {
    fn from(err: KeyError) -> Self {
        Self::Internal(Box::new(err))
    }
}
