//! Audit's domain: entries, the input rules of audit.proto, the hash chain, signed checkpoints
//! and anchors ([`Checkpoint`]), and the offline check of an export ([`offline`]) — no proto
//! types and no SQL. The canonical encoding is written out here by hand (it is a few protobuf fields),
//! so the chain's definition does not depend on a code generator's choices; a test in `grpc`
//! proves it equals prost's encoding of the same `AuditEntry`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

mod chain;
mod checkpoint;
pub mod offline;

pub use chain::{ChainCheck, Verification, canonical, from_nanos, to_nanos};
pub use checkpoint::{ALGORITHM, Checkpoint, TrustedKeys, key_id};

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
    /// The head is behind the latest signed checkpoint: entries were removed from the tail.
    #[error("the chain head ({head}) is behind the latest signed checkpoint ({checkpoint})")]
    Truncated { head: i64, checkpoint: i64 },
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
