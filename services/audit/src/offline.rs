//! Reading what `ironmesh audit verify` checks, without the server: an export as the gateway
//! streams it (NDJSON, one `{"result": ExportResponse}` per line; bare `ExportResponse` JSON
//! values, as grpcurl prints them, are read too), a checkpoint as GetCheckpoint answers it in
//! JSON (`{"checkpoint": {…}}`, or the bare Checkpoint), and base64 public keys as
//! ListPublicKeys publishes them. JSON is the contract's proto3 JSON mapping, decoded with the
//! descriptors built into this binary; the checking itself is [`crate::domain::offline`].

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::Value;

use crate::domain::offline::{ExportCheck, Failure, Summary};
use crate::domain::{Checkpoint, TrustedKeys};
use crate::grpc::{signed, stored_entry};
use ironmesh_proto::ironmesh::audit::v1 as pb;

/// Why a file did not verify.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The input cannot be read as what it should be (not JSON, not the contract's messages,
    /// not a key).
    #[error("{0}")]
    Unusable(String),
    /// It was read, and does not verify: the first bad sequence and why.
    #[error(transparent)]
    Failed(#[from] Failure),
}

fn unusable(text: impl Into<String>) -> OfflineError {
    OfflineError::Unusable(text.into())
}

/// A 32-byte Ed25519 public key in base64 (standard or URL-safe alphabet, padded or not).
pub fn public_key(text: &str) -> Result<Vec<u8>, OfflineError> {
    let text = text.trim().trim_end_matches('=');
    let bytes = [STANDARD, URL_SAFE]
        .iter()
        .find_map(|engine| {
            let padded = format!("{text}{}", "=".repeat((4 - text.len() % 4) % 4));
            engine.decode(padded).ok()
        })
        .ok_or_else(|| unusable("a public key must be base64"))?;
    if bytes.len() != 32 {
        return Err(unusable(format!(
            "a public key must be 32 bytes (Ed25519), not {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// The checkpoint in `json`: GetCheckpoint's response or a bare Checkpoint.
pub fn checkpoint(json: &[u8]) -> Result<Checkpoint, OfflineError> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|err| unusable(format!("the checkpoint file is not JSON: {err}")))?;
    let value = match value {
        Value::Object(mut object) if object.contains_key("checkpoint") => {
            object.remove("checkpoint").unwrap_or_default()
        }
        other => other,
    };
    let proto: pb::Checkpoint = decode(value, "Checkpoint")
        .map_err(|err| unusable(format!("the checkpoint file: {err}")))?;
    signed(&proto).ok_or_else(|| unusable("the checkpoint has no valid signed_at"))
}

/// Verifies the export read from `entries` against `checkpoint`, signed by one of `keys`.
pub fn verify(
    entries: impl Read,
    checkpoint: Checkpoint,
    keys: TrustedKeys,
) -> Result<Summary, OfflineError> {
    let mut check = ExportCheck::new(keys, checkpoint)?;
    let values = serde_json::Deserializer::from_reader(entries).into_iter::<Value>();
    for (n, value) in values.enumerate() {
        let n = n + 1;
        let value =
            value.map_err(|err| unusable(format!("export message {n} is not JSON: {err}")))?;
        let message = match value {
            Value::Object(mut object) if object.contains_key("error") => {
                let error = object.remove("error").unwrap_or_default();
                return Err(unusable(format!(
                    "the export ended with an error after {} messages: {error}",
                    n - 1
                )));
            }
            Value::Object(mut object) if object.contains_key("result") => {
                object.remove("result").unwrap_or_default()
            }
            other => other,
        };
        let response: pb::ExportResponse = decode(message, "ExportResponse")
            .map_err(|err| unusable(format!("export message {n}: {err}")))?;
        if let Some(anchor) = &response.anchor {
            let anchor = signed(anchor).ok_or_else(|| {
                unusable(format!(
                    "export message {n}: the anchor has no valid signed_at"
                ))
            })?;
            check.anchor(anchor)?;
        }
        for entry in &response.entries {
            let entry = stored_entry(entry).map_err(|reason| Failure {
                sequence: entry.sequence,
                reason: format!("unreadable entry ({reason})"),
            })?;
            check.entry(&entry)?;
        }
    }
    Ok(check.finish()?)
}

/// `value` (proto3 JSON) as the audit message `name`.
fn decode<T: prost::Message + Default>(value: Value, name: &str) -> Result<T, String> {
    static POOL: std::sync::OnceLock<Result<DescriptorPool, String>> = std::sync::OnceLock::new();
    let pool = POOL
        .get_or_init(|| {
            DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET)
                .map_err(|err| format!("the built-in descriptors: {err}"))
        })
        .as_ref()
        .map_err(Clone::clone)?;
    let descriptor = pool
        .get_message_by_name(&format!("ironmesh.audit.v1.{name}"))
        .ok_or_else(|| format!("no message {name} in the built-in descriptors"))?;
    let message = DynamicMessage::deserialize(descriptor, value)
        .map_err(|err| format!("not an audit {name}: {err}"))?;
    message
        .transcode_to()
        .map_err(|err| format!("not an audit {name}: {err}"))
}
