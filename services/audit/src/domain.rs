//! Audit's domain: entries, the input rules of audit.proto, and the hash chain — no proto types
//! and no SQL. The canonical encoding is written out here by hand (it is a few protobuf fields),
//! so the chain's definition does not depend on a code generator's choices; a test in `grpc`
//! proves it equals prost's encoding of the same `AuditEntry`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Length of every hash in the chain (SHA-256).
pub const HASH_LEN: usize = 32;
/// `prev_hash` of sequence 1.
pub const ZERO_HASH: [u8; HASH_LEN] = [0; HASH_LEN];
/// Most entries one Append may carry.
pub const MAX_BATCH: usize = 500;
/// Most `details` entries of one entry.
pub const MAX_DETAILS: usize = 32;
/// Most bytes of `details` keys and values of one entry together.
pub const MAX_DETAILS_BYTES: usize = 8 * 1024;
/// Length bounds (characters) of the contract's strings.
pub const MAX_ACTION_CHARS: usize = 128;
pub const MAX_RESOURCE_CHARS: usize = 256;
pub const MAX_KEY_CHARS: usize = 128;

/// Whether the audited action succeeded (never "unspecified" in a stored entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success = 1,
    Failure = 2,
    Denied = 3,
}

impl Outcome {
    /// The contract's number for it (also what the store keeps).
    pub fn number(self) -> i32 {
        self as i32
    }

    pub fn from_number(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::Success),
            2 => Some(Self::Failure),
            3 => Some(Self::Denied),
            _ => None,
        }
    }
}

/// What a caller asks to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub outcome: Outcome,
    pub source_service: String,
    pub request_id: String,
    pub idempotency_key: String,
    pub details: BTreeMap<String, String>,
}

/// A recorded entry: what was asked plus its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub sequence: i64,
    pub entry_id: String,
    pub recorded_at: DateTime<Utc>,
    pub body: NewEntry,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl Entry {
    /// SHA-256(prev_hash || canonical(entry)) over the stored fields: what `hash` must be.
    pub fn computed_hash(&self) -> [u8; HASH_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(&self.prev_hash);
        hasher.update(canonical(self));
        hasher.finalize().into()
    }
}

/// One input-rule violation: the field path (as in the request, e.g. `entries[2].action`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    #[error("no entry at that sequence")]
    NotFound,
    #[error("internal: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AuditError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::Invalid(vec![Violation {
            field: field.into(),
            description: description.into(),
        }])
    }
}

/// Collects violations under a field prefix.
#[derive(Default)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            description: description.into(),
        });
    }

    pub fn into_result(self) -> Result<(), AuditError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AuditError::Invalid(self.0))
        }
    }
}

/// The rules audit.proto states for an entry's caller-set fields, reported under `prefix`
/// (e.g. `entries[3]`). `occurred_at` and `outcome` are checked where they are converted.
pub fn check_entry(entry: &NewEntry, prefix: &str, out: &mut Violations) {
    let field = |name: &str| format!("{prefix}.{name}");
    if entry.actor.is_empty() {
        out.add(field("actor"), "required");
    }
    if let Err(why) = check_action(&entry.action) {
        out.add(field("action"), why);
    }
    if let Err(why) = check_resource(&entry.resource) {
        out.add(field("resource"), why);
    }
    if entry.source_service.is_empty() {
        out.add(field("source_service"), "required");
    }
    let key_chars = entry.idempotency_key.chars().count();
    if key_chars == 0 {
        out.add(field("idempotency_key"), "required");
    } else if key_chars > MAX_KEY_CHARS {
        out.add(
            field("idempotency_key"),
            format!("at most {MAX_KEY_CHARS} characters"),
        );
    }
    if entry.details.len() > MAX_DETAILS {
        out.add(field("details"), format!("at most {MAX_DETAILS} entries"));
    }
    let bytes: usize = entry.details.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_DETAILS_BYTES {
        out.add(
            field("details"),
            format!("at most {MAX_DETAILS_BYTES} bytes of keys and values in total"),
        );
    }
}

/// `<service>.<resource>.<verb>`: three non-empty dot-separated parts, 1–128 characters.
pub fn check_action(action: &str) -> Result<(), String> {
    let chars = action.chars().count();
    if chars == 0 {
        return Err("required".into());
    }
    if chars > MAX_ACTION_CHARS {
        return Err(format!("at most {MAX_ACTION_CHARS} characters"));
    }
    let parts: Vec<&str> = action.split('.').collect();
    let well_formed = parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if well_formed {
        Ok(())
    } else {
        Err("must be <service>.<resource>.<verb> (e.g. orders.order.cancel)".into())
    }
}

/// Empty, or `<resource-type>/<id>` of at most 256 characters.
pub fn check_resource(resource: &str) -> Result<(), String> {
    if resource.is_empty() {
        return Ok(());
    }
    if resource.chars().count() > MAX_RESOURCE_CHARS {
        return Err(format!("at most {MAX_RESOURCE_CHARS} characters"));
    }
    match resource.split_once('/') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Ok(()),
        _ => Err("must be <resource-type>/<id> (e.g. orders/0190…) or empty".into()),
    }
}

/// A Query's action filter: exact, or a prefix written `prefix.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionFilter {
    Any,
    Exact(String),
    /// Matches actions starting with this text (which ends in '.').
    Prefix(String),
}

impl ActionFilter {
    pub fn parse(action: &str) -> Self {
        if action.is_empty() {
            Self::Any
        } else if let Some(prefix) = action.strip_suffix('*')
            && prefix.ends_with('.')
        {
            Self::Prefix(prefix.to_owned())
        } else {
            Self::Exact(action.to_owned())
        }
    }
}

