//! The `secrets` configuration section, owned here because every service that seals reads it:
//! the master key (base64 of 32 bytes) and, during a rotation, the master keys before it.
//!
//! Rotating: put the new key in `master_key` and the old one first in `previous_master_keys`;
//! everything sealed under the old key still opens, everything new is sealed under the new one.
//! Drop an old key once nothing sealed under it is left.

use ironmesh_runtime::config::{ConfigError, Section};
use serde::{Deserialize, Serialize};

use crate::{Key, Keyring};

/// `secrets.*`. Its `Debug` never shows a key.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The key everything new is sealed under. Unset with SQLite: generated once into
    /// `data_dir/master.key` (0600); required with PostgreSQL (replicas must share it).
    pub master_key: Option<String>,
    /// Earlier master keys, newest first: they still open what they sealed.
    pub previous_master_keys: Vec<String>,
}

impl std::fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsConfig")
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("previous_master_keys", &self.previous_master_keys.len())
            .finish()
    }
}

impl Section for SecretsConfig {
    const KEY: &'static str = "secrets";

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str| ConfigError::new(key, "must be 32 bytes, base64-encoded");
        if let Some(key) = &self.master_key
            && Key::decode_base64(key).is_none()
        {
            return Err(invalid("secrets.master_key"));
        }
        if self
            .previous_master_keys
            .iter()
            .any(|key| Key::decode_base64(key).is_none())
        {
            return Err(invalid("secrets.previous_master_keys"));
        }
        Ok(())
    }
}

impl SecretsConfig {
    /// The keyring of `master` (the current key's bytes, configured or from the key file) with
    /// every previous key still opening. Validated keys only: call after [`Section::validate`].
    pub fn keyring(&self, master: &[u8; 32]) -> Keyring {
        self.previous_master_keys
            .iter()
            .filter_map(|text| Key::decode_base64(text))
            .fold(Keyring::new(Key::derived(master)), |ring, old| {
                ring.with_previous(Key::derived(&old))
            })
    }
}

/// Why [`configured_keyring`] has no keyring.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    MasterKey(#[from] crate::MasterKeyError),
}

/// The keyring service `kind` seals with: the `secrets` section's master key (and previous
/// ones), or — when its store is SQLite, one process — the key file `data_dir/master.key`,
/// generated once (0600). PostgreSQL means replicas, and a key generated into one replica's data
/// dir would not be the others', so there it must be configured. The one loader every service
/// uses, so they all find the same key.
pub fn configured_keyring(
    config: &ironmesh_runtime::Config,
    kind: ironmesh_runtime::ServiceKind,
) -> Result<Keyring, KeyringError> {
    let file = config
        .database_url(kind)
        .starts_with("sqlite:")
        .then(|| config.data_dir.join("master.key"));
    let secrets = config.section::<SecretsConfig>()?;
    let key = crate::load_master_key(secrets.master_key.as_deref(), file.as_deref())?;
    Ok(secrets.keyring(&key))
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn b64(bytes: [u8; 32]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn bad_keys_name_their_key() {
        let bad = SecretsConfig {
            master_key: Some("short".to_owned()),
            ..SecretsConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "secrets.master_key");
        let bad = SecretsConfig {
            master_key: Some(b64([1; 32])),
            previous_master_keys: vec![b64([2; 32]), "nope".to_owned()],
        };
        assert_eq!(
            bad.validate().unwrap_err().key,
            "secrets.previous_master_keys"
        );
    }

    /// After a rotation, values sealed under the old master key still open; new ones are sealed
    /// under the new key.
    #[test]
    fn previous_master_keys_still_open() {
        let old = SecretsConfig {
            master_key: Some(b64([1; 32])),
            ..SecretsConfig::default()
        };
        let sealed = old.keyring(&[1; 32]).seal(b"secret").unwrap();
        let rotated = SecretsConfig {
            master_key: Some(b64([2; 32])),
            previous_master_keys: vec![b64([1; 32])],
        };
        rotated.validate().unwrap();
        let ring = rotated.keyring(&[2; 32]);
        assert_eq!(ring.open(&sealed).unwrap(), b"secret");
        assert!(!ring.is_current(&sealed));
        assert!(ring.is_current(&ring.seal(b"new").unwrap()));
        assert!(
            SecretsConfig::default()
                .keyring(&[2; 32])
                .open(&sealed)
                .is_err()
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let config = SecretsConfig {
            master_key: Some(b64([9; 32])),
            previous_master_keys: vec![b64([8; 32])],
        };
        let debug = format!("{config:?}");
        assert!(
            !debug.contains(&b64([9; 32])) && !debug.contains(&b64([8; 32])),
            "{debug}"
        );
    }
}
