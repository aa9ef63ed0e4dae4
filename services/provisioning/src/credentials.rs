//! Customer credentials, encrypted at rest with AES-256-GCM envelope encryption on the shared
//! sealing library ([`ironmesh_sealing::Keyring::seal_with_data_key`]): every credential set
//! gets a fresh data key that seals its material; the data key is wrapped by the current
//! key-encryption key (KEK), whose id the row names; both ciphertexts are bound to
//! `"{request_id}|{kind}"`, so a row copied onto another request or kind fails to open.
//!
//! The KEKs are random 256-bit keys kept in the database, each sealed by the master keyring
//! (`secrets.master_key`, or the data dir's key file) bound to its own id — so every replica
//! sees the same KEKs and a rotation done by `ironmesh admin rotate-credential-key` in another
//! process takes effect at the next write. The newest KEK (`kek-<n>`, highest n) wraps new
//! data keys; the older ones still unwrap until [`CredentialKeys::rewrap_all`] (run by each
//! replica in the background) has moved every row to the newest.
//!
//! The material is only ever plaintext in memory: between the RPC and sealing, and between
//! opening and GetJobCredentials' answer. [`Material`]'s `Debug` shows entry names only.

use std::collections::{BTreeMap, HashMap};

use ironmesh_runtime::storage::{new_id, now};
use ironmesh_runtime::validation::{Violations, check_uuid};
use ironmesh_sealing::{DataKeySealed, Key, Keyring};
use ring::rand::{SecureRandom, SystemRandom};

use crate::store::{KeyUse, Store, StoreError, StoredCredential, StoredKey};

/// Most entries of one credential set.
pub const MAX_ENTRIES: usize = 16;
/// Most bytes of one set's names and values together.
pub const MAX_BYTES: usize = 16 * 1024;
/// Rows re-wrapped per query.
const REWRAP_BATCH: i64 = 100;

/// Why a credential operation failed; callers see an internal error (never the cause's bytes).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sealing: {0}")]
    Sealing(#[from] ironmesh_sealing::Error),
    #[error("the system random source failed")]
    Randomness,
    #[error("a stored credential does not hold a valid material map")]
    Corrupt,
}

/// A credential set's secret material, name → value. `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Material(pub BTreeMap<String, String>);

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A credential set as submitted, checked against the contract's rules.
#[derive(Clone, Debug)]
pub struct NewCredential {
    pub kind: String,
    pub material: Material,
}

impl NewCredential {
    /// `kind` (1–64 of `[a-z0-9_]`) and `material` (1–16 entries, names 1–64 characters
    /// without control characters, at most 16 KiB in all) for the request `request_id` (a
    /// UUID); every violation, by field.
    pub fn checked(
        request_id: &str,
        kind: String,
        material: HashMap<String, String>,
    ) -> Result<Self, Violations> {
        let mut v = Violations::default();
        check_uuid(&mut v, "request_id", request_id);
        if !is_kind(&kind) {
            v.add("kind", "1–64 characters of a-z, 0-9 and _");
        }
        if material.is_empty() || material.len() > MAX_ENTRIES {
            v.add("material", format!("1–{MAX_ENTRIES} entries"));
        }
        if material
            .keys()
            .any(|k| k.is_empty() || k.chars().count() > 64 || k.chars().any(char::is_control))
        {
            v.add(
                "material",
                "entry names are 1–64 characters without control characters",
            );
        }
        if material
            .iter()
            .map(|(k, x)| k.len() + x.len())
            .sum::<usize>()
            > MAX_BYTES
        {
            v.add("material", "at most 16 KiB in total");
        }
        v.into_result()?;
        Ok(Self {
            kind,
            material: Material(material.into_iter().collect()),
        })
    }
}

