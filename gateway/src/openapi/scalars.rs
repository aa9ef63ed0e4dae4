//! JSON schemas of single values: scalars (64-bit integers as strings, floats with their
//! non-finite names, base64 bytes), enums, and the well-known types in their JSON forms, each
//! for the side it describes (what the gateway sends is stricter than what it accepts).

use prost_reflect::{EnumDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use super::SCHEMAS;
use super::schema::{Schemas, Side};

/// 64-bit integers the transcoder parses in any position; 18 digits always fit in an `i64`.
pub(super) const INT64_INPUT: &str = "^-?[0-9]{1,18}$";
/// Likewise for `u64`: 19 digits always fit.
pub(super) const UINT64_INPUT: &str = "^[0-9]{1,19}$";
pub(super) const INT64_OUTPUT: &str = "^-?[0-9]+$";
pub(super) const UINT64_OUTPUT: &str = "^[0-9]+$";
/// RFC 3339 as prost-reflect accepts it (upper-case `T`, `Z` or a `±hh:mm` offset). Years stay
/// within 1000–8999 so that no offset can push the instant out of `Timestamp`'s range.
pub(super) const TIMESTAMP_INPUT: &str = concat!(
    "^[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}",
    "T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?",
    "(Z|[+-][0-9]{2}:[0-9]{2})$",
);
/// Seconds with up to nine fractional digits, within `Duration`'s range.
pub(super) const DURATION_INPUT: &str = "^-?[0-9]{1,11}(\\.[0-9]{1,9})?s$";
pub(super) const DURATION_OUTPUT: &str = "^-?[0-9]+(\\.[0-9]+)?s$";
/// Numbers as request bodies may write them in strings (Rust's float syntax, a subset).
pub(super) const FLOAT_TEXT: &str = "^(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|-?Infinity)$";
/// Comma-separated lowerCamelCase field paths.
pub(super) const FIELD_MASK: &str =
    "^([a-z][A-Za-z0-9]*(\\.[a-z][A-Za-z0-9]*)*(,[a-z][A-Za-z0-9]*(\\.[a-z][A-Za-z0-9]*)*)*)?$";
/// Canonical padded base64, which every decoder of the transcoder accepts.
pub(super) const BASE64: &str =
    "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

impl Schemas {
    /// The schema of one value of `kind`.
    pub(super) fn kind(&mut self, kind: &Kind, side: Side) -> Value {
        match kind {
            Kind::Double => float(false, side),
            Kind::Float => float(true, side),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => int32(true, side),
            Kind::Uint32 | Kind::Fixed32 => int32(false, side),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => int64(true, side),
            Kind::Uint64 | Kind::Fixed64 => int64(false, side),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => {
                let mut schema =
                    json!({ "type": "string", "format": "byte", "contentEncoding": "base64" });
                if side != Side::Response {
                    schema["pattern"] = json!(BASE64);
                }
                schema
            }
            Kind::Enum(e) => self.enumeration(e, side, false),
            Kind::Message(message) => self.message(message, side),
        }
    }

    /// An enum: a `$ref` to its value names (`nonzero`: without the zero value, which means
    /// unset). Path and query values may also be a defined value's number. So may a JSON body's,
    /// but not written `1.0`, which JSON Schema cannot tell from `1`: bodies document names only.
    pub(super) fn enumeration(&mut self, e: &EnumDescriptor, side: Side, nonzero: bool) -> Value {
        if e.full_name() == "google.protobuf.NullValue" {
            return json!({ "type": "null" });
        }
        let name = e.full_name().to_owned();
        self.components.entry(name.clone()).or_insert_with(|| {
            let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
            json!({ "type": "string", "enum": names })
        });
        let defined = e.values().filter(|v| !nonzero || v.number() != 0);
        let (names, numbers): (Vec<String>, Vec<i32>) =
            defined.map(|v| (v.name().to_owned(), v.number())).unzip();
        let names = if nonzero {
            json!({ "type": "string", "enum": names })
        } else {
            json!({ "$ref": format!("{SCHEMAS}{name}") })
        };
        match side {
            Side::Response | Side::Body => names,
            Side::Text => json!({ "anyOf": [names, { "type": "integer", "enum": numbers }] }),
        }
    }

    /// The JSON forms of the well-known types (proto3 JSON mapping), inline.
    pub(super) fn well_known(&mut self, message: &MessageDescriptor, side: Side) -> Option<Value> {
        let request = side != Side::Response;
        Some(match message.full_name() {
            "google.protobuf.Timestamp" if request => {
                json!({ "type": "string", "format": "date-time", "pattern": TIMESTAMP_INPUT })
            }
            "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
            "google.protobuf.Duration" => json!({
                "type": "string",
                "pattern": if request { DURATION_INPUT } else { DURATION_OUTPUT },
            }),
            "google.protobuf.FieldMask" => json!({ "type": "string", "pattern": FIELD_MASK }),
            "google.protobuf.Struct" => json!({ "type": "object" }),
            "google.protobuf.ListValue" => json!({ "type": "array" }),
            "google.protobuf.Value" => json!({}),
            "google.protobuf.Empty" => json!({ "type": "object", "additionalProperties": false }),
            "google.protobuf.Any" => json!({
                "type": "object",
                "properties": { "@type": { "type": "string" } },
                "required": ["@type"],
            }),
            name if crate::transcode::is_wrapper(name) => {
                let value = message.get_field_by_name("value")?;
                nullable(self.kind(&value.kind(), side))
            }
            _ => return None,
        })
    }
}

/// `schema` with `keyword: true` (next to a `$ref` too: OpenAPI 3.1 schemas allow siblings).
pub(super) fn annotate(mut schema: Value, keyword: &str) -> Value {
    if let Some(object) = schema.as_object_mut() {
        object.insert(keyword.to_owned(), Value::Bool(true));
    }
    schema
}

/// A 32-bit integer; request bodies may give it as a decimal string too.
pub(super) fn int32(signed: bool, side: Side) -> Value {
    let (minimum, maximum) = if signed {
        (i64::from(i32::MIN), i64::from(i32::MAX))
    } else {
        (0, i64::from(u32::MAX))
    };
    let mut schema = json!({ "type": "integer", "minimum": minimum, "maximum": maximum });
    if signed {
        schema["format"] = json!("int32");
    }
    if side == Side::Body {
        schema["type"] = json!(["integer", "string"]);
        // Nine digits always fit.
        schema["pattern"] = json!(if signed {
            "^-?[0-9]{1,9}$"
        } else {
            "^[0-9]{1,9}$"
        });
    }
    schema
}

/// A 64-bit integer: a decimal string (JavaScript numbers cannot hold it); request bodies may
/// give a number too.
pub(super) fn int64(signed: bool, side: Side) -> Value {
    let format = if signed { "int64" } else { "uint64" };
    let pattern = match (side, signed) {
        (Side::Response, true) => INT64_OUTPUT,
        (Side::Response, false) => UINT64_OUTPUT,
        (_, true) => INT64_INPUT,
        (_, false) => UINT64_INPUT,
    };
    let mut schema = json!({ "type": "string", "format": format, "pattern": pattern });
    if side == Side::Body {
        schema["type"] = json!(["string", "integer"]);
        if signed {
            schema["minimum"] = json!(i64::MIN);
            schema["maximum"] = json!(i64::MAX);
        } else {
            schema["minimum"] = json!(0);
            schema["maximum"] = json!(u64::MAX);
        }
    }
    schema
}

/// `float`/`double`: a JSON number, or one of the strings proto3 JSON uses for non-finite
/// values (request bodies take any number as a string). A request `float` must fit an `f32`.
pub(super) fn float(single: bool, side: Side) -> Value {
    let mut number = json!({ "type": "number", "format": if single { "float" } else { "double" } });
    if single && side != Side::Response {
        let max = f64::from(f32::MAX);
        number["minimum"] = json!(-max);
        number["maximum"] = json!(max);
    }
    let text = if side == Side::Body {
        json!({ "type": "string", "pattern": FLOAT_TEXT })
    } else {
        json!({ "type": "string", "enum": ["NaN", "Infinity", "-Infinity"] })
    };
    json!({ "anyOf": [number, text] })
}

/// `schema` or `null`.
pub(super) fn nullable(mut schema: Value) -> Value {
    if schema.as_object().is_some_and(|o| o.is_empty()) {
        return schema;
    }
    match schema.get_mut("type") {
        Some(Value::String(kind)) => {
            let kind = std::mem::take(kind);
            schema["type"] = json!([kind, "null"]);
            return schema;
        }
        Some(Value::Array(kinds)) => {
            if !kinds.contains(&json!("null")) {
                kinds.push(json!("null"));
            }
            return schema;
        }
        _ => {}
    }
    if let Some(Value::Array(branches)) = schema.get_mut("anyOf") {
        branches.push(json!({ "type": "null" }));
        return schema;
    }
    json!({ "anyOf": [schema, { "type": "null" }] })
}
