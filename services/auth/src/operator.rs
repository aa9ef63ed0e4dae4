//! What an operator does to auth outside the RPCs — `ironmesh admin create-user`,
//! `ironmesh admin rotate-signing-key` — and the master key both those commands and [`crate::run`]
//! need. Operators read these errors in their terminal, so unlike RPC errors they carry the
//! whole cause.

use ironmesh_outbox::Events;
use ironmesh_runtime::config::ConfigError;
use ironmesh_runtime::storage::StorageError;
use ironmesh_runtime::{Config, Database};
use ironmesh_sealing::{Keyring, MasterKeyError};

use crate::domain::{self, AuthError, Role, Violation};
use crate::keys::ScheduledKey;
use crate::password::{HashError, Hasher};
use crate::store::{Store, StoreError};
use crate::{KIND, MIGRATIONS, error_chain, keys};

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The input breaks the same rules the RPCs apply, every violation listed.
    #[error("{}", violations(.0))]
    Invalid(Vec<Violation>),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(
        "secrets.master_key (IRONMESH_SECRETS__MASTER_KEY) is required with PostgreSQL: every replica must share it"
    )]
    MasterKeyRequired,
    #[error("secrets.master_key is invalid")]
    MasterKeyInvalid,
    #[error("master key: {0}")]
    MasterKey(MasterKeyError),
    /// A configuration section auth reads is invalid (the error names the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{}", error_chain(.0))]
    Store(#[from] StoreError),
    #[error("{}", error_chain(.0))]
    Hashing(#[from] HashError),
    #[error("{}", error_chain(.0))]
    Auth(#[from] AuthError),
}

fn violations(list: &[Violation]) -> String {
    let text: Vec<String> = list
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    text.join("; ")
}

impl From<MasterKeyError> for OperatorError {
    fn from(err: MasterKeyError) -> Self {
        match err {
            MasterKeyError::Required => OperatorError::MasterKeyRequired,
            MasterKeyError::Invalid => OperatorError::MasterKeyInvalid,
            other => OperatorError::MasterKey(other),
        }
    }
}

/// Makes a new signing key now and retires the current ones (they stay published until their
/// tokens expire) — `ironmesh admin rotate-signing-key`. The new key is published at once and
/// signs from `tokens.key_publish_secs` later (see `keys`); returned with that time.
pub async fn rotate_signing_key(config: &Config) -> Result<ScheduledKey, OperatorError> {
    let sealing = sealing(config)?;
    let db = open(config).await?;
    let store = Store::new(db.clone(), Events::writer(config, KIND)?);
    let keys = keys::SigningKeys::configured(&config.tokens, store, sealing);
    let key = keys.rotate(chrono::Utc::now()).await;
    db.close().await;
    Ok(key?)
}

/// An account [`create_user`] made.
#[derive(Clone, Debug)]
pub struct CreatedUser {
    pub id: String,
    /// The email as stored (normalised by the domain's rule), to show the operator.
    pub email: String,
}

/// Creates an account with `roles` directly in the store — how the first administrator comes to
/// exist (`ironmesh admin create-user`). The RPCs' rules apply (the domain's email parsing and
/// password policy).
pub async fn create_user(
    config: &Config,
    email: &str,
    password: &str,
    display_name: &str,
    roles: &[Role],
) -> Result<CreatedUser, OperatorError> {
    let mut problems = Vec::new();
    let email = domain::Email::parse(email)
        .map_err(|v| problems.push(v))
        .ok();
    let name = domain::check_display_name(display_name)
        .map_err(|v| problems.push(v))
        .ok();
    if let Err(v) = domain::check_new_password("password", password) {
        problems.push(v);
    }
    if roles.is_empty() {
        problems.push(Violation::new("roles", "at least one role is required"));
    }
    let (Some(email), Some(name), true) = (email, name, problems.is_empty()) else {
        return Err(OperatorError::Invalid(problems));
    };
    let outbox = Events::writer(config, KIND)?;
    let db = open(config).await?;
    let result = async {
        let hash = Hasher::default().hash(password).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let event = crate::events::registered(crate::events::OPERATOR, &id, roles);
        let inserted = Store::new(db.clone(), outbox)
            .insert_user(
                &id,
                email.as_str(),
                &hash,
                &name,
                roles,
                chrono::Utc::now(),
                event,
            )
            .await?;
        if inserted {
            Ok(CreatedUser {
                id,
                email: email.as_str().to_owned(),
            })
        } else {
            Err(OperatorError::EmailTaken)
        }
    }
    .await;
    db.close().await;
    result
}

/// The keyring sealing secrets at rest, holding the master key: configured, or — for a SQLite
/// (single-node) setup — generated once into `data_dir/master.key` with owner-only permissions.
/// It also opens what auth sealed before sealed values named their key (the legacy format of
/// `ironmesh_sealing::envelope`); new values are always envelopes.
pub(crate) fn sealing(config: &Config) -> Result<Keyring, OperatorError> {
    match ironmesh_sealing::configured_keyring(config, KIND) {
        Ok(keyring) => Ok(keyring.accept_legacy()),
        Err(ironmesh_sealing::KeyringError::Config(err)) => Err(OperatorError::Config(err)),
        Err(ironmesh_sealing::KeyringError::MasterKey(err)) => Err(err.into()),
    }
}

/// Opens and migrates auth's store for an operator command.
async fn open(config: &Config) -> Result<Database, StorageError> {
    let db = Database::connect(&config.database_url(KIND), KIND.name()).await?;
    db.migrate(KIND.name(), &MIGRATIONS).await?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::{Aead, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    use base64::Engine;
    use ironmesh_sealing::Key;

    use ironmesh_sealing::SecretsConfig;

    use super::*;

    fn config(master_key: [u8; 32], data_dir: &std::path::Path) -> Config {
        let mut config = Config {
            data_dir: data_dir.to_owned(),
            ..Config::default()
        };
        config.set_section(&SecretsConfig {
            master_key: Some(base64::engine::general_purpose::STANDARD.encode(master_key)),
            ..SecretsConfig::default()
        });
        config
    }

    /// Signing keys and TOTP secrets stored before envelopes existed are `nonce || ciphertext`
    /// under the master key with no associated data (the old `keys::Sealer`); auth's keyring
    /// still opens them, and seals anything new as an envelope naming the master key's id.
    #[test]
    fn values_sealed_before_envelopes_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let master = [0x5A; 32];
        let nonce = [7u8; 12];
        let mut legacy = nonce.to_vec();
        legacy.extend(
            Aes256Gcm::new(&master.into())
                .encrypt(Nonce::from_slice(&nonce), b"pkcs8 bytes".as_slice())
                .unwrap(),
        );
        let keyring = sealing(&config(master, dir.path())).unwrap();
        assert_eq!(keyring.open(&legacy).unwrap(), b"pkcs8 bytes");

        let sealed = keyring.seal(b"new").unwrap();
        let envelope = ironmesh_sealing::envelope::parse(&sealed).expect("an envelope");
        assert_eq!(envelope.key_id, Key::derived(&master).id());

        let other = sealing(&config([0x11; 32], dir.path())).unwrap();
        assert!(
            other.open(&legacy).is_err(),
            "another master key opens nothing"
        );
    }

    #[test]
    fn postgres_needs_a_configured_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config([0; 32], dir.path());
        config.set_section(&SecretsConfig::default());
        config.database_url = Some("postgres://db.invalid/ironmesh".to_owned());
        let err = sealing(&config).unwrap_err();
        assert!(matches!(err, OperatorError::MasterKeyRequired), "{err}");
        assert!(err.to_string().contains("IRONMESH_SECRETS__MASTER_KEY"));
        assert!(
            !dir.path().join("master.key").exists(),
            "no key file for PostgreSQL"
        );
    }
}
