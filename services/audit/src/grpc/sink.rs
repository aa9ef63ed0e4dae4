//! `EventSinkService`: one audit entry per delivered event, exactly once (the inbox row and the
//! entry commit together).

use std::collections::BTreeMap;

use ironmesh_outbox::Inbox;
use ironmesh_proto::ironmesh::events::v1::{
    self as events, event_sink_service_server::EventSinkService,
};
use tonic::{Request, Response, Status};

use super::answer;
use super::convert::time;
use crate::domain::{self, AuditError, NewEntry, Outcome, Violations};
use crate::service::Audit;

/// The `EventSinkService` other services' outbox relays deliver events to: one audit entry per
/// event, exactly once (the inbox row and the entry commit together).
pub struct EventSinkApi {
    audit: Audit,
    inbox: Inbox,
}

impl EventSinkApi {
    pub fn new(audit: Audit) -> Self {
        Self {
            audit,
            inbox: Inbox::new("audit"),
        }
    }
}

#[tonic::async_trait]
impl EventSinkService for EventSinkApi {
    async fn deliver(
        &self,
        request: Request<events::DeliverRequest>,
    ) -> Result<Response<events::DeliverResponse>, Status> {
        let body = request.get_ref();
        answer(&request, deliver(&self.audit, &self.inbox, &body.events)).await
    }
}

/// Deliver's work, below gRPC: events that cannot become an entry are rejected (not retryable:
/// a redelivery would be refused the same way); the rest are recorded in one transaction.
pub async fn deliver(
    audit: &Audit,
    inbox: &Inbox,
    events: &[events::Event],
) -> Result<events::DeliverResponse, AuditError> {
    if events.is_empty() || events.len() > domain::MAX_BATCH {
        return Err(AuditError::invalid(
            "events",
            format!("1–{} events", domain::MAX_BATCH),
        ));
    }
    let mut response = events::DeliverResponse::default();
    let mut recordable = Vec::with_capacity(events.len());
    for event in events {
        match event_entry(event) {
            Ok(entry) => recordable.push((event, entry)),
            Err(reason) => response.rejected.push(events::EventRejection {
                event_id: event.id.clone(),
                reason,
                retryable: false,
            }),
        }
    }
    if !recordable.is_empty() {
        let fresh = audit
            .store()
            .append_events(inbox, &recordable)
            .await
            .map_err(AuditError::from)?;
        for ((event, _), new) in recordable.iter().zip(fresh) {
            if new {
                response.accepted_ids.push(event.id.clone());
            } else {
                response.duplicate_ids.push(event.id.clone());
            }
        }
    }
    Ok(response)
}

/// The entry an event becomes: what happened is the event type, to the aggregate, by the
/// event's actor, keyed by the event id. The outcome is the type's verb (events.proto):
/// `….failed` a failure, `….denied` a refusal, anything else a success. The details are the
/// payload's top-level fields (protobuf payloads of the contracts; they never hold secrets),
/// plus the aggregate version.
pub fn event_entry(event: &events::Event) -> Result<NewEntry, String> {
    let occurred_at = event
        .occurred_at
        .as_ref()
        .and_then(time)
        .ok_or("occurred_at is required")?;
    let resource = if event.aggregate_type.is_empty() || event.aggregate_id.is_empty() {
        String::new()
    } else {
        format!("{}/{}", event.aggregate_type, event.aggregate_id)
    };
    let mut details: BTreeMap<String, String> =
        ironmesh_outbox::payload::payload_fields(event, domain::MAX_DETAILS - 1);
    // Within the entry's byte budget (with room for the version): drop the last fields over it.
    while details
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
        > domain::MAX_DETAILS_BYTES - 64
    {
        let last = details.keys().next_back().cloned().unwrap_or_default();
        details.remove(&last);
    }
    if event.aggregate_version > 0 {
        details.insert(
            "aggregate_version".to_owned(),
            event.aggregate_version.to_string(),
        );
    }
    let entry = NewEntry {
        occurred_at,
        actor: event.actor.clone(),
        action: event.r#type.clone(),
        resource,
        outcome: outcome(&event.r#type),
        source_service: event.source.clone(),
        request_id: event.request_id.clone(),
        idempotency_key: event.id.clone(),
        details,
    };
    let mut violations = Violations::default();
    domain::check_entry(&entry, "event", &mut violations);
    match violations.0.first() {
        None => Ok(entry),
        Some(v) => Err(format!("{}: {}", event_field(&v.field), v.description)),
    }
}

/// The outcome an event type's verb states.
fn outcome(event_type: &str) -> Outcome {
    match event_type.rsplit('.').next() {
        Some("failed") => Outcome::Failure,
        Some("denied") => Outcome::Denied,
        _ => Outcome::Success,
    }
}

/// The event field an entry field came from, for a rejection reason.
fn event_field(entry_field: &str) -> &'static str {
    match entry_field.trim_start_matches("event.") {
        "actor" => "actor",
        "action" => "type",
        "resource" => "aggregate_type/aggregate_id",
        "source_service" => "source",
        "idempotency_key" => "id",
        _ => "event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event becomes an entry: type → action, aggregate → resource, id → idempotency key.
    #[test]
    fn events_become_entries() {
        let event = events::Event {
            id: "0190-event".into(),
            r#type: "auth.user.deleted".into(),
            source: "auth".into(),
            aggregate_type: "user".into(),
            aggregate_id: "0190-user".into(),
            aggregate_version: 3,
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            actor: "user-9".into(),
            request_id: "req-9".into(),
            ..Default::default()
        };
        let e = event_entry(&event).unwrap();
        assert_eq!(e.action, "auth.user.deleted");
        assert_eq!(e.resource, "user/0190-user");
        assert_eq!(e.idempotency_key, "0190-event");
        assert_eq!(e.actor, "user-9");
        assert_eq!(e.request_id, "req-9");
        assert_eq!(e.outcome, Outcome::Success);
        let failed = events::Event {
            r#type: "auth.login.failed".into(),
            ..event.clone()
        };
        assert_eq!(event_entry(&failed).unwrap().outcome, Outcome::Failure);
        let mut bad = event;
        bad.r#type = "nonsense".into();
        assert!(event_entry(&bad).unwrap_err().starts_with("type"));
    }
}
