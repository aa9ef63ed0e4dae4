//! Standard Webhooks signing for outgoing webhooks, on the standard's reference crate
//! (`standardwebhooks`): endpoint secrets (`whsec_<base64>`, 32 random bytes), and the
//! `webhook-id` / `webhook-timestamp` / `webhook-signature` headers of one attempt —
//! `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret, space-separated, so during a
//! rotation's grace both the old and the new secret's signatures are sent. Not wired into the
//! service yet (the delivery engine arrives with the rest of the notification issue); tested
//! here, also against the independent Python implementation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use standardwebhooks::Webhook;

/// The prefix of an endpoint secret as shown to its owner.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret.
pub const SECRET_BYTES: usize = 32;

/// One endpoint signing secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A secret that is not `whsec_` + base64 of at least 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a webhook secret (whsec_ followed by base64 of at least 24 bytes)")]
pub struct BadSecret;

impl Secret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        Self(rand::random::<[u8; SECRET_BYTES]>().to_vec())
    }

    /// Reads `whsec_<base64>` (the form shown to the owner and kept sealed at rest).
    pub fn parse(text: &str) -> Result<Self, BadSecret> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| BadSecret)?;
        if bytes.len() < 24 {
            return Err(BadSecret);
        }
        Ok(Self(bytes))
    }

    /// The `whsec_<base64>` form.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }
}

/// The three headers of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The delivery id: the same on every attempt, so receivers dedupe.
    pub id: String,
    /// Seconds since the epoch of this attempt (fresh each time).
    pub timestamp: i64,
    /// `v1,<sig>` per secret, space-separated.
    pub signature: String,
}

/// A body that is not UTF-8 (webhook payloads are JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a webhook body must be UTF-8 JSON")]
pub struct NotText;

/// Signs `body` for delivery `id` at `timestamp` with each of `secrets` (the current one first,
/// then, during a rotation's grace, the previous one).
pub fn sign(
    id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[&Secret],
) -> Result<SignedHeaders, NotText> {
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let signed = Webhook::from_bytes(secret.0.clone())
            .and_then(|hook| hook.sign(id, timestamp, body))
            .map_err(|_| NotText)?;
        signatures.push(signed);
    }
    Ok(SignedHeaders {
        id: id.to_owned(),
        timestamp,
        signature: signatures.join(" "),
    })
}

#[cfg(test)]
mod tests;
