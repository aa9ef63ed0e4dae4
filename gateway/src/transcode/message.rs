//! Building the request message from the HTTP request, the grpc-gateway way: the body (all of it,
//! or one field), then path variables, then query parameters for any other field
//! (`a.b=c`, repeated by repetition). JSON follows the proto3 mapping (prost-reflect): both
//! lowerCamelCase and original field names are accepted, unknown fields are refused.

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    Value,
};

use bytes::Bytes;

use super::routes::{BodyTarget, Route};

/// A request the transcoder refuses, with the offending field (→ 400 with a field violation).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {description}")]
pub struct BadField {
    pub field: String,
    pub description: String,
}

fn bad(field: &str, description: impl Into<String>) -> BadField {
    BadField {
        field: field.to_owned(),
        description: description.into(),
    }
}

/// The request message for `route` from the JSON `body`, path `bindings` and `query`.
pub fn request(
    route: &Route,
    bindings: &[(String, String)],
    query: Option<&str>,
    body: &Bytes,
    content_type: Option<&str>,
) -> Result<DynamicMessage, BadField> {
    let input = route.method.input();
    let parse = |descriptor: &MessageDescriptor, field: &str| {
        if route.raw_body {
            Ok(raw_body(descriptor, body, content_type))
        } else {
            parse_json(descriptor, body, field)
        }
    };
    let mut message = match &route.body {
        BodyTarget::All => parse(&input, "body")?,
        BodyTarget::Field(field) => {
            let mut message = DynamicMessage::new(input.clone());
            let descriptor = resolve(&input, field)?;
            let value = match descriptor.kind() {
                Kind::Message(inner) => Value::Message(parse(&inner, field)?),
                _ => return Err(bad(field, "only message fields can take the body")),
            };
            set_path(&mut message, field, value)?;
            message
        }
        BodyTarget::None => {
            if !body.is_empty() {
                return Err(bad("body", "this method takes no request body"));
            }
            DynamicMessage::new(input.clone())
        }
    };
    for (field, raw) in bindings {
        let descriptor = resolve(&input, field)?;
        let value = scalar(&descriptor, field, raw)?;
        set_path(&mut message, field, value)?;
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode_component(key).ok_or_else(|| bad(key, "bad percent-encoding"))?;
            let raw = decode_component(raw).ok_or_else(|| bad(&key, "bad percent-encoding"))?;
            let field = canonical_path(&input, &key)?;
            if bindings.iter().any(|(bound, _)| *bound == field) {
                return Err(bad(&field, "already bound by the path"));
            }
            if matches!(&route.body, BodyTarget::All) {
                return Err(bad(&field, "the body carries every field"));
            }
            let descriptor = resolve(&input, &field)?;
            let value = scalar(&descriptor, &field, &raw)?;
            if descriptor.is_list() {
                append_path(&mut message, &field, value)?;
            } else {
                set_path(&mut message, &field, value)?;
            }
        }
    }
    Ok(message)
}

/// A `google.api.HttpBody` holding the body byte for byte, with the request's content type.
fn raw_body(
    descriptor: &MessageDescriptor,
    body: &Bytes,
    content_type: Option<&str>,
) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    if let Some(content_type) = content_type {
        message.set_field_by_name("content_type", Value::String(content_type.to_owned()));
    }
    message.set_field_by_name("data", Value::Bytes(body.clone()));
    message
}

