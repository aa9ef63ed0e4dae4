//! proto ⇄ domain for audit, plain functions.

use ironmesh_proto::ironmesh::audit::v1 as pb;

use crate::domain::{
    self, ActionFilter, AuditError, Checkpoint, Entry, Filter, NewEntry, Outcome, Verification,
    Violations,
};
use crate::keys::PublicKey;

pub(crate) fn new_entries(entries: &[pb::AuditEntry]) -> Result<Vec<NewEntry>, AuditError> {
    let mut violations = Violations::default();
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let occurred_at = match e.occurred_at.as_ref() {
            None => {
                violations.add(format!("entries[{i}].occurred_at"), "required");
                None
            }
            Some(ts) => {
                let at = time(ts);
                if at.is_none() {
                    violations.add(
                        format!("entries[{i}].occurred_at"),
                        "not a valid timestamp between 1677 and 2262",
                    );
                }
                at
            }
        };
        let outcome = match pb::Outcome::try_from(e.outcome) {
            Ok(pb::Outcome::Success) => Some(Outcome::Success),
            Ok(pb::Outcome::Failure) => Some(Outcome::Failure),
            Ok(pb::Outcome::Denied) => Some(Outcome::Denied),
            Ok(pb::Outcome::Unspecified) | Err(_) => {
                violations.add(
                    format!("entries[{i}].outcome"),
                    "required: SUCCESS, FAILURE or DENIED",
                );
                None
            }
        };
        out.push(match (occurred_at, outcome) {
            (Some(occurred_at), Some(outcome)) => Some(NewEntry {
                occurred_at,
                actor: e.actor.clone(),
                action: e.action.clone(),
                resource: e.resource.clone(),
                outcome,
                source_service: e.source_service.clone(),
                request_id: e.request_id.clone(),
                idempotency_key: e.idempotency_key.clone(),
                details: e
                    .details
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }),
            _ => None,
        });
    }
    if !violations.0.is_empty() {
        // Report the other fields' rules too, so one answer names every bad field.
        for (i, e) in out.iter().enumerate() {
            if let Some(e) = e {
                domain::check_entry(e, &format!("entries[{i}]"), &mut violations);
            }
        }
        return Err(AuditError::Invalid(violations.0));
    }
    Ok(out.into_iter().flatten().collect())
}

/// A time bound in the store's nanoseconds. One outside what they hold (1677–2262) excludes
/// nothing on that side, or everything: clamp it rather than refuse a valid Timestamp.
pub(crate) fn bound(ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    ts.map(|ts| match time(ts).and_then(domain::to_nanos) {
        Some(ns) => ns,
        None if ts.seconds < 0 => i64::MIN,
        None => i64::MAX,
    })
}

pub(crate) fn filter(request: &pb::QueryRequest) -> Result<Filter, AuditError> {
    let mut violations = Violations::default();
    let start_ns = bound(request.start_time.as_ref());
    let end_ns = bound(request.end_time.as_ref());
    let outcome = match pb::Outcome::try_from(request.outcome) {
        Ok(pb::Outcome::Unspecified) => None,
        Ok(pb::Outcome::Success) => Some(Outcome::Success),
        Ok(pb::Outcome::Failure) => Some(Outcome::Failure),
        Ok(pb::Outcome::Denied) => Some(Outcome::Denied),
        Err(_) => {
            violations.add("outcome", "unknown outcome");
            None
        }
    };
    violations.into_result()?;
    Ok(Filter {
        actor: request.actor.clone(),
        action: ActionFilter::parse(&request.action),
        resource: request.resource.clone(),
        start_ns,
        end_ns,
        outcome,
        newest_first: request.newest_first,
    })
}

pub(crate) fn time(ts: &prost_types::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    let at = chrono::DateTime::from_timestamp(ts.seconds, nanos)?;
    domain::to_nanos(at).map(|_| at)
}

use ironmesh_runtime::time::timestamp;

