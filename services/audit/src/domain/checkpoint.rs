//! Signed statements about the chain: checkpoints of the head and retention anchors (the last
//! purged entry). Both are audit.proto's `Checkpoint`; its signing input is written out here like
//! the entries' canonical encoding, and a test in `grpc::convert` proves it equals prost's.

use chrono::{DateTime, Utc};
use ring::signature::{ED25519, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use super::chain::{bool_field, bytes_field, int_field, message_field, string_field, timestamp};

/// The only signature algorithm audit uses.
pub const ALGORITHM: &str = "Ed25519";

/// A signed (sequence, hash): the head at `signed_at`, or with `retention_anchor` the last entry
/// retention purged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub sequence: i64,
    pub hash: Vec<u8>,
    pub signed_at: DateTime<Utc>,
    pub key_id: String,
    pub algorithm: String,
    pub signature: Vec<u8>,
    pub retention_anchor: bool,
}

impl Checkpoint {
    /// What is signed: the protobuf encoding of the Checkpoint with `signature` cleared, fields
    /// in field-number order (proto3 defaults omitted, so a head's `retention_anchor` is absent).
    pub fn signing_input(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        int_field(&mut out, 1, self.sequence as u64);
        bytes_field(&mut out, 2, &self.hash);
        message_field(&mut out, 3, &timestamp(self.signed_at));
        string_field(&mut out, 4, &self.key_id);
        string_field(&mut out, 5, &self.algorithm);
        bool_field(&mut out, 7, self.retention_anchor);
        out
    }

    /// Whether `signature` is this statement's Ed25519 signature by `public_key`.
    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        self.algorithm == ALGORITHM
            && UnparsedPublicKey::new(&ED25519, public_key)
                .verify(&self.signing_input(), &self.signature)
                .is_ok()
    }
}

/// The key id of an Ed25519 public key: `audit-` and the first 16 hex digits of its SHA-256, so
/// a verifier can tell which of its trusted keys a checkpoint names without a lookup table.
pub fn key_id(public_key: &[u8]) -> String {
    let digest = Sha256::digest(public_key);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("audit-{hex}")
}

/// Public keys a verifier trusts, found by the key id a signature names.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys(Vec<(String, Vec<u8>)>);

impl TrustedKeys {
    pub fn new(keys: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self(keys.into_iter().map(|k| (key_id(&k), k)).collect())
    }

    /// Keys whose id is stored beside them (the service's own table).
    pub fn with_ids(keys: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        Self(keys.into_iter().collect())
    }

    pub fn get(&self, key_id: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, k)| k.as_slice())
    }

    /// Whether `checkpoint` is signed by the trusted key it names.
    pub fn verify(&self, checkpoint: &Checkpoint) -> bool {
        self.get(&checkpoint.key_id)
            .is_some_and(|key| checkpoint.signed_by(key))
    }
}
