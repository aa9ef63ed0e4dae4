//! The hash chain: the canonical encoding of an entry (audit.proto's file comment), the check
//! VerifyChain runs entry by entry, and the nanosecond timestamps entries are stored and hashed
//! with.

use chrono::{DateTime, Utc};

use super::Entry;

/// What VerifyChain found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub first_broken: Option<(i64, &'static str)>,
    pub start_sequence: i64,
    pub end_sequence: i64,
    pub entries_checked: i64,
    /// The latest signed checkpoint the range was checked against (0: none).
    pub checkpoint_sequence: i64,
    /// The retention anchor the range started from (0: none).
    pub anchor_sequence: i64,
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
pub(super) fn timestamp(at: DateTime<Utc>) -> Vec<u8> {
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
pub(super) fn int_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        key(out, field, 0);
        varint(out, value);
    }
}

pub(super) fn bytes_field(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        key(out, field, 2);
        varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }
}

pub(super) fn string_field(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes_field(out, field, value.as_bytes());
}

/// A set sub-message is always written, even when empty.
pub(super) fn message_field(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    key(out, field, 2);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

pub(super) fn bool_field(out: &mut Vec<u8>, field: u32, value: bool) {
    int_field(out, field, u64::from(value));
}
