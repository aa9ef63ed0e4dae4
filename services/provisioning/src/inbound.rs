//! Inbound webhooks from external provisioning backends (`ReceiveWebhook`): each configured
//! source's signature scheme, verified over the raw body bytes in constant time, and what a
//! verified webhook says.
//!
//! Schemes (one or more secrets each, so a source can rotate):
//! - **Standard Webhooks** (default): `webhook-id`, `webhook-timestamp` (±5 min),
//!   `webhook-signature` (`v1,<base64>`, several space-separated); on the standard's reference
//!   crate. The replay id is `webhook-id`.
//! - **GitHub**: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`; GitHub signs no
//!   timestamp, so replays are refused by `X-GitHub-Delivery` alone.
//! - **Stripe**: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` (±5 min, several
//!   `v1`); the replay id is the event's `id` in the body.
//!
//! GitHub's and Stripe's HMACs are computed with `ring` and compared in constant time (ring's
//! `hmac::verify`); no maintained crate covers both schemes on this stack.
//!
//! Malformed headers are [`Refusal::Malformed`] (400), a signature that does not verify or a
//! stale timestamp [`Refusal::Unverified`] (401) — never a 5xx.

use std::collections::BTreeMap;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// Seconds a signed timestamp may be off.
pub const TOLERANCE_SECS: i64 = 300;

/// A source's signature scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    #[default]
    StandardWebhooks,
    Github,
    Stripe,
}

/// One configured sender (`provisioning.webhook_sources`). `Debug` never shows the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSource {
    /// The `{source}` of `/v1/provisioning/webhooks/{source}`: 1–64 characters of `[a-z0-9-]`.
    pub name: String,
    #[serde(default)]
    pub scheme: Scheme,
    /// Every secret that verifies (the newest first during a rotation). Standard Webhooks:
    /// `whsec_<base64>`; GitHub and Stripe: the secret as their dashboards show it.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for WebhookSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSource")
            .field("name", &self.name)
            .field("scheme", &self.scheme)
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .finish()
    }
}

impl WebhookSource {
    /// Why this source's configuration is unusable, if it is.
    pub fn problem(&self) -> Option<&'static str> {
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Some("name: 1–64 characters of a-z, 0-9 and -");
        }
        if self.secrets.is_empty() || self.secrets.iter().any(|s| s.is_empty()) {
            return Some("secrets: at least one, none empty");
        }
        if self.scheme == Scheme::StandardWebhooks
            && self
                .secrets
                .iter()
                .any(|s| standardwebhooks::Webhook::new(s).is_err())
        {
            return Some("secrets: Standard Webhooks secrets are whsec_<base64>");
        }
        None
    }
}

/// Why a webhook was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A header missing or unreadable (400).
    Malformed(String),
    /// No secret verifies it, or its timestamp is outside the tolerance (401).
    Unverified(&'static str),
}

