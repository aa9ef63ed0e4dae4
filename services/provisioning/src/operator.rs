//! What an operator does to provisioning outside the RPCs: `ironmesh admin
//! rotate-credential-key` (a new key-encryption key wraps new credentials' data keys; each
//! replica's rewrap task moves the older rows) and `ironmesh admin credential-keys` (how many
//! rows each key still wraps). Operators read these errors in their terminal, so they carry
//! the whole cause — never key bytes or material.

use ironmesh_outbox::Events;
use ironmesh_runtime::{Config, Database, RunError};
use ironmesh_sealing::{Keyring, KeyringError};

use crate::credentials::{CredentialError, CredentialKeys};
use crate::store::{KeyUse, Store};
use crate::{KIND, MIGRATIONS};

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no master key to seal credential keys: {0}")]
    MasterKey(#[from] KeyringError),
    #[error(transparent)]
    Config(#[from] ironmesh_runtime::config::ConfigError),
    #[error(transparent)]
    Storage(#[from] ironmesh_runtime::storage::StorageError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

/// The master keyring that seals the credential keys (the `secrets` section, or with SQLite
/// the data dir's key file — the one loader every service uses).
pub fn master_keyring(config: &Config) -> Result<Keyring, RunError> {
    ironmesh_sealing::configured_keyring(config, KIND).map_err(|err| match err {
        KeyringError::Config(err) => RunError::Config(err),
        KeyringError::MasterKey(err) => RunError::Setup(format!(
            "provisioning: no master key to seal credential keys: {err}"
        )),
    })
}

/// Makes a new credential key current: its id, and the report after it.
pub async fn rotate_credential_key(
    config: &Config,
) -> Result<(String, Vec<KeyUse>), OperatorError> {
    with_keys(config, |keys| async move {
        let id = keys.rotate().await?;
        Ok((id, keys.report().await?))
    })
    .await
}

/// Every credential key, oldest first, with how many rows it still wraps.
pub async fn credential_key_report(config: &Config) -> Result<Vec<KeyUse>, OperatorError> {
    with_keys(config, |keys| async move { Ok(keys.report().await?) }).await
}

async fn with_keys<T, F, Fut>(config: &Config, f: F) -> Result<T, OperatorError>
where
    F: FnOnce(CredentialKeys) -> Fut,
    Fut: Future<Output = Result<T, OperatorError>>,
{
    let master = ironmesh_sealing::configured_keyring(config, KIND)?;
    let db = Database::connect(&config.database_url(KIND), KIND.name()).await?;
    db.migrate(KIND.name(), &MIGRATIONS).await?;
    let store = Store::new(db.clone(), Events::writer(config, KIND)?);
    let result = f(CredentialKeys::new(store, master)).await;
    db.close().await;
    result
}