/// A credential kind: 1–64 characters of `[a-z0-9_]`.
pub fn is_kind(kind: &str) -> bool {
    (1..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What both ciphertexts of a row are bound to.
fn context(request_id: &str, kind: &str) -> Vec<u8> {
    format!("{request_id}|{kind}").into_bytes()
}

/// What a KEK's sealed bytes are bound to.
fn key_context(key_id: &str) -> Vec<u8> {
    format!("ironmesh provisioning credential key|{key_id}").into_bytes()
}

/// The KEKs (sealed by the master keyring) and sealing and opening with them.
#[derive(Clone)]
pub struct CredentialKeys {
    store: Store,
    master: Keyring,
}

impl CredentialKeys {
    pub fn new(store: Store, master: Keyring) -> Self {
        Self { store, master }
    }

    /// The KEKs as a keyring: the newest seals, every other opens. The first KEK is made
    /// here when there is none yet.
    pub async fn keyring(&self) -> Result<Keyring, CredentialError> {
        let mut stored = self.store.credential_keys().await?;
        if stored.is_empty() {
            self.add_key(1).await?;
            stored = self.store.credential_keys().await?;
        }
        let mut ring: Option<Keyring> = None;
        for row in &stored {
            let key = self.open_key(row)?;
            ring = Some(match ring {
                None => Keyring::new(key),
                Some(ring) => ring.with_previous(key),
            });
        }
        ring.ok_or(CredentialError::Corrupt)
    }

    fn open_key(&self, row: &StoredKey) -> Result<Key, CredentialError> {
        let mut bytes = self
            .master
            .open_bound(&row.sealed_key, &key_context(&row.key_id))?;
        let raw: Result<[u8; 32], _> = bytes.as_slice().try_into();
        bytes.fill(0);
        let mut raw = raw.map_err(|_| CredentialError::Corrupt)?;
        let key = Key::new(row.key_id.clone(), &raw).map_err(|_| CredentialError::Corrupt);
        raw.fill(0);
        key
    }

    /// Adds KEK number `seq` (unless another process just did): whether this call added it.
    async fn add_key(&self, seq: i64) -> Result<bool, CredentialError> {
        let mut raw = [0u8; 32];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| CredentialError::Randomness)?;
        let key_id = format!("kek-{seq}");
        let sealed = self.master.seal_bound(&raw, &key_context(&key_id));
        raw.fill(0);
        let row = StoredKey {
            seq,
            key_id,
            sealed_key: sealed?,
        };
        Ok(self.store.add_credential_key(&row).await?)
    }

    /// Makes a new KEK the one that wraps new data keys; its id. Rows under older KEKs are
    /// moved by [`Self::rewrap_all`].
    pub async fn rotate(&self) -> Result<String, CredentialError> {
        loop {
            let newest = self
                .store
                .credential_keys()
                .await?
                .first()
                .map_or(0, |k| k.seq);
            if self.add_key(newest + 1).await? {
                return Ok(format!("kek-{}", newest + 1));
            }
            // Another process added that number first: rotate past it.
        }
    }

    /// Seals `new` for request `request_id` under the current KEK.
    pub fn seal(
        &self,
        ring: &Keyring,
        request_id: &str,
        new: &NewCredential,
    ) -> Result<StoredCredential, CredentialError> {
        let mut plain =
            serde_json::to_vec(&new.material.0).map_err(|_| CredentialError::Corrupt)?;
        let sealed = ring.seal_with_data_key(&plain, &context(request_id, &new.kind));
        plain.fill(0);
        let sealed = sealed?;
        Ok(StoredCredential {
            id: new_id(),
            request_id: request_id.to_owned(),
            kind: new.kind.clone(),
            field_names: new.material.0.keys().cloned().collect(),
            key_id: sealed.key_id,
            wrapped_key: sealed.wrapped_key,
            ciphertext: sealed.ciphertext,
            created_at: now(),
        })
    }

    /// Opens `row`'s material: fails if any stored byte changed or the row is not where it
    /// was sealed (another request or kind).
    pub fn open(
        &self,
        ring: &Keyring,
        row: &StoredCredential,
    ) -> Result<Material, CredentialError> {
        let mut plain =
            ring.open_with_data_key(&sealed_of(row), &context(&row.request_id, &row.kind))?;
        let material = serde_json::from_slice(&plain).map_err(|_| CredentialError::Corrupt);
        plain.fill(0);
        Ok(Material(material?))
    }

    /// Re-wraps every row's data key still wrapped by an older KEK with the newest; how many.
    /// A row that fails to unwrap (tampered) is left as it is and logged by id.
    pub async fn rewrap_all(&self) -> Result<u64, CredentialError> {
        let ring = self.keyring().await?;
        let mut after = String::new();
        let mut moved = 0;
        loop {
            let rows = self
                .store
                .credentials_to_rewrap(ring.current_id(), &after, REWRAP_BATCH)
                .await?;
            for row in &rows {
                match ring.rewrap(&sealed_of(row), &context(&row.request_id, &row.kind)) {
                    Ok(new) => {
                        if self
                            .store
                            .rewrap_credential(row, &new.key_id, &new.wrapped_key)
                            .await?
                        {
                            moved += 1;
                        }
                    }
                    Err(err) => tracing::error!(
                        credential_id = %row.id,
                        error = %err,
                        "a credential's data key cannot be re-wrapped"
                    ),
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == REWRAP_BATCH => after.clone_from(&last.id),
                _ => return Ok(moved),
            }
        }
    }

    /// Every KEK, oldest first, with how many rows it wraps.
    pub async fn report(&self) -> Result<Vec<KeyUse>, CredentialError> {
        self.keyring().await?;
        Ok(self.store.key_report().await?)
    }
}

fn sealed_of(row: &StoredCredential) -> DataKeySealed {
    DataKeySealed {
        key_id: row.key_id.clone(),
        wrapped_key: row.wrapped_key.clone(),
        ciphertext: row.ciphertext.clone(),
    }
}
