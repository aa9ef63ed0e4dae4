//! Secrets at rest — signing keys, TOTP secrets, webhook secrets, customer credentials — sealed
//! with AES-256-GCM under a key that the sealed value names, so keys can rotate (DESIGN.md §6:
//! one sealing library, never two implementations).
//!
//! # Layout
//! - [`Key`]: one 256-bit key and its id (explicit, or derived from the key so every replica
//!   configured with the same key agrees on it).
//! - [`envelope`]: the byte format of a sealed value (`IMS`, version, key id, nonce, ciphertext)
//!   and the pre-envelope format auth wrote before this crate existed.
//! - [`Keyring`]: one current key that seals and older keys that still open; rotation makes a
//!   new key current and keeps the old one for opening. Values may be bound to a context
//!   (`seal_bound`), so one copied to another row fails to open.
//! - [`data_key`]: envelope encryption with a fresh data key per value, wrapped by the ring's
//!   current key and re-wrapped on rotation ([`DataKeySealed`]) — for customer material.
//! - [`master_key`]: the process's master key — configured, or generated once into a file for a
//!   single-node (SQLite) setup.
//! - [`SecretsConfig`]: the `secrets` configuration section (master key, previous keys) and
//!   the keyring it makes.
//! - [`Error`]: why sealing or opening failed. Its text never contains key or plaintext bytes.
#![forbid(unsafe_code)]

mod config;
pub mod data_key;
pub mod envelope;
mod key;
mod keyring;
pub mod master_key;

pub use config::{KeyringError, SecretsConfig, configured_keyring};
pub use data_key::DataKeySealed;
pub use key::{Key, KeyIdError};
pub use keyring::Keyring;
pub use master_key::{MasterKeyError, load_master_key};

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The system random source failed (no nonce, so nothing is sealed).
    #[error("no randomness for a nonce")]
    Randomness,
    /// AES-GCM refused to encrypt (only for inputs beyond its length limit).
    #[error("encryption failed")]
    Encrypt,
    /// Neither the envelope format nor (where accepted) the legacy format.
    #[error("not a sealed value")]
    Malformed,
    /// Sealed under a key id this keyring does not hold (a key retired too early, or another
    /// deployment's data).
    #[error("sealed under key `{0}`, which this keyring does not hold")]
    UnknownKey(String),
    /// Authentication failed: the value or its header was changed, or the key is not the one it
    /// was sealed with.
    #[error("sealed value failed authentication (tampered with, or the wrong key)")]
    Tampered,
}