/// Domain entry → proto.
pub fn entry(e: Entry) -> pb::AuditEntry {
    let body = e.body;
    pb::AuditEntry {
        sequence: e.sequence,
        entry_id: e.entry_id,
        occurred_at: Some(timestamp(body.occurred_at)),
        recorded_at: Some(timestamp(e.recorded_at)),
        actor: body.actor,
        action: body.action,
        resource: body.resource,
        outcome: body.outcome.number(),
        source_service: body.source_service,
        request_id: body.request_id,
        idempotency_key: body.idempotency_key,
        details: body.details.into_iter().collect(),
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

/// A stored entry as a verifier received it (proto → domain); why it cannot be one otherwise.
pub fn stored_entry(e: &pb::AuditEntry) -> Result<Entry, &'static str> {
    let at = |ts: Option<&prost_types::Timestamp>| ts.and_then(time).ok_or("unreadable timestamp");
    let outcome = u8::try_from(e.outcome)
        .ok()
        .and_then(|n| Outcome::from_number(i64::from(n)))
        .ok_or("unknown outcome")?;
    Ok(Entry {
        sequence: e.sequence,
        entry_id: e.entry_id.clone(),
        recorded_at: at(e.recorded_at.as_ref())?,
        body: NewEntry {
            occurred_at: at(e.occurred_at.as_ref())?,
            actor: e.actor.clone(),
            action: e.action.clone(),
            resource: e.resource.clone(),
            outcome,
            source_service: e.source_service.clone(),
            request_id: e.request_id.clone(),
            idempotency_key: e.idempotency_key.clone(),
            details: e
                .details
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        prev_hash: e.prev_hash.clone(),
        hash: e.hash.clone(),
    })
}

/// Domain checkpoint (or anchor) → proto.
pub fn checkpoint(c: Checkpoint) -> pb::Checkpoint {
    pb::Checkpoint {
        sequence: c.sequence,
        hash: c.hash,
        signed_at: Some(timestamp(c.signed_at)),
        key_id: c.key_id,
        algorithm: c.algorithm,
        signature: c.signature,
        retention_anchor: c.retention_anchor,
    }
}

/// Proto checkpoint → domain, for a verifier; `None` if its time is unreadable.
pub fn signed(c: &pb::Checkpoint) -> Option<Checkpoint> {
    Some(Checkpoint {
        sequence: c.sequence,
        hash: c.hash.clone(),
        signed_at: time(c.signed_at.as_ref()?)?,
        key_id: c.key_id.clone(),
        algorithm: c.algorithm.clone(),
        signature: c.signature.clone(),
        retention_anchor: c.retention_anchor,
    })
}

pub(crate) fn public_key(k: PublicKey) -> pb::PublicKey {
    pb::PublicKey {
        key_id: k.key_id,
        algorithm: domain::ALGORITHM.to_owned(),
        public_key: k.public_key,
        created_at: Some(timestamp(k.created_at)),
    }
}

pub(crate) fn verification(v: Verification) -> pb::VerifyChainResponse {
    let (ok, first_broken_sequence, failure_reason) = match v.first_broken {
        None => (true, 0, String::new()),
        Some((at, why)) => (false, at, why.to_owned()),
    };
    pb::VerifyChainResponse {
        ok,
        first_broken_sequence,
        failure_reason,
        start_sequence: v.start_sequence,
        end_sequence: v.end_sequence,
        entries_checked: v.entries_checked,
        checkpoint_sequence: v.checkpoint_sequence,
        anchor_sequence: v.anchor_sequence,
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::grpc::status;
    use tonic_types::StatusExt;

    fn sample(details: &[(&str, &str)]) -> Entry {
        Entry {
            sequence: 7,
            entry_id: "0190-entry".into(),
            recorded_at: domain::from_nanos(1_700_000_000_123_456_789),
            body: NewEntry {
                occurred_at: domain::from_nanos(1_699_999_999_000_000_001),
                actor: "user-1".into(),
                action: "orders.order.cancel".into(),
                resource: "orders/0190".into(),
                outcome: Outcome::Denied,
                source_service: "orders".into(),
                request_id: "req-1".into(),
                idempotency_key: "key-1".into(),
                details: details
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
            prev_hash: vec![9; 32],
            hash: vec![1; 32],
        }
    }

    /// The hand-written canonical encoding is byte for byte prost's encoding of the same
    /// AuditEntry with `hash` cleared (one detail, so map order cannot differ), and with no
    /// details or an empty resource/request id (proto3 omits defaults).
    #[test]
    fn canonical_encoding_equals_protobuf_encoding() {
        for details in [&[("reason", "fraud")][..], &[]] {
            let e = sample(details);
            let mut proto = entry(e.clone());
            proto.hash.clear();
            assert_eq!(domain::canonical(&e), proto.encode_to_vec());
        }
        let mut e = sample(&[]);
        e.body.resource.clear();
        e.body.request_id.clear();
        let mut proto = entry(e.clone());
        proto.hash.clear();
        assert_eq!(domain::canonical(&e), proto.encode_to_vec());
    }

    /// A checkpoint's signing input is prost's encoding of the same Checkpoint with `signature`
    /// cleared, for a head (no `retention_anchor` field) and for an anchor; the two differ.
    #[test]
    fn signing_input_equals_protobuf_encoding() {
        let head = Checkpoint {
            sequence: 42,
            hash: vec![7; 32],
            signed_at: domain::from_nanos(1_700_000_000_123_456_000),
            key_id: "audit-0123456789abcdef".into(),
            algorithm: domain::ALGORITHM.into(),
            signature: vec![1; 64],
            retention_anchor: false,
        };
        let anchor = Checkpoint {
            retention_anchor: true,
            ..head.clone()
        };
        for c in [&head, &anchor] {
            let mut proto = checkpoint(c.clone());
            proto.signature.clear();
            assert_eq!(c.signing_input(), proto.encode_to_vec());
            assert_eq!(signed(&checkpoint(c.clone())).as_ref(), Some(c));
        }
        assert_ne!(head.signing_input(), anchor.signing_input());
    }

    /// A stored entry survives proto and back (what the offline verifier reads).
    #[test]
    fn stored_entries_round_trip() {
        let e = sample(&[("a", "1"), ("b", "2")]);
        assert_eq!(stored_entry(&entry(e.clone())), Ok(e));
        let mut bad = entry(sample(&[]));
        bad.outcome = 9;
        assert_eq!(stored_entry(&bad), Err("unknown outcome"));
    }

    /// With several details the canonical form lists them by key, as separate map entries.
    #[test]
    fn details_are_sorted_by_key() {
        let e = sample(&[("b", "2"), ("a", "1")]);
        let bytes = domain::canonical(&e);
        let a = bytes
            .windows(6)
            .position(|w| w == [0x62, 6, 0x0a, 1, b'a', 0x12]);
        let b = bytes
            .windows(6)
            .position(|w| w == [0x62, 6, 0x0a, 1, b'b', 0x12]);
        assert!(a.unwrap() < b.unwrap());
    }

    /// Append's conversion names every bad field, as field violations.
    #[test]
    fn append_violations_name_fields() {
        let bad = pb::AuditEntry {
            action: "nope".into(),
            ..Default::default()
        };
        let Err(AuditError::Invalid(v)) = new_entries(&[bad]) else {
            panic!("expected violations")
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"entries[0].occurred_at"));
        assert!(fields.contains(&"entries[0].outcome"));
        let status = status(AuditError::Invalid(v), None);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.get_details_bad_request().is_some());
    }
}
