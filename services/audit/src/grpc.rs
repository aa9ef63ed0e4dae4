//! The tonic adapters: `AuditService` and the `EventSinkService` other services deliver events
//! to. Each handler converts proto to domain with the plain functions below, calls [`Audit`],
//! and converts back; every error goes through [`status`], the one mapping to gRPC status.
//! GetCheckpoint and Export answer `UNIMPLEMENTED` naming what is missing — never a fake success.

use std::collections::BTreeMap;
use std::time::Duration;

use ironmesh_interceptors::context::{Deadline, RequestId};
use ironmesh_outbox::Inbox;
use ironmesh_proto::ironmesh::audit::v1::{self as pb, audit_service_server::AuditService};
use ironmesh_proto::ironmesh::events::v1::{
    self as events, event_sink_service_server::EventSinkService,
};
use ironmesh_runtime::status::not_yet;
use tokio_stream::Empty;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::{
    self, ActionFilter, AuditError, Entry, Filter, NewEntry, Outcome, Verification, Violations,
};
use crate::service::Audit;

/// VerifyChain's budget when the caller sent no deadline.
const DEFAULT_VERIFY_BUDGET: Duration = Duration::from_secs(10);
/// What VerifyChain leaves of the caller's budget to answer in.
const VERIFY_MARGIN: Duration = Duration::from_millis(200);

/// The one mapping from [`AuditError`] to gRPC status. Internal errors are logged with the
/// request id and never shown to the caller.
pub fn status(err: AuditError, request_id: Option<&RequestId>) -> Status {
    match err {
        AuditError::Invalid(violations) => {
            let mut details = ErrorDetails::new();
            for v in &violations {
                details.add_bad_request_violation(&v.field, &v.description);
            }
            Status::with_error_details(tonic::Code::InvalidArgument, "invalid request", details)
        }
        AuditError::NotFound => Status::not_found("no audit entry at that sequence"),
        AuditError::Internal(fault) => {
            let id = request_id.map(|id| id.0.to_string()).unwrap_or_default();
            tracing::error!(request_id = %id, error = %error_chain(fault.as_ref()), "internal error");
            ironmesh_interceptors::grpc::internal_error(&id)
        }
    }
}

/// `err: source: source…` on one line, for the log.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// Runs `f` and maps its error with the request's id.
async fn answer<T, R, F>(request: &Request<R>, f: F) -> Result<Response<T>, Status>
where
    F: std::future::Future<Output = Result<T, AuditError>>,
{
    let request_id = request.extensions().get::<RequestId>().cloned();
    f.await
        .map(Response::new)
        .map_err(|err| status(err, request_id.as_ref()))
}

/// The `AuditService` implementation.
pub struct AuditApi {
    audit: Audit,
}

impl AuditApi {
    pub fn new(audit: Audit) -> Self {
        Self { audit }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let entries = new_entries(&body.entries)?;
            let stored = self.audit.append(entries).await?;
            Ok(pb::AppendResponse {
                entries: stored.into_iter().map(entry).collect(),
            })
        })
        .await
    }

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::QueryResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let filter = filter(body)?;
            let page = self
                .audit
                .query(&filter, body.page_size, &body.page_token)
                .await?;
            Ok(pb::QueryResponse {
                entries: page.entries.into_iter().map(entry).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::GetEntryResponse>, Status> {
        let sequence = request.get_ref().sequence;
        answer(&request, async {
            let found = self.audit.entry(sequence).await?;
            Ok(pb::GetEntryResponse {
                entry: Some(entry(found)),
            })
        })
        .await
    }

    async fn verify_chain(
        &self,
        request: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainResponse>, Status> {
        let body = request.get_ref();
        // Stop early enough to answer within the caller's deadline; the response says how far
        // verification got, so the caller continues from there.
        let now = tokio::time::Instant::now();
        let deadline = request
            .extensions()
            .get::<Deadline>()
            .map_or(now + DEFAULT_VERIFY_BUDGET, |d| d.0);
        let budget = deadline.saturating_duration_since(now);
        let deadline = now + budget.saturating_sub(VERIFY_MARGIN.min(budget / 5));
        answer(&request, async {
            let found = self
                .audit
                .verify(body.start_sequence, body.end_sequence, deadline)
                .await?;
            Ok(verification(found))
        })
        .await
    }

    async fn get_checkpoint(
        &self,
        _request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointResponse>, Status> {
        Err(not_yet(
            "signed checkpoints (an Ed25519 audit signing key sealed with ironmesh-sealing, \
             its public key published, and the periodic signer)",
        ))
    }

    type ExportStream = Empty<Result<pb::ExportResponse, Status>>;

    async fn export(
        &self,
        _request: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        Err(not_yet(
            "Export (the server stream of entry batches and the gateway's NDJSON framing)",
        ))
    }
}

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
/// event's actor, successfully (an event is a fact already committed), keyed by the event id.
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
    let mut details = BTreeMap::new();
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
        outcome: Outcome::Success,
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

// ─── proto ⇄ domain ─────────────────────────────────────────────────────────────────────────

fn new_entries(entries: &[pb::AuditEntry]) -> Result<Vec<NewEntry>, AuditError> {
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

fn filter(request: &pb::QueryRequest) -> Result<Filter, AuditError> {
    let mut violations = Violations::default();
    // A bound outside what the store's nanosecond times hold (1677–2262) excludes nothing on
    // that side, or everything: clamp it rather than refuse a valid Timestamp.
    let bound = |ts: Option<&prost_types::Timestamp>| {
        ts.map(|ts| match time(ts).and_then(domain::to_nanos) {
            Some(ns) => ns,
            None if ts.seconds < 0 => i64::MIN,
            None => i64::MAX,
        })
    };
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

fn time(ts: &prost_types::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    let at = chrono::DateTime::from_timestamp(ts.seconds, nanos)?;
    domain::to_nanos(at).map(|_| at)
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

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

fn verification(v: Verification) -> pb::VerifyChainResponse {
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
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

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

    /// An internal fault reaches the caller as INTERNAL with the request id only.
    #[test]
    fn internal_faults_show_only_the_request_id() {
        let source = std::io::Error::other("connect to db-primary.internal:5432 refused");
        let id = RequestId("0190-req".into());
        let status = status(AuditError::Internal(Box::new(source)), Some(&id));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("db-primary"));
        assert!(status.message().contains("0190-req"));
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
        let mut bad = event;
        bad.r#type = "nonsense".into();
        assert!(event_entry(&bad).unwrap_err().starts_with("type"));
    }
}
