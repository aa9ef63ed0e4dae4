//! What proves the figures honest: every request submitted was claimed once, completed once
//! (CompleteJob answered OK once) and is SUCCEEDED once in ListRequests after one attempt, with
//! the result its worker sent, and nothing else succeeded; every watcher saw its position fall,
//! then one message with its request no longer QUEUED, then the end of the stream (OK).

use std::collections::HashMap;

use ironmesh_proto::ironmesh::provisioning::v1 as pb;

use super::drain::Drained;
use super::watch::Seen;
use crate::error::BenchError;

/// Checks one drain of `drained_ids` (what it was to drain) against what it did, and
/// `succeeded` (ListRequests, SUCCEEDED, after it) against every request submitted so far
/// (`all`).
pub fn exactly_once(
    what: &str,
    drained_ids: &[String],
    drained: &Drained,
    all: &[String],
    succeeded: &[pb::ProvisioningRequest],
) -> Result<(), BenchError> {
    let fail = |why: String| Err(BenchError::Failed(format!("{what}: {why}")));
    for (name, per_request) in [
        ("claimed", &drained.claims),
        ("completed", &drained.completions),
    ] {
        if let Some((id, n)) = per_request.iter().find(|(_, n)| **n != 1) {
            return fail(format!("request {id} was {name} {n} times"));
        }
        if let Some(id) = drained_ids.iter().find(|id| !per_request.contains_key(*id)) {
            return fail(format!("request {id} was never {name}"));
        }
        if per_request.len() != drained_ids.len() {
            return fail(format!(
                "{} requests {name}, {} submitted",
                per_request.len(),
                drained_ids.len()
            ));
        }
    }
    let mut listed: HashMap<&str, &pb::ProvisioningRequest> = HashMap::new();
    for r in succeeded {
        if listed.insert(&r.request_id, r).is_some() {
            return fail(format!("request {} is listed twice", r.request_id));
        }
    }
    for id in all {
        let Some(r) = listed.remove(id.as_str()) else {
            return fail(format!("request {id} is not SUCCEEDED"));
        };
        if r.attempts != 1 {
            return fail(format!("request {id} took {} attempts", r.attempts));
        }
        if r.result.get("tenant_id") != Some(id) {
            return fail(format!(
                "request {id} does not hold its result ({:?})",
                r.result
            ));
        }
    }
    if let Some(id) = listed.keys().next() {
        return fail(format!(
            "request {id} SUCCEEDED but was never submitted here"
        ));
    }
    Ok(())
}

/// Each watcher's stream: its first position behind the `lead` requests ahead of all
/// watched ones, then falling, then one message out of QUEUED, then the end.
pub fn watchers(seen: &[Seen], lead: usize) -> Result<(), BenchError> {
    let watched = seen.len() as i64;
    for s in seen {
        let fail = |why: String| {
            Err(BenchError::Failed(format!(
                "the watcher of request {}: {why}",
                s.request_id
            )))
        };
        if !(lead as i64 + 1..=lead as i64 + watched).contains(&s.first) {
            return fail(format!(
                "its first position was {}, not behind the {lead} requests ahead",
                s.first
            ));
        }
        if s.lowest >= s.first {
            return fail(format!(
                "its position never fell (first {}, lowest {})",
                s.first, s.lowest
            ));
        }
        if let Some(why) = &s.problem {
            return fail(why.clone());
        }
        match pb::RequestState::try_from(s.last_state) {
            Ok(pb::RequestState::Running | pb::RequestState::Succeeded) => {}
            other => return fail(format!("its last message said {other:?}")),
        }
    }
    Ok(())
}
