//! Envelope encryption with data keys, for customer material (provisioning's credentials): a
//! fresh 256-bit data key per value seals the value (AES-256-GCM); the data key is wrapped by
//! the keyring's current key, the key-encryption key, whose id the wrapped key names. Both are
//! bound to the caller's `context` (associated data naming the row, e.g. request and kind), so
//! a value copied onto another row fails to open. Rotation re-wraps only the data keys
//! ([`Keyring::rewrap`]); the values' ciphertexts stay as they are.

use ring::rand::{SecureRandom, SystemRandom};

use crate::envelope::{NONCE_LEN, TAG_LEN};
use crate::{Error, Key, Keyring};

/// A value sealed with its own data key. `Debug` shows only the key id.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKeySealed {
    /// The key-encryption key's id (also inside `wrapped_key`, authenticated there).
    pub key_id: String,
    /// The data key, sealed by the key-encryption key, bound to the context.
    pub wrapped_key: Vec<u8>,
    /// nonce (12) | the value sealed by the data key | tag (16), bound to the context.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for DataKeySealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeySealed")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Randomness)?;
    Ok(bytes)
}

fn data_key(bytes: &[u8]) -> Result<Key, Error> {
    let bytes: &[u8; 32] = bytes.try_into().map_err(|_| Error::Tampered)?;
    Key::new("data-key", bytes).map_err(|_| Error::Encrypt)
}

impl Keyring {
    /// Seals `plaintext` with a fresh data key, wrapped by the current key; both bound to
    /// `context`.
    pub fn seal_with_data_key(
        &self,
        plaintext: &[u8],
        context: &[u8],
    ) -> Result<DataKeySealed, Error> {
        let mut raw = random::<32>()?;
        let nonce = random::<NONCE_LEN>()?;
        let sealed = data_key(&raw)?.encrypt(&nonce, context, plaintext);
        let wrapped = self.seal_bound(&raw, context);
        raw.fill(0);
        let mut ciphertext = nonce.to_vec();
        ciphertext.extend_from_slice(&sealed?);
        Ok(DataKeySealed {
            key_id: self.current_id().to_owned(),
            wrapped_key: wrapped?,
            ciphertext,
        })
    }

    /// Opens what [`Self::seal_with_data_key`] sealed with `context`; `Tampered` if any byte of
    /// it, or the context, changed.
    pub fn open_with_data_key(
        &self,
        sealed: &DataKeySealed,
        context: &[u8],
    ) -> Result<Vec<u8>, Error> {
        if Self::key_id_of(&sealed.wrapped_key) != Some(sealed.key_id.as_str()) {
            return Err(Error::Tampered);
        }
        let mut raw = self.open_bound(&sealed.wrapped_key, context)?;
        let key = data_key(&raw);
        raw.fill(0);
        if sealed.ciphertext.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::Malformed);
        }
        let (nonce, ciphertext) = sealed.ciphertext.split_at(NONCE_LEN);
        key?.decrypt(nonce, context, ciphertext)
    }

    /// The same value with its data key wrapped by the current key instead (after a rotation);
    /// the ciphertext is unchanged.
    pub fn rewrap(&self, sealed: &DataKeySealed, context: &[u8]) -> Result<DataKeySealed, Error> {
        let mut raw = self.open_bound(&sealed.wrapped_key, context)?;
        let wrapped = self.seal_bound(&raw, context);
        raw.fill(0);
        Ok(DataKeySealed {
            key_id: self.current_id().to_owned(),
            wrapped_key: wrapped?,
            ciphertext: sealed.ciphertext.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> Key {
        Key::new(id, &[byte; 32]).unwrap()
    }

    const SECRET: &[u8] = b"AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG";
    const HERE: &[u8] = b"request-1|aws_access_key";

    #[test]
    fn the_same_material_twice_seals_differently_and_opens_only_in_its_context() {
        let ring = Keyring::new(key("kek-1", 1));
        let a = ring.seal_with_data_key(SECRET, HERE).unwrap();
        let b = ring.seal_with_data_key(SECRET, HERE).unwrap();
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_ne!(a.wrapped_key, b.wrapped_key);
        assert_eq!(a.key_id, "kek-1");
        assert_eq!(ring.open_with_data_key(&a, HERE).unwrap(), SECRET);
        // A row moved onto another request (or kind) does not open.
        assert!(matches!(
            ring.open_with_data_key(&a, b"request-2|aws_access_key"),
            Err(Error::Tampered)
        ));
        // Nothing of the material shows in what is stored, nor in Debug.
        for bytes in [&a.ciphertext, &a.wrapped_key] {
            assert!(!bytes.windows(8).any(|w| SECRET.windows(8).any(|s| s == w)));
        }
        assert!(!format!("{a:?}").contains("AKIA"));
    }

    #[test]
    fn a_flipped_bit_anywhere_fails_to_open() {
        let ring = Keyring::new(key("kek-1", 1));
        let sealed = ring.seal_with_data_key(SECRET, HERE).unwrap();
        let n = sealed.ciphertext.len();
        // The nonce, the ciphertext, the tag.
        for at in [0, NONCE_LEN + 1, n - 1] {
            let mut bad = sealed.clone();
            bad.ciphertext[at] ^= 1;
            assert!(
                ring.open_with_data_key(&bad, HERE).is_err(),
                "ciphertext byte {at}"
            );
        }
        // Every byte of the wrapped key: header, key id, nonce, wrapped data key, tag.
        for at in 0..sealed.wrapped_key.len() {
            let mut bad = sealed.clone();
            bad.wrapped_key[at] ^= 0x10;
            assert!(
                ring.open_with_data_key(&bad, HERE).is_err(),
                "wrapped key byte {at}"
            );
        }
        let mut renamed = sealed.clone();
        renamed.key_id = "kek-2".into();
        assert!(ring.open_with_data_key(&renamed, HERE).is_err());
    }

    #[test]
    fn after_rotation_a_rewrap_leaves_nothing_on_the_old_key() {
        let old = Keyring::new(key("kek-1", 1));
        let sealed = old.seal_with_data_key(SECRET, HERE).unwrap();
        let rotated = old.clone().rotate(key("kek-2", 2));
        assert_eq!(rotated.open_with_data_key(&sealed, HERE).unwrap(), SECRET);
        let rewrapped = rotated.rewrap(&sealed, HERE).unwrap();
        assert_eq!(rewrapped.key_id, "kek-2");
        assert_eq!(
            rewrapped.ciphertext, sealed.ciphertext,
            "only the data key is re-wrapped"
        );
        // Opens without the old key at all.
        let only_new = Keyring::new(key("kek-2", 2));
        assert_eq!(
            only_new.open_with_data_key(&rewrapped, HERE).unwrap(),
            SECRET
        );
        assert!(matches!(
            only_new.open_with_data_key(&sealed, HERE),
            Err(Error::UnknownKey(id)) if id == "kek-1"
        ));
    }

    #[test]
    fn bound_and_unbound_seals_agree_when_the_context_is_empty() {
        let ring = Keyring::new(key("k", 3));
        let plain = ring.seal(b"x").unwrap();
        assert_eq!(ring.open_bound(&plain, &[]).unwrap(), b"x");
        let bound = ring.seal_bound(b"x", b"ctx").unwrap();
        assert!(
            ring.open(&bound).is_err(),
            "a bound value needs its context"
        );
        assert_eq!(ring.open_bound(&bound, b"ctx").unwrap(), b"x");
    }
}