/// Query's filters (all combine with AND).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub actor: String,
    pub action: ActionFilter,
    pub resource: String,
    /// Inclusive lower / exclusive upper bound on `occurred_at`, in Unix nanoseconds.
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    pub outcome: Option<Outcome>,
    pub newest_first: bool,
}

/// Query's page size: default 100, at most 1000.
pub fn page_size(requested: i32) -> Result<i64, AuditError> {
    match requested {
        n if n < 0 => Err(AuditError::invalid("page_size", "must not be negative")),
        0 => Ok(100),
        n => Ok(i64::from(n.min(1000))),
    }
}

/// What VerifyChain found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub first_broken: Option<(i64, &'static str)>,
    pub start_sequence: i64,
    pub end_sequence: i64,
    pub entries_checked: i64,
}

/// Checks entries in sequence order against the chain, carrying state between batches.
#[derive(Debug)]
pub struct ChainCheck {
    /// The sequence the next entry must have.
    pub next_sequence: i64,
    /// The stored hash of the entry before it (the anchor for the first one).
    pub prev_hash: Vec<u8>,
}

impl ChainCheck {
    /// Checks `entry`; the reason it fails, if it does.
    pub fn check(&mut self, entry: &Entry) -> Result<(), &'static str> {
        if entry.sequence != self.next_sequence {
            return Err("gap");
        }
        if entry.prev_hash != self.prev_hash {
            return Err("prev_hash mismatch");
        }
        if entry.hash != entry.computed_hash() {
            return Err("hash mismatch");
        }
        self.next_sequence += 1;
        self.prev_hash.clone_from(&entry.hash);
        Ok(())
    }
}

/// Nanoseconds since the Unix epoch, if `at` is within what an i64 holds (1677–2262).
pub fn to_nanos(at: DateTime<Utc>) -> Option<i64> {
    at.timestamp_nanos_opt()
}

pub fn from_nanos(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

// ─── The canonical encoding (audit.proto's file comment) ─────────────────────────────────────

/// The protobuf encoding of the entry with `hash` cleared, fields in field-number order, proto3
/// defaults omitted as every protobuf encoder does, and `details` sorted by key.
pub fn canonical(entry: &Entry) -> Vec<u8> {
    let body = &entry.body;
    let mut out = Vec::with_capacity(256);
    int_field(&mut out, 1, entry.sequence as u64);
    string_field(&mut out, 2, &entry.entry_id);
    message_field(&mut out, 3, &timestamp(body.occurred_at));
    message_field(&mut out, 4, &timestamp(entry.recorded_at));
    string_field(&mut out, 5, &body.actor);
    string_field(&mut out, 6, &body.action);
    string_field(&mut out, 7, &body.resource);
    int_field(&mut out, 8, i64::from(body.outcome.number()) as u64);
    string_field(&mut out, 9, &body.source_service);
    string_field(&mut out, 10, &body.request_id);
    string_field(&mut out, 11, &body.idempotency_key);
    // BTreeMap iterates in key order: the sort the contract asks for.
    for (key, value) in &body.details {
        let mut pair = Vec::new();
        string_field(&mut pair, 1, key);
        string_field(&mut pair, 2, value);
        message_field(&mut out, 12, &pair);
    }
    bytes_field(&mut out, 13, &entry.prev_hash);
    out
}

/// `google.protobuf.Timestamp { seconds = 1; nanos = 2; }`.
fn timestamp(at: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::new();
    int_field(&mut out, 1, at.timestamp() as u64);
    int_field(&mut out, 2, u64::from(at.timestamp_subsec_nanos()));
    out
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

/// An int32/int64/enum field (negative values as their 64-bit two's complement, like protobuf).
fn int_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        key(out, field, 0);
        varint(out, value);
    }
}

fn bytes_field(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        key(out, field, 2);
        varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }
}

fn string_field(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes_field(out, field, value.as_bytes());
}

/// A set sub-message is always written, even when empty.
fn message_field(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    key(out, field, 2);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            sequence: 1,
            entry_id: "e".into(),
            recorded_at: from_nanos(2_000_000_000),
            body: NewEntry {
                occurred_at: from_nanos(1_000_000_001),
                actor: "u".into(),
                action: "auth.user.login".into(),
                resource: String::new(),
                outcome: Outcome::Success,
                source_service: "auth".into(),
                request_id: String::new(),
                idempotency_key: "k".into(),
                details: BTreeMap::new(),
            },
            prev_hash: ZERO_HASH.to_vec(),
            hash: Vec::new(),
        }
    }

    /// A changed field changes the hash; details order cannot (a BTreeMap has only one).
    #[test]
    fn hash_covers_every_field() {
        let base = entry();
        let mut other = base.clone();
        other.body.actor = "v".into();
        assert_ne!(base.computed_hash(), other.computed_hash());
        let mut other = base.clone();
        other.prev_hash[0] = 1;
        assert_ne!(base.computed_hash(), other.computed_hash());
    }

    #[test]
    fn actions_and_resources_follow_the_contract() {
        assert!(check_action("orders.order.cancel").is_ok());
        assert!(check_action("orders.cancel").is_err());
        assert!(check_action("").is_err());
        assert!(check_action(&format!("a.b.{}", "c".repeat(130))).is_err());
        assert!(check_resource("").is_ok());
        assert!(check_resource("orders/0190").is_ok());
        assert!(check_resource("orders").is_err());
        assert_eq!(
            ActionFilter::parse("auth.*"),
            ActionFilter::Prefix("auth.".into())
        );
        assert_eq!(ActionFilter::parse("a*"), ActionFilter::Exact("a*".into()));
    }
}
