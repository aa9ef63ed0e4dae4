//! One current key that seals, older keys that still open.
//!
//! Rotation is: make a new key current ([`Keyring::rotate`]) and keep the previous ones in the
//! ring until everything they sealed has been re-sealed or has expired; a value names its key,
//! so opening never guesses (except for legacy values, which name none).

use std::collections::HashMap;
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};

use crate::envelope::{self, NONCE_LEN};
use crate::{Error, Key};

/// Keys by id; cheap to clone (shared).
#[derive(Clone)]
pub struct Keyring {
    current: Arc<Key>,
    keys: Arc<HashMap<String, Arc<Key>>>,
    legacy: bool,
}

impl Keyring {
    /// A ring whose only key is `current`.
    pub fn new(current: Key) -> Self {
        let current = Arc::new(current);
        let keys = HashMap::from([(current.id().to_owned(), current.clone())]);
        Self {
            current,
            keys: Arc::new(keys),
            legacy: false,
        }
    }

    /// Adds a key that opens what it sealed earlier but seals nothing new. A key with the
    /// current key's id does not replace the current key.
    #[must_use]
    pub fn with_previous(mut self, key: Key) -> Self {
        let keys = Arc::make_mut(&mut self.keys);
        keys.entry(key.id().to_owned())
            .or_insert_with(|| Arc::new(key));
        self
    }

    /// Makes `key` the one that seals; the former current key stays for opening.
    #[must_use]
    pub fn rotate(mut self, key: Key) -> Self {
        let key = Arc::new(key);
        Arc::make_mut(&mut self.keys).insert(key.id().to_owned(), key.clone());
        self.current = key;
        self
    }

    /// Also opens values in the legacy format (no header, see [`envelope`]), trying each key of
    /// the ring. Only for stores that hold such values (auth's); a new service never needs it.
    #[must_use]
    pub fn accept_legacy(mut self) -> Self {
        self.legacy = true;
        self
    }