fn parse_json(
    descriptor: &MessageDescriptor,
    body: &[u8],
    field: &str,
) -> Result<DynamicMessage, BadField> {
    if body.is_empty() {
        return Ok(DynamicMessage::new(descriptor.clone()));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let message = DynamicMessage::deserialize_with_options(
        descriptor.clone(),
        &mut deserializer,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| bad(field, e.to_string()))?;
    deserializer.end().map_err(|e| bad(field, e.to_string()))?;
    Ok(message)
}

/// The field at a dotted path (proto names or lowerCamelCase JSON names).
fn resolve(message: &MessageDescriptor, path: &str) -> Result<FieldDescriptor, BadField> {
    let mut current = message.clone();
    let mut found = None;
    for part in path.split('.') {
        let field = current
            .get_field_by_name(part)
            .or_else(|| current.get_field_by_json_name(part))
            .ok_or_else(|| bad(path, "no such field"))?;
        if let Kind::Message(inner) = field.kind() {
            current = inner;
        }
        found = Some(field);
    }
    found.ok_or_else(|| bad(path, "no such field"))
}

/// A dotted path in proto field names.
fn canonical_path(message: &MessageDescriptor, path: &str) -> Result<String, BadField> {
    let mut current = message.clone();
    let mut names = Vec::new();
    for part in path.split('.') {
        let field = current
            .get_field_by_name(part)
            .or_else(|| current.get_field_by_json_name(part))
            .ok_or_else(|| bad(path, "no such field"))?;
        names.push(field.name().to_owned());
        if let Kind::Message(inner) = field.kind() {
            current = inner;
        }
    }
    Ok(names.join("."))
}

/// A scalar from its text form (path segment or query value).
fn scalar(field: &FieldDescriptor, path: &str, raw: &str) -> Result<Value, BadField> {
    let number = |what: &str| bad(path, format!("expected {what}"));
    Ok(match field.kind() {
        Kind::String => Value::String(raw.to_owned()),
        Kind::Bool => Value::Bool(match raw {
            "true" => true,
            "false" => false,
            _ => return Err(number("true or false")),
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(raw.parse().map_err(|_| number("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(raw.parse().map_err(|_| number("a 64-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(
            raw.parse()
                .map_err(|_| number("an unsigned 32-bit integer"))?,
        ),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(
            raw.parse()
                .map_err(|_| number("an unsigned 64-bit integer"))?,
        ),
        Kind::Float => Value::F32(raw.parse().map_err(|_| number("a number"))?),
        Kind::Double => Value::F64(raw.parse().map_err(|_| number("a number"))?),
        Kind::Enum(e) => {
            let value = e
                .get_value_by_name(raw)
                .map(|v| v.number())
                .or_else(|| {
                    raw.parse::<i32>()
                        .ok()
                        .filter(|n| e.get_value(*n).is_some())
                })
                .ok_or_else(|| bad(path, format!("unknown value of {}", e.name())))?;
            Value::EnumNumber(value)
        }
        Kind::Bytes => {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(raw.trim_end_matches('='))
                .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw))
                .map_err(|_| number("base64"))?;
            Value::Bytes(decoded.into())
        }
        Kind::Message(message) if is_text_wkt(message.full_name()) => {
            // The proto3 JSON form of these is a string (Timestamp, Duration, FieldMask, string,
            // bytes and 64-bit wrappers) or a bare number / bool (the other wrappers).
            let as_string = DynamicMessage::deserialize(
                message.clone(),
                serde_json::Value::String(raw.to_owned()),
            );
            let parsed = as_string.or_else(|first| match serde_json::from_str(raw) {
                Ok(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    DynamicMessage::deserialize(message.clone(), value)
                }
                _ => Err(first),
            });
            Value::Message(parsed.map_err(|e| bad(path, e.to_string()))?)
        }
        Kind::Message(_) => return Err(bad(path, "cannot be set from a path or query string")),
    })
}

fn parent<'m>(
    message: &'m mut DynamicMessage,
    path: &str,
) -> Result<(&'m mut DynamicMessage, String), BadField> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or_default().to_owned();
    let mut current = message;
    for part in parts {
        let field = current
            .descriptor()
            .get_field_by_name(part)
            .ok_or_else(|| bad(path, "no such field"))?;
        current = match current.get_field_mut(&field) {
            Value::Message(inner) => inner,
            _ => return Err(bad(path, "goes through a non-message")),
        };
    }
    Ok((current, last))
}

/// The message holding the last field of `path`, and that field.
fn target<'m>(
    message: &'m mut DynamicMessage,
    path: &str,
) -> Result<(&'m mut DynamicMessage, FieldDescriptor), BadField> {
    let (target, last) = parent(message, path)?;
    let field = target
        .descriptor()
        .get_field_by_name(&last)
        .ok_or_else(|| bad(path, "no such field"))?;
    Ok((target, field))
}

fn set_path(message: &mut DynamicMessage, path: &str, value: Value) -> Result<(), BadField> {
    let (target, field) = target(message, path)?;
    target
        .try_set_field(&field, value)
        .map_err(|e| bad(path, e.to_string()))
}

fn append_path(message: &mut DynamicMessage, path: &str, value: Value) -> Result<(), BadField> {
    let (target, field) = target(message, path)?;
    match target.get_field_mut(&field) {
        Value::List(items) => {
            items.push(value);
            Ok(())
        }
        _ => Err(bad(path, "is not repeated")),
    }
}

/// Well-known types whose JSON form is a single value, so a path segment or query value can
/// carry them (as grpc-gateway allows).
pub fn is_text_wkt(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
    ) || is_wrapper(name)
}

/// The wrapper types (`google.protobuf.Int32Value` …): JSON is the wrapped value itself.
pub fn is_wrapper(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// A form-encoded query component (`+` is a space).
fn decode_component(text: &str) -> Option<String> {
    let text = text.replace('+', " ");
    percent_encoding::percent_decode_str(&text)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}
