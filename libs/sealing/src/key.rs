//! One sealing key and its id.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::envelope::NONCE_LEN;

/// Longest key id an envelope can carry (its length is one byte; ids stay short anyway).
pub const MAX_KEY_ID_LEN: usize = 64;

/// A 256-bit AES-GCM key with the id written into everything it seals.
///
/// `Debug` shows the id only: the key bytes live inside the cipher and are never formatted.
#[derive(Clone)]
pub struct Key {
    id: String,
    cipher: Aes256Gcm,
}

/// A key id that cannot go into an envelope.
#[derive(Debug, thiserror::Error)]
#[error("a key id is 1 to {MAX_KEY_ID_LEN} printable ASCII characters")]
pub struct KeyIdError;

impl Key {
    /// A key with an explicit id (1–64 printable ASCII characters).
    pub fn new(id: impl Into<String>, bytes: &[u8; 32]) -> Result<Self, KeyIdError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_KEY_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyIdError);
        }
        Ok(Self {
            id,
            cipher: Aes256Gcm::new(bytes.into()),
        })
    }

    /// A key whose id is derived from the key itself: `k` and 16 hex digits of a domain-separated
    /// SHA-256. A deployment configured with one base64 key needs no separate id setting, and
    /// every replica derives the same one. 64 bits of a hash say nothing useful about 256 bits
    /// of key.
    pub fn derived(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"ironmesh-sealing key id v1\0")
            .chain_update(bytes)
            .finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self::new(format!("k{hex}"), bytes).expect("a derived id is valid")
    }

    /// The 32 key bytes from their base64 form (standard alphabet, surrounding whitespace
    /// ignored), as `secrets.master_key` and the master key file hold them.
    pub fn decode_base64(text: &str) -> Option<[u8; 32]> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        bytes.try_into().ok()
    }

    /// The id written into every value this key seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn encrypt(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.cipher
            .encrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::Encrypt)
    }

    pub(crate) fn decrypt(
        &self,
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| Error::Tampered)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_differ_per_key() {
        let a = Key::derived(&[1; 32]);
        assert_eq!(a.id(), Key::derived(&[1; 32]).id());
        assert_ne!(a.id(), Key::derived(&[2; 32]).id());
        assert_eq!(a.id().len(), 17);
    }

    #[test]
    fn ids_must_fit_an_envelope() {
        assert!(Key::new("", &[0; 32]).is_err());
        assert!(Key::new("a b", &[0; 32]).is_err());
        assert!(Key::new("x".repeat(65), &[0; 32]).is_err());
        assert!(Key::new("2026-12", &[0; 32]).is_ok());
    }

    #[test]
    fn debug_shows_the_id_not_the_key() {
        let key = Key::new("visible", &[0xAB; 32]).unwrap();
        let text = format!("{key:?}");
        assert!(text.contains("visible"), "{text}");
        assert!(!text.contains("171"), "no key bytes (0xAB = 171): {text}");
    }

    #[test]
    fn base64_keys_decode_only_at_32_bytes() {
        let text = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(Key::decode_base64(&format!(" {text}\n")), Some([7; 32]));
        assert_eq!(Key::decode_base64("c2hvcnQ="), None);
        assert_eq!(Key::decode_base64("not base64!"), None);
    }
}