    /// The id new values are sealed under.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Whether `sealed` is an envelope under the current key. False for legacy values and for
    /// values under older keys: re-seal those (open, seal, store) when convenient, so that older
    /// keys can eventually leave the ring.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        envelope::parse(sealed).is_some_and(|e| e.key_id == self.current.id())
    }

    /// Seals `plaintext` under the current key with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.seal_bound(plaintext, &[])
    }

    /// [`Self::seal`], bound to `context` as well: the value opens only with the same context
    /// ([`Self::open_bound`]), so a sealed value copied to another row (another context) fails.
    /// The associated data is the header followed by `context`; with an empty context this is
    /// exactly [`Self::seal`].
    pub fn seal_bound(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::Randomness)?;
        let mut out = envelope::header(self.current.id());
        let aad = [out.as_slice(), context].concat();
        let ciphertext = self.current.encrypt(&nonce, &aad, plaintext)?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a value [`Self::seal_bound`] sealed with `context`, under any key of the ring.
    pub fn open_bound(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, Error> {
        let envelope = envelope::parse(sealed).ok_or(Error::Malformed)?;
        let key = self
            .keys
            .get(envelope.key_id)
            .ok_or_else(|| Error::UnknownKey(envelope.key_id.to_owned()))?;
        let aad = [envelope.header, context].concat();
        key.decrypt(envelope.nonce, &aad, envelope.ciphertext)
    }

    /// The key id a sealed value names, if it is an envelope.
    pub fn key_id_of(sealed: &[u8]) -> Option<&str> {
        envelope::parse(sealed).map(|e| e.key_id)
    }

    /// Opens a value sealed under any key of the ring.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let result = self.open_bound(sealed, &[]);
        match result {
            // A legacy value starts with a random nonce, which may (once in 2^32) look like an
            // envelope header; so any failure falls back to the legacy reading when accepted.
            // GCM authentication decides, so a wrong reading can only fail, never mis-open.
            Err(err) if self.legacy => self.open_legacy(sealed).ok_or(err),
            other => other,
        }
    }

    fn open_legacy(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = envelope::parse_legacy(sealed)?;
        // The current key first: before rotation it is the only one.
        std::iter::once(&self.current)
            .chain(self.keys.values())
            .find_map(|key| key.decrypt(nonce, &[], ciphertext).ok())
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("Keyring")
            .field("current", &self.current.id())
            .field("keys", &ids)
            .field("legacy", &self.legacy)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::{Aead, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};

    use super::*;

    fn key(id: &str, byte: u8) -> Key {
        Key::new(id, &[byte; 32]).unwrap()
    }

    #[test]
    fn round_trip_names_the_key() {
        let ring = Keyring::new(key("k1", 1));
        let sealed = ring.seal(b"secret bytes").unwrap();
        assert_eq!(envelope::parse(&sealed).unwrap().key_id, "k1");
        assert!(
            !sealed.windows(12).any(|w| w == b"secret bytes"),
            "the plaintext is not in the sealed value"
        );
        assert_eq!(ring.open(&sealed).unwrap(), b"secret bytes");
        assert_ne!(
            ring.seal(b"secret bytes").unwrap(),
            sealed,
            "fresh nonce per seal"
        );
    }

    /// Flipping any single bit — header, nonce, ciphertext or tag — makes the value fail to open.
    #[test]
    fn tampering_anywhere_is_detected() {
        let ring = Keyring::new(key("k1", 1));
        let sealed = ring.seal(b"secret").unwrap();
        for i in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[i] ^= 0x01;
            assert!(ring.open(&changed).is_err(), "bit flip at byte {i} opened");
        }
        assert!(matches!(
            ring.open(&sealed[..sealed.len() - 1]),
            Err(Error::Tampered)
        ));
    }

    #[test]
    fn unknown_and_wrong_keys_do_not_open() {
        let sealed = Keyring::new(key("k1", 1)).seal(b"secret").unwrap();
        let other = Keyring::new(key("k2", 1));
        assert!(
            matches!(other.open(&sealed), Err(Error::UnknownKey(id)) if id == "k1"),
            "same bytes under another id: the id names the key"
        );
        let impostor = Keyring::new(key("k1", 2));
        assert!(
            matches!(impostor.open(&sealed), Err(Error::Tampered)),
            "same id, wrong key"
        );
        assert!(matches!(impostor.open(b"garbage"), Err(Error::Malformed)));
    }

    /// After rotation the old key still opens what it sealed; new values name the new key; a
    /// ring that dropped the old key cannot open them.
    #[test]
    fn rotation_keeps_old_values_open() {
        let before = Keyring::new(key("k1", 1));
        let old = before.seal(b"old").unwrap();
        let after = before.clone().rotate(key("k2", 2));
        assert_eq!(after.current_id(), "k2");
        assert_eq!(after.open(&old).unwrap(), b"old");
        let new = after.seal(b"new").unwrap();
        assert_eq!(envelope::parse(&new).unwrap().key_id, "k2");
        assert!(
            !after.is_current(&old) && after.is_current(&new),
            "old values want re-sealing"
        );
        assert!(before.open(&new).is_err(), "the old ring does not know k2");
        let restarted = Keyring::new(key("k2", 2)).with_previous(key("k1", 1));
        assert_eq!(restarted.open(&old).unwrap(), b"old");
        assert_eq!(restarted.open(&new).unwrap(), b"new");
    }

    /// What auth stored before envelopes (`nonce || ciphertext`, no associated data) opens with
    /// `accept_legacy`, and only then.
    #[test]
    fn legacy_values_open_only_when_accepted() {
        let bytes = [9u8; 32];
        let nonce = [3u8; 12];
        let mut legacy = nonce.to_vec();
        legacy.extend(
            Aes256Gcm::new(&bytes.into())
                .encrypt(Nonce::from_slice(&nonce), b"pkcs8".as_slice())
                .unwrap(),
        );
        let strict = Keyring::new(Key::derived(&bytes));
        assert!(matches!(strict.open(&legacy), Err(Error::Malformed)));
        let compatible = strict.clone().accept_legacy();
        assert_eq!(compatible.open(&legacy).unwrap(), b"pkcs8");
        assert!(
            !compatible.is_current(&legacy),
            "legacy values want re-sealing"
        );
        let rotated = compatible.rotate(key("k2", 2));
        assert_eq!(
            rotated.open(&legacy).unwrap(),
            b"pkcs8",
            "after rotation too"
        );
        let mut tampered = legacy.clone();
        tampered[20] ^= 1;
        assert!(rotated.open(&tampered).is_err());
    }

    #[test]
    fn debug_lists_ids_only() {
        let ring = Keyring::new(key("k1", 0xEE)).with_previous(key("k0", 0xEE));
        let text = format!("{ring:?}");
        assert!(text.contains("k0") && text.contains("k1"), "{text}");
        assert!(!text.contains("238"), "{text}");
    }
}
