//! What a service hands to [`crate::Outbox::write`], and the envelope the relay sends.

use chrono::{DateTime, SubsecRound, Utc};
use ironmesh_interceptors::context::CallContext;
use ironmesh_proto::ironmesh::events::v1::Event;

/// Largest payload an event may carry (the contract's 256 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// The correlation of the call that produced an event: request id and W3C trace context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventTrace {
    pub request_id: String,
    pub traceparent: String,
    pub tracestate: String,
}

impl EventTrace {
    /// From the call this task is serving ([`CallContext::current`]); empty outside a call.
    pub fn current() -> Self {
        CallContext::current()
            .map(|ctx| Self::from_context(&ctx))
            .unwrap_or_default()
    }

    pub fn from_context(ctx: &CallContext) -> Self {
        Self {
            request_id: ctx
                .request_id
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default(),
            traceparent: ctx.trace.map(|t| t.to_header()).unwrap_or_default(),
            tracestate: ctx
                .tracestate
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// An event to record. [`crate::Outbox::write`] fills id, source, occurred_at and
/// aggregate_version.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// `<service>.<aggregate>.<past-tense verb>`, e.g. `orders.order.created`.
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Principal that caused the change (a user id, or `service:<name>`).
    pub actor: String,
    /// `application/protobuf; proto=<full message name>` or `application/json`.
    pub content_type: String,
    /// At most [`MAX_PAYLOAD_BYTES`]; never secrets.
    pub payload: Vec<u8>,
    pub trace: EventTrace,
}

impl NewEvent {
    /// An event with a protobuf payload; the trace comes from the current call context.
    pub fn protobuf<M: prost::Name>(
        event_type: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        actor: &str,
        message: &M,
    ) -> Self {
        Self::new(
            event_type,
            aggregate_type,
            aggregate_id,
            actor,
            &format!(
                "{}{}",
                crate::payload::PROTOBUF_CONTENT_TYPE,
                M::full_name()
            ),
            message.encode_to_vec(),
        )
    }

    /// An event with any payload; the trace comes from the current call context.
    pub fn new(
        event_type: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        actor: &str,
        content_type: &str,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            event_type: event_type.to_owned(),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            actor: actor.to_owned(),
            content_type: content_type.to_owned(),
            payload,
            trace: EventTrace::current(),
        }
    }

    /// Replaces the trace taken from the current call context.
    pub fn with_trace(mut self, trace: EventTrace) -> Self {
        self.trace = trace;
        self
    }
}

/// Which event types a subscriber wants: `*` (all), `auth.*` (a prefix up to a dot), or an exact
/// type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypePattern(String);

impl TypePattern {
    pub fn new(pattern: &str) -> Self {
        Self(pattern.trim().to_owned())
    }

    pub fn matches(&self, event_type: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => self.0 == event_type,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Now, at the microsecond precision both backends store, so a value read back equals the value
/// written.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) use ironmesh_runtime::time::timestamp;

/// The columns of one `outbox_events` row, in the order the store selects them.
pub(crate) type EventRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    DateTime<Utc>,
    String,
    String,
    Vec<u8>,
    String,
    String,
    String,
);

/// The `SELECT` list matching [`EventRow`] (table alias `e`).
pub(crate) const EVENT_COLUMNS: &str = "e.seq, e.id, e.event_type, e.source, e.aggregate_type, e.aggregate_id, \
     e.aggregate_version, e.occurred_at, e.actor, e.content_type, e.payload, e.traceparent, \
     e.tracestate, e.request_id";

pub(crate) fn from_row(row: EventRow) -> (i64, Event) {
    let event = Event {
        id: row.1,
        r#type: row.2,
        source: row.3,
        aggregate_type: row.4,
        aggregate_id: row.5,
        aggregate_version: row.6,
        occurred_at: Some(timestamp(row.7)),
        actor: row.8,
        content_type: row.9,
        payload: row.10,
        traceparent: row.11,
        tracestate: row.12,
        request_id: row.13,
    };
    (row.0, event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exact_prefix_and_all() {
        assert!(TypePattern::new("*").matches("auth.user.deleted"));
        assert!(TypePattern::new("auth.*").matches("auth.user.deleted"));
        assert!(!TypePattern::new("auth.*").matches("authz.user.deleted"));
        assert!(TypePattern::new("auth.user.deleted").matches("auth.user.deleted"));
        assert!(!TypePattern::new("auth.user.deleted").matches("auth.user.deleted2"));
    }
}
