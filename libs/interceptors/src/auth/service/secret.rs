//! The deployment-wide service secret: configured (base64), or generated once into a file with
//! mode 0600 (see the module docs of [`super`]). Its `Debug` is redacted and its errors name
//! files, never contents.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// The deployment-wide service credential secret. `Debug` never shows it.
#[derive(Clone)]
pub struct ServiceSecret(pub(super) Arc<[u8; 32]>);

impl std::fmt::Debug for ServiceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceSecret(<redacted>)")
    }
}

/// Why there is no service secret.
#[derive(Debug, thiserror::Error)]
pub enum ServiceSecretError {
    #[error("the configured service identity secret is not 32 bytes of base64")]
    Invalid,
    #[error(
        "a service identity secret (service_identity.secret) is required here: every replica must share it"
    )]
    Required,
    #[error("{} does not hold a valid service identity secret", .0.display())]
    BadFile(PathBuf),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no randomness for the service identity secret")]
    Randomness,
}

impl ServiceSecret {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Arc::new(bytes))
    }

    /// A fresh random secret.
    pub fn generate() -> Result<Self, ServiceSecretError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| ServiceSecretError::Randomness)?;
        Ok(Self::from_bytes(bytes))
    }

    /// Standard base64 of exactly 32 bytes (surrounding whitespace ignored).
    pub fn decode_base64(text: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        Some(Self::from_bytes(bytes.try_into().ok()?))
    }

    /// The secret `configured` (base64) if given, else the one in `file`, generated there once
    /// (mode 0600) when the file does not exist — the master key's pattern; with neither,
    /// [`ServiceSecretError::Required`]. The file is written
    /// under a temporary name and linked into place, so processes starting at once agree on one
    /// secret and none reads a half-written file.
    pub fn load(configured: Option<&str>, file: Option<&Path>) -> Result<Self, ServiceSecretError> {
        if let Some(text) = configured {
            return Self::decode_base64(text).ok_or(ServiceSecretError::Invalid);
        }
        let file = file.ok_or(ServiceSecretError::Required)?;
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| ServiceSecretError::Io {
                action,
                path,
                source,
            }
        };
        match std::fs::read_to_string(file) {
            Ok(text) => {
                return Self::decode_base64(&text)
                    .ok_or_else(|| ServiceSecretError::BadFile(file.into()));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io("read", file)(err)),
        }
        let secret = Self::generate()?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(io("create the directory of", file))?;
        }
        let temp = file.with_extension(format!("tmp-{}", uuid_like()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = write_then_link(&options, &temp, file, &secret);
        let _ = std::fs::remove_file(&temp);
        match written {
            Ok(()) => {
                tracing::info!(path = %file.display(), "generated the service identity secret");
                Ok(secret)
            }
            // Another process won the race: use its secret.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load(None, Some(file))
            }
            Err(err) => Err(io("write", file)(err)),
        }
    }
}

/// Writes `secret` to `temp` and links it in as `file` (failing with `AlreadyExists` when another
/// process got there first).
fn write_then_link(
    options: &std::fs::OpenOptions,
    temp: &Path,
    file: &Path,
    secret: &ServiceSecret,
) -> std::io::Result<()> {
    let mut out = options.open(temp)?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(*secret.0);
    out.write_all(encoded.as_bytes())?;
    out.sync_all()?;
    std::fs::hard_link(temp, file)
}

/// A name for a temporary file no other process picks.
fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The secret is never printed, and a generated file is 0600 and read back.
    #[test]
    fn secret_is_redacted_and_generated_once() {
        let text = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let configured = ServiceSecret::load(Some(&text), None).unwrap();
        let shown = format!("{configured:?}");
        assert!(
            !shown.contains(&text) && shown.contains("redacted"),
            "{shown}"
        );
        assert!(matches!(
            ServiceSecret::load(Some("short"), None),
            Err(ServiceSecretError::Invalid)
        ));
        assert!(matches!(
            ServiceSecret::load(None, None),
            Err(ServiceSecretError::Required)
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/service.key");
        let first = ServiceSecret::load(None, Some(&path)).unwrap();
        let again = ServiceSecret::load(None, Some(&path)).unwrap();
        assert_eq!(first.0, again.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        let err = ServiceSecret::load(None, Some(&path)).unwrap_err();
        assert!(matches!(err, ServiceSecretError::BadFile(_)));
    }
}
