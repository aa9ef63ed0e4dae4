//! Proto ⇄ domain for provisioning: requests, positions, jobs and dead letters as the contract
//! shows them, and the durations and maps of its requests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ironmesh_proto::ironmesh::provisioning::v1 as pb;
use ironmesh_runtime::validation::Violations;

use crate::domain::{DeadLetter, Job, Request, State, Tier};
use crate::service::Position;
use crate::store::StoredCredential;

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn millis(ms: i64) -> Option<prost_types::Timestamp> {
    (ms > 0)
        .then(|| DateTime::from_timestamp_millis(ms))
        .flatten()
        .map(timestamp)
}

pub fn state(s: State) -> pb::RequestState {
    match s {
        State::Queued => pb::RequestState::Queued,
        State::Running => pb::RequestState::Running,
        State::Succeeded => pb::RequestState::Succeeded,
        State::Failed => pb::RequestState::Failed,
        State::Cancelled => pb::RequestState::Cancelled,
    }
}

pub fn state_filter(v: &mut Violations, field: &str, raw: i32) -> Option<State> {
    match pb::RequestState::try_from(raw) {
        Ok(pb::RequestState::Unspecified) => None,
        Ok(pb::RequestState::Queued) => Some(State::Queued),
        Ok(pb::RequestState::Running) => Some(State::Running),
        Ok(pb::RequestState::Succeeded) => Some(State::Succeeded),
        Ok(pb::RequestState::Failed) => Some(State::Failed),
        Ok(pb::RequestState::Cancelled) => Some(State::Cancelled),
        Err(_) => {
            v.add(field, "not a RequestState");
            None
        }
    }
}

pub fn tier_filter(v: &mut Violations, field: &str, raw: i32) -> Option<Tier> {
    if raw == 0 {
        return None;
    }
    let tier = Tier::from_i32(raw);
    if tier.is_none() {
        v.add(field, "not a PriorityTier");
    }
    tier
}

pub fn request(r: &Request) -> pb::ProvisioningRequest {
    pb::ProvisioningRequest {
        request_id: r.id.clone(),
        customer_id: r.customer_id.clone(),
        plan: r.plan.clone(),
        priority_tier: r.tier.as_i32(),
        state: state(r.state).into(),
        attempts: r.attempts,
        max_attempts: r.max_attempts,
        last_error: r.last_error.clone(),
        credential_kinds: r.credential_kinds.clone(),
        result: r.result.clone().into_iter().collect(),
        idempotency_key: r.idempotency_key.clone(),
        not_before: millis(r.not_before_ms),
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
        started_at: r.started_at.map(timestamp),
        finished_at: r.finished_at.map(timestamp),
    }
}

pub fn position(p: &Position) -> pb::QueuePosition {
    pb::QueuePosition {
        request_id: p.request_id.clone(),
        state: state(p.state).into(),
        position: p.position,
        queue_length: p.queue_length,
        estimated_wait: p.estimated_wait.map(duration),
        observed_at: Some(timestamp(p.observed_at)),
    }
}

pub fn credential_info(c: &StoredCredential) -> pb::CredentialInfo {
    pb::CredentialInfo {
        credential_id: c.id.clone(),
        request_id: c.request_id.clone(),
        kind: c.kind.clone(),
        field_names: c.field_names.clone(),
        key_id: c.key_id.clone(),
        created_at: Some(timestamp(c.created_at)),
    }
}

/// A job as its worker sees it, with the metadata of its request's credentials.
pub fn job(j: &Job, r: &Request, credentials: &[StoredCredential]) -> pb::Job {
    pb::Job {
        job_id: j.id.clone(),
        request_id: r.id.clone(),
        customer_id: r.customer_id.clone(),
        plan: r.plan.clone(),
        priority_tier: r.tier.as_i32(),
        attempt: j.attempt,
        lease_token: j.lease_token.clone(),
        lease_expires_at: millis(j.lease_expires_ms),
        worker_id: j.worker_id.clone(),
        credentials: credentials.iter().map(credential_info).collect(),
    }
}

pub fn dead_letter(d: &DeadLetter) -> pb::DeadLetter {
    pb::DeadLetter {
        dead_letter_id: d.id.clone(),
        request_id: d.request_id.clone(),
        attempts: d.attempts,
        last_error: d.last_error.clone(),
        dead_lettered_at: Some(timestamp(d.dead_lettered_at)),
        replayed_at: d.replayed_at.map(timestamp),
        replayed_by: d.replayed_by.clone(),
    }
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// A proto duration (`field`) as a `Duration`: unset = `None`; negative or malformed is a
/// violation.
pub fn from_duration(
    v: &mut Violations,
    field: &str,
    d: Option<prost_types::Duration>,
) -> Option<Duration> {
    let d = d?;
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        v.add(field, "must be a non-negative duration");
        return None;
    }
    Some(Duration::new(
        u64::try_from(d.seconds).unwrap_or(0),
        u32::try_from(d.nanos).unwrap_or(0),
    ))
}

/// A string map within `max_entries` and `max_bytes` in total (keys 1–64 characters).
pub fn string_map(
    v: &mut Violations,
    field: &str,
    map: &std::collections::HashMap<String, String>,
    max_entries: usize,
    max_bytes: usize,
) -> std::collections::BTreeMap<String, String> {
    if map.len() > max_entries {
        v.add(field, format!("at most {max_entries} entries"));
    }
    if map.iter().map(|(k, x)| k.len() + x.len()).sum::<usize>() > max_bytes {
        v.add(field, format!("at most {} KiB in total", max_bytes / 1024));
    }
    if map.keys().any(|k| k.is_empty() || k.chars().count() > 64) {
        v.add(field, "keys are 1–64 characters");
    }
    map.iter().map(|(k, x)| (k.clone(), x.clone())).collect()
}
