//! The master key every process of a deployment seals with.
//!
//! Configured (base64 of 32 bytes, `secrets.master_key`), or — for a single-node setup whose data
//! sits on local disk — generated once into a file with owner-only permissions. Replicas sharing
//! one database must share the key, so without a file to fall back on it is required.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use crate::Key;

/// Why there is no master key.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the configured master key is not 32 bytes of base64")]
    Invalid,
    #[error("a master key is required here: every replica must share it")]
    Required,
    #[error("{} does not hold a valid master key", .0.display())]
    BadFile(PathBuf),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no randomness for the master key")]
    Randomness,
}

/// The master key bytes: `configured` if given; else the key in `file` (created with a new
/// random key, mode 0600, if it does not exist); with neither, [`MasterKeyError::Required`].
pub fn load_master_key(
    configured: Option<&str>,
    file: Option<&Path>,
) -> Result<[u8; 32], MasterKeyError> {
    if let Some(text) = configured {
        return Key::decode_base64(text).ok_or(MasterKeyError::Invalid);
    }
    let path = file.ok_or(MasterKeyError::Required)?;
    match std::fs::read_to_string(path) {
        Ok(text) => return Key::decode_base64(&text).ok_or(MasterKeyError::BadFile(path.into())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(MasterKeyError::Io {
                action: "read",
                path: path.into(),
                source,
            });
        }
    }
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| MasterKeyError::Randomness)?;
    let io = |action| {
        move |source| MasterKeyError::Io {
            action,
            path: path.into(),
            source,
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
    }
    // Written under a temporary name and linked into place, so services starting at once (all
    // of `ironmesh up`) agree on one key and none reads a half-written file (a bare create_new
    // let the loser read the winner's file before it was written).
    let mut suffix = [0u8; 8];
    SystemRandom::new()
        .fill(&mut suffix)
        .map_err(|_| MasterKeyError::Randomness)?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let temp = path.with_extension(format!("tmp-{suffix}"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let encoded = base64::engine::general_purpose::STANDARD.encode(key);
    let written = options.open(&temp).and_then(|mut out| {
        out.write_all(encoded.as_bytes())?;
        out.sync_all()?;
        std::fs::hard_link(&temp, path)
    });
    let _ = std::fs::remove_file(&temp);
    match written {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a master key for secrets at rest");
            Ok(key)
        }
        // Another process won the race: use its key.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            load_master_key(None, Some(path))
        }
        Err(err) => Err(io("write")(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_key_wins_and_must_be_valid() {
        let text = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
        assert_eq!(load_master_key(Some(&text), None).unwrap(), [5; 32]);
        assert!(matches!(
            load_master_key(Some("short"), None),
            Err(MasterKeyError::Invalid)
        ));
        assert!(matches!(
            load_master_key(None, None),
            Err(MasterKeyError::Required)
        ));
    }

    #[test]
    fn the_file_is_generated_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/master.key");
        let first = load_master_key(None, Some(&path)).unwrap();
        assert_eq!(load_master_key(None, Some(&path)).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            load_master_key(None, Some(&path)),
            Err(MasterKeyError::BadFile(_))
        ));
    }

    /// Sixteen threads generating the key in one fresh directory at once all get the same key
    /// (none reads a half-written file), as the services of `ironmesh up` do at first start.
    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("master.key");
            let keys: Vec<_> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..16)
                    .map(|_| scope.spawn(|| load_master_key(None, Some(&path))))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap().unwrap())
                    .collect()
            });
            assert!(
                keys.iter().all(|k| *k == keys[0]),
                "one key for every thread"
            );
            let files = std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(files, 1, "no temporary file is left behind");
        }
    }
}
