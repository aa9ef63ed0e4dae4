//! Reading an event's payload without knowing its type at compile time: the message the content
//! type names (`application/protobuf; proto=<full name>`) is looked up in the contracts built
//! into every binary and its top-level fields rendered as text — what a generic consumer (audit)
//! records as an entry's details. Typed consumers decode the payload with `prost` instead.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use ironmesh_proto::ironmesh::events::v1::Event;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};

/// The media type prefix of protobuf payloads.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/protobuf; proto=";

/// Longest rendered value; longer ones are cut (details are context, not data).
pub const MAX_VALUE_CHARS: usize = 256;

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).ok());

/// The message type a protobuf content type names, if it is one of the contracts'.
pub fn payload_type(content_type: &str) -> Option<MessageDescriptor> {
    let name = content_type.strip_prefix(PROTOBUF_CONTENT_TYPE)?.trim();
    POOL.as_ref()?.get_message_by_name(name)
}

/// The payload's set top-level fields as `name → text`, in field order, at most `limit`:
/// scalars as themselves, enums by value name, timestamps in RFC 3339, repeated scalars joined
/// by commas; nested messages are left out. Empty when the payload is not a protobuf message of
/// the contracts or does not decode.
pub fn payload_fields(event: &Event, limit: usize) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let Some(descriptor) = payload_type(&event.content_type) else {
        return fields;
    };
    let Ok(message) = DynamicMessage::decode(descriptor, event.payload.as_slice()) else {
        return fields;
    };
    for (field, value) in message.fields() {
        if fields.len() >= limit {
            break;
        }
        let text = match (field.kind(), value) {
            (Kind::Enum(e), Value::EnumNumber(n)) => Some(enum_name(&e, *n)),
            (Kind::Enum(e), Value::List(items)) => Some(
                items
                    .iter()
                    .filter_map(Value::as_enum_number)
                    .map(|n| enum_name(&e, n))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (Kind::Message(m), Value::Message(inner))
                if m.full_name() == "google.protobuf.Timestamp" =>
            {
                timestamp(inner)
            }
            (_, Value::List(items)) => {
                let parts: Option<Vec<String>> = items.iter().map(scalar).collect();
                parts.map(|p| p.join(","))
            }
            (_, value) => scalar(value),
        };
        if let Some(text) = text {
            fields.insert(field.name().to_owned(), cut(text));
        }
    }
    fields
}

fn enum_name(descriptor: &prost_reflect::EnumDescriptor, number: i32) -> String {
    descriptor
        .get_value(number)
        .map(|v| v.name().to_owned())
        .unwrap_or_else(|| number.to_string())
}

fn scalar(value: &Value) -> Option<String> {
    Some(match value {
        Value::Bool(b) => b.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::U32(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::F32(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::EnumNumber(n) => n.to_string(),
        Value::Bytes(_) | Value::Message(_) | Value::List(_) | Value::Map(_) => return None,
    })
}

fn timestamp(message: &DynamicMessage) -> Option<String> {
    let ts: prost_types::Timestamp = message.transcode_to().ok()?;
    let at = chrono::DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)?;
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn cut(text: String) -> String {
    if text.chars().count() <= MAX_VALUE_CHARS {
        text
    } else {
        text.chars().take(MAX_VALUE_CHARS).collect()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn protobuf_payloads_become_text_fields() {
        let payload = ironmesh_proto::ironmesh::events::v1::EventRejection {
            event_id: "e1".into(),
            reason: "x".repeat(300),
            retryable: true,
        };
        let event = Event {
            content_type: format!("{PROTOBUF_CONTENT_TYPE}ironmesh.events.v1.EventRejection"),
            payload: payload.encode_to_vec(),
            ..Event::default()
        };
        let fields = payload_fields(&event, 32);
        assert_eq!(fields["event_id"], "e1");
        assert_eq!(fields["retryable"], "true");
        assert_eq!(fields["reason"].len(), MAX_VALUE_CHARS);
        assert_eq!(payload_fields(&event, 1).len(), 1);

        let json = Event {
            content_type: "application/json".into(),
            payload: b"{}".to_vec(),
            ..Event::default()
        };
        assert!(payload_fields(&json, 32).is_empty());
        let unknown = Event {
            content_type: format!("{PROTOBUF_CONTENT_TYPE}no.such.Message"),
            ..event
        };
        assert!(payload_fields(&unknown, 32).is_empty());
    }
}