/// Verifies `body` as sent by `source` at `now` (unix seconds); its replay id.
pub fn verify(
    source: &WebhookSource,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<String, Refusal> {
    match source.scheme {
        Scheme::StandardWebhooks => standard(source, headers, body, now),
        Scheme::Github => github(source, headers, body),
        Scheme::Stripe => stripe(source, headers, body, now),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, Refusal> {
    headers
        .get(name)
        .ok_or_else(|| Refusal::Malformed(format!("the {name} header is missing")))?
        .to_str()
        .map_err(|_| Refusal::Malformed(format!("the {name} header is not text")))
}

fn standard(
    source: &WebhookSource,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<String, Refusal> {
    use standardwebhooks::WebhookError as E;
    let id = header(headers, "webhook-id")?.to_owned();
    let timestamp: i64 = header(headers, "webhook-timestamp")?
        .parse()
        .map_err(|_| Refusal::Malformed("webhook-timestamp is not a number".into()))?;
    header(headers, "webhook-signature")?;
    // The reference crate checks the timestamp against its own clock; this check against
    // `now` comes first so both agree on what is stale.
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(Refusal::Unverified(
            "the timestamp is outside the tolerance",
        ));
    }
    let mut last = Refusal::Unverified("no secret verifies the signature");
    for secret in &source.secrets {
        let Ok(hook) = standardwebhooks::Webhook::new(secret) else {
            continue;
        };
        match hook.verify(body, headers) {
            Ok(()) => return Ok(id),
            Err(E::InvalidSignature) => {}
            Err(E::TimestampTooOldError | E::FutureTimestampError) => {
                last = Refusal::Unverified("the timestamp is outside the tolerance");
            }
            Err(E::InvalidPayload) => {
                return Err(Refusal::Malformed("the body is not UTF-8".into()));
            }
            Err(other) => return Err(Refusal::Malformed(other.to_string())),
        }
    }
    Err(last)
}

fn hmac_hex_matches(secret: &[u8], message: &[u8], hex_signature: &str) -> bool {
    let Some(expected) = decode_hex(hex_signature) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::verify(&key, message, &expected).is_ok()
}

/// Lowercase or uppercase hex to bytes (`None` if it is not hex).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn github(source: &WebhookSource, headers: &HeaderMap, body: &[u8]) -> Result<String, Refusal> {
    let id = header(headers, "x-github-delivery")?.to_owned();
    let signature = header(headers, "x-hub-signature-256")?;
    let hex = signature
        .strip_prefix("sha256=")
        .ok_or_else(|| Refusal::Malformed("x-hub-signature-256 is not sha256=<hex>".into()))?;
    if decode_hex(hex).is_none_or(|b| b.len() != 32) {
        return Err(Refusal::Malformed(
            "x-hub-signature-256 is not sha256=<hex>".into(),
        ));
    }
    if source
        .secrets
        .iter()
        .any(|secret| hmac_hex_matches(secret.as_bytes(), body, hex))
    {
        Ok(id)
    } else {
        Err(Refusal::Unverified("no secret verifies the signature"))
    }
}

fn stripe(
    source: &WebhookSource,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<String, Refusal> {
    let malformed = || Refusal::Malformed("stripe-signature is not t=<unix>,v1=<hex>…".into());
    let signature = header(headers, "stripe-signature")?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in signature.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().map_err(|_| malformed())?),
            Some(("v1", v)) => signatures.push(v),
            Some((_, _)) => {}
            None => return Err(malformed()),
        }
    }
    let timestamp = timestamp.ok_or_else(malformed)?;
    if signatures.is_empty() {
        return Err(malformed());
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(Refusal::Unverified(
            "the timestamp is outside the tolerance",
        ));
    }
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let verified = source.secrets.iter().any(|secret| {
        signatures
            .iter()
            .any(|v1| hmac_hex_matches(secret.as_bytes(), &signed, v1))
    });
    if !verified {
        return Err(Refusal::Unverified("no secret verifies the signature"));
    }
    let event: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::Malformed("the body is not a JSON event".into()))?;
    event["id"]
        .as_str()
        .filter(|id| !id.is_empty() && id.len() <= 255)
        .map(str::to_owned)
        .ok_or_else(|| Refusal::Malformed("the event has no id".into()))
}

/// What a verified webhook reports about a RUNNING request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Report {
    /// Still working: like a Heartbeat (the lease extended, the note recorded).
    Progress {
        request_id: String,
        #[serde(default)]
        progress: String,
    },
    /// Done: like CompleteJob.
    Succeeded {
        request_id: String,
        #[serde(default)]
        result: BTreeMap<String, String>,
    },
    /// Failed: like FailJob.
    Failed {
        request_id: String,
        error: String,
        #[serde(default)]
        retryable: bool,
    },
}

impl Report {
    /// The report a body holds: `{"status": "progress"|"succeeded"|"failed", "request_id": …}`.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|err| format!("not a provisioning report: {err}"))
    }

    pub fn request_id(&self) -> &str {
        match self {
            Self::Progress { request_id, .. }
            | Self::Succeeded { request_id, .. }
            | Self::Failed { request_id, .. } => request_id,
        }
    }
}

#[cfg(test)]
mod tests;
