//! The parts of an operation: path and query parameters as the transcoder binds them, the
//! request body, and the responses (success, streaming, raw, and the error statuses).

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::components::{common_headers, error_statuses};
use super::scalars::nullable;
use super::schema::{Schemas, Side};
use super::{SCHEMAS, STATUS, field_at};
use crate::transcode::{BodyTarget, HTTP_BODY, Route};

impl Schemas {
    /// The path parameters of `route`.
    pub(super) fn path_parameters(&mut self, route: &Route, names: &[String]) -> Vec<Value> {
        let input = route.method.input();
        let (_, parameters) = route.template.openapi();
        parameters
            .iter()
            .zip(names)
            .map(|(parameter, name)| {
                let field = parameter.field.as_deref().and_then(|f| field_at(&input, f));
                let mut schema = match &field {
                    Some(field) => self.kind(&field.kind(), Side::Text),
                    None => json!({ "type": "string" }),
                };
                let mut description = match &parameter.field {
                    Some(field) => format!("Binds `{field}`."),
                    None => "Any one segment; binds no field.".to_owned(),
                };
                if schema.get("type") == Some(&json!("string")) {
                    // An empty segment matches no route.
                    schema["minLength"] = json!(1);
                    if let Some(pattern) = &parameter.pattern {
                        schema["pattern"] = json!(pattern);
                        description.push_str(
                            " The value may span several segments: its slashes are sent as they \
                             are, not percent-encoded.",
                        );
                    }
                }
                json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "description": description,
                    "schema": schema,
                })
            })
            .collect()
    }

    /// Query parameters: every field the path and body leave unbound, nested message fields as
    /// dotted paths, down to scalars and single-value well-known types (Timestamp, Duration,
    /// FieldMask, wrappers). Repeated and map fields of messages, and other well-known types,
    /// cannot be given in a query string.
    pub(super) fn query_parameters(&mut self, route: &Route) -> Vec<Value> {
        let body = match &route.body {
            BodyTarget::All => return Vec::new(),
            BodyTarget::Field(field) => Some(field.as_str()),
            BodyTarget::None => None,
        };
        let bound: Vec<&str> = route.template.fields().collect();
        let mut parameters = Vec::new();
        let mut visiting = vec![route.method.input().full_name().to_owned()];
        self.query_fields(
            &route.method.input(),
            "",
            "",
            &|path| bound.contains(&path) || body.is_some_and(|b| path == b),
            &mut visiting,
            &mut parameters,
        );
        parameters
    }

    pub(super) fn query_fields(
        &mut self,
        message: &MessageDescriptor,
        proto_prefix: &str,
        json_prefix: &str,
        skip: &dyn Fn(&str) -> bool,
        visiting: &mut Vec<String>,
        out: &mut Vec<Value>,
    ) {
        for field in message.fields() {
            let proto_path = format!("{proto_prefix}{}", field.name());
            let json_path = format!("{json_prefix}{}", field.json_name());
            if skip(&proto_path) || field.is_map() {
                continue;
            }
            if let Kind::Message(inner) = field.kind()
                && crate::transcode::is_text_wkt(inner.full_name())
            {
                // A single JSON value (date-time, duration, mask, wrapped scalar) as text.
                let behavior = self.behavior(&field);
                if behavior.output_only {
                    continue;
                }
                let single = match inner.get_field_by_name("value") {
                    Some(value) if crate::transcode::is_wrapper(inner.full_name()) => {
                        self.kind(&value.kind(), Side::Text)
                    }
                    _ => self
                        .well_known(&inner, Side::Text)
                        .unwrap_or_else(|| json!({ "type": "string" })),
                };
                let schema = if field.is_list() {
                    json!({ "type": "array", "items": single })
                } else {
                    single
                };
                out.push(query_parameter(
                    &json_path,
                    schema,
                    behavior.required,
                    field.is_list(),
                ));
                continue;
            }
            if let Kind::Message(inner) = field.kind() {
                let expandable = !field.is_list()
                    && !inner.full_name().starts_with("google.protobuf.")
                    && inner.full_name() != HTTP_BODY
                    && !visiting.iter().any(|m| m == inner.full_name());
                if expandable {
                    visiting.push(inner.full_name().to_owned());
                    self.query_fields(
                        &inner,
                        &format!("{proto_path}."),
                        &format!("{json_path}."),
                        skip,
                        visiting,
                        out,
                    );
                    visiting.pop();
                }
                continue;
            }
            let behavior = self.behavior(&field);
            if behavior.output_only {
                continue;
            }
            let schema = self.field(&field, Side::Text, behavior.required);
            out.push(query_parameter(
                &json_path,
                schema,
                behavior.required,
                field.is_list(),
            ));
        }
    }

    /// The request body of `route`, if it takes one.
    pub(super) fn request_body(&mut self, route: &Route) -> Option<Value> {
        if route.raw_body {
            return Some(json!({
                "required": true,
                "description": "The raw body, of any media type, passed on byte for byte.",
                "content": { "*/*": {} },
            }));
        }
        let input = route.method.input();
        let partial = is_partial_update(&input);
        let bound: Vec<Vec<&str>> = route
            .template
            .fields()
            .map(|f| f.split('.').collect())
            .collect();
        let (message, excluded): (MessageDescriptor, Vec<Vec<&str>>) = match &route.body {
            BodyTarget::None => return None,
            BodyTarget::All => (input, bound),
            BodyTarget::Field(path) => {
                let Kind::Message(message) = field_at(&input, path)?.kind() else {
                    return None;
                };
                let prefix: Vec<&str> = path.split('.').collect();
                let excluded = bound
                    .into_iter()
                    .filter(|b| b.len() > prefix.len() && b[..prefix.len()] == prefix[..])
                    .map(|b| b[prefix.len()..].to_vec())
                    .collect();
                (message, excluded)
            }
        };
        let required = message.fields().any(|field| {
            self.behavior(&field).required
                && !excluded.iter().any(|path| path[..] == [field.name()])
        });
        let schema = if excluded.is_empty() {
            self.message(&message, Side::Body)
        } else {
            let mut schema = self.object(&message, Side::Body, &excluded);
            // A partial update (AIP-134: the resource beside an `update_mask`) changes only the
            // fields it names, so the resource's REQUIRED fields are neither required in it nor
            // refused as `null` (unset).
            if partial && let Some(object) = schema.as_object_mut() {
                let required = object.remove("required");
                let names = required
                    .as_ref()
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if let Some(properties) =
                    object.get_mut("properties").and_then(Value::as_object_mut)
                {
                    for name in names.iter().filter_map(Value::as_str) {
                        if let Some(property) = properties.remove(name) {
                            properties.insert(name.to_owned(), nullable(property));
                        }
                    }
                }
            }
            schema
        };
        Some(json!({
            "required": required,
            "content": { "application/json": { "schema": schema } },
        }))
    }

    /// The success response and the error responses of `route`.
    pub(super) fn responses(&mut self, route: &Route) -> Value {
        let status = route.success;
        let mut success = json!({
            "description": status.canonical_reason().unwrap_or("Success"),
            "headers": common_headers(),
        });
        if status == http::StatusCode::NO_CONTENT {
            // No content.
        } else if route.raw_response {
            success["content"] = json!({ "*/*": {} });
        } else if route.streaming {
            let line = json!({
                "type": "object",
                "properties": {
                    "result": self.reply(route),
                    "error": { "$ref": format!("{SCHEMAS}{STATUS}") },
                },
                "minProperties": 1,
                "maxProperties": 1,
            });
            success["description"] = json!(
                "A stream of replies: newline-delimited JSON, one `{\"result\": …}` object per \
                 message and, if the stream fails, a last `{\"error\": …}` line; or server-sent \
                 events carrying the same objects when the request accepts `text/event-stream`. \
                 The schema describes one line."
            );
            success["content"] = json!({
                "application/x-ndjson": { "schema": line },
                "text/event-stream": { "schema": { "type": "string" } },
            });
        } else {
            success["content"] = json!({ "application/json": { "schema": self.reply(route) } });
        }
        let mut responses = Map::new();
        responses.insert(status.as_u16().to_string(), success);
        let takes_body = !matches!(route.body, BodyTarget::None);
        for error in error_statuses() {
            if error.body_only && !takes_body {
                continue;
            }
            responses.insert(
                error.status.as_u16().to_string(),
                json!({ "$ref": format!("#/components/responses/{}", error.name) }),
            );
        }
        responses.insert(
            "default".to_owned(),
            json!({ "$ref": "#/components/responses/Error" }),
        );
        Value::Object(responses)
    }

    /// The schema of a successful reply: the output message, or its `response_body` field.
    pub(super) fn reply(&mut self, route: &Route) -> Value {
        let output = route.method.output();
        match &route.response_body {
            None => self.message(&output, Side::Response),
            Some(path) => match field_at(&output, path) {
                Some(field) => self.field(&field, Side::Response, false),
                None => json!({}),
            },
        }
    }
}

/// A query parameter; repeated fields repeat the name (`a=1&a=2`).
pub(super) fn query_parameter(name: &str, schema: Value, required: bool, repeated: bool) -> Value {
    let mut parameter = json!({ "name": name, "in": "query", "schema": schema });
    if required {
        parameter["required"] = json!(true);
    }
    if repeated {
        parameter["style"] = json!("form");
        parameter["explode"] = json!(true);
    }
    parameter
}

/// Whether `input` is a partial update: it has an `update_mask` of `google.protobuf.FieldMask`.
fn is_partial_update(input: &MessageDescriptor) -> bool {
    input.get_field_by_name("update_mask").is_some_and(|field| {
        matches!(field.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
    })
}
