//! The JSON-schema mapping of messages (proto3 JSON, as the transcoder speaks it): one schema
//! per message and side, field behaviour (`REQUIRED`, `OUTPUT_ONLY`, `INPUT_ONLY`) and the
//! contract's field rules. Scalars and well-known types are in `scalars`.

use std::collections::HashSet;

use prost_reflect::{
    ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor, Value as Proto,
};
use serde_json::{Map, Value, json};

use super::scalars::{INT64_OUTPUT, annotate, nullable};
use super::{INPUT_SUFFIX, SCHEMAS, STATUS, field_at, reachable};
use crate::transcode::RouteTable;

/// Which side of the exchange a schema describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// What the gateway sends: canonical proto3 JSON.
    Response,
    /// A JSON request body: what prost-reflect accepts, which is more (`null` for an unset
    /// field, integers as numbers or strings).
    Body,
    /// A path segment or query value, parsed as text by the transcoder.
    Text,
}

/// `google.api.field_behavior` of one field.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Behavior {
    pub(super) required: bool,
    pub(super) output_only: bool,
    pub(super) input_only: bool,
}

/// Builds `components/schemas` while the operations refer to it.
pub(super) struct Schemas {
    pub(super) field_behavior: Option<ExtensionDescriptor>,
    /// `ironmesh.api.v1.field_rules`: what services enforce exactly on string fields.
    pub(super) field_rules: Option<ExtensionDescriptor>,
    /// `google.rpc.Status`, the body of every error.
    pub(super) status: Option<MessageDescriptor>,
    /// Messages responses carry (transitively): their request-side schemas get [`INPUT_SUFFIX`].
    pub(super) in_responses: HashSet<String>,
    pub(super) components: Map<String, Value>,
}

impl Schemas {
    pub(super) fn new(table: &RouteTable) -> Self {
        let mut in_responses = HashSet::new();
        let pool = table.iter().next().map(|r| r.method.parent_pool().clone());
        let field_behavior = pool
            .as_ref()
            .and_then(|p| p.get_extension_by_name("google.api.field_behavior"));
        let field_rules = pool
            .as_ref()
            .and_then(|p| p.get_extension_by_name("ironmesh.api.v1.field_rules"));
        // Errors are ours whatever contract the routes come from.
        let status = pool
            .as_ref()
            .and_then(|p| p.get_message_by_name(STATUS))
            .or_else(|| {
                prost_reflect::DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET)
                    .ok()?
                    .get_message_by_name(STATUS)
            });
        if let Some(status) = &status {
            reachable(status, &mut in_responses);
        }
        for route in table.iter() {
            if route.raw_response {
                continue;
            }
            match &route.response_body {
                None => reachable(&route.method.output(), &mut in_responses),
                Some(path) => {
                    if let Some(Kind::Message(message)) =
                        field_at(&route.method.output(), path).map(|f| f.kind())
                    {
                        reachable(&message, &mut in_responses);
                    }
                }
            }
        }
        Self {
            field_behavior,
            field_rules,
            status,
            in_responses,
            components: Map::new(),
        }
    }

    pub(super) fn behavior(&self, field: &FieldDescriptor) -> Behavior {
        let mut behavior = Behavior::default();
        let Some(extension) = &self.field_behavior else {
            return behavior;
        };
        let options = field.options();
        if !options.has_extension(extension) {
            return behavior;
        }
        let Kind::Enum(names) = extension.kind() else {
            return behavior;
        };
        if let Proto::List(values) = &*options.get_extension(extension) {
            for value in values {
                let name = value
                    .as_enum_number()
                    .and_then(|n| names.get_value(n))
                    .map(|v| v.name().to_owned());
                match name.as_deref() {
                    Some("REQUIRED") => behavior.required = true,
                    Some("OUTPUT_ONLY") => behavior.output_only = true,
                    Some("INPUT_ONLY") => behavior.input_only = true,
                    _ => {}
                }
            }
        }
        behavior
    }

    /// Builds the `google.rpc.Status` schema.
    pub(super) fn status(&mut self) {
        if let Some(status) = self.status.clone() {
            self.message(&status, Side::Response);
        }
    }

    /// The component name of `message`'s schema for `side`.
    pub(super) fn name(&self, message: &MessageDescriptor, side: Side) -> String {
        match side {
            Side::Body | Side::Text if self.in_responses.contains(message.full_name()) => {
                format!("{}{INPUT_SUFFIX}", message.full_name())
            }
            _ => message.full_name().to_owned(),
        }
    }

    /// A `$ref` to `message`'s schema (built on first use), or the inline JSON form of a
    /// well-known type.
    pub(super) fn message(&mut self, message: &MessageDescriptor, side: Side) -> Value {
        if let Some(schema) = self.well_known(message, side) {
            return schema;
        }
        let name = self.name(message, side);
        if !self.components.contains_key(&name) {
            // Claimed before building, so recursive messages refer to it instead of looping.
            self.components.insert(name.clone(), Value::Null);
            let schema = self.object(message, side, &[]);
            self.components.insert(name.clone(), schema);
        }
        json!({ "$ref": format!("{SCHEMAS}{name}") })
    }

    /// The object schema of `message` without the fields at `excluded` (proto-name paths
    /// relative to `message`; the path binds them).
    pub(super) fn object(
        &mut self,
        message: &MessageDescriptor,
        side: Side,
        excluded: &[Vec<&str>],
    ) -> Value {
        let request = side != Side::Response;
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            if excluded.iter().any(|path| path[..] == [field.name()]) {
                continue;
            }
            let nested: Vec<Vec<&str>> = excluded
                .iter()
                .filter(|path| path.len() > 1 && path[0] == field.name())
                .map(|path| path[1..].to_vec())
                .collect();
            let behavior = self.behavior(&field);
            let must = request && behavior.required;
            let mut schema = match field.kind() {
                Kind::Message(inner) if !nested.is_empty() && !field.is_list() => {
                    self.object(&inner, side, &nested)
                }
                _ => self.field(&field, side, must),
            };
            if must {
                required.push(Value::from(field.json_name()));
            } else if request {
                // proto3 JSON: `null` leaves a field unset.
                schema = nullable(schema);
            }
            if behavior.output_only {
                schema = annotate(schema, "readOnly");
            }
            if behavior.input_only {
                schema = annotate(schema, "writeOnly");
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        let mut object = json!({ "type": "object", "properties": properties });
        if request {
            if !required.is_empty() {
                object["required"] = Value::Array(required);
            }
            // The transcoder refuses unknown fields…
            object["additionalProperties"] = Value::Bool(false);
            // …and a second member of a oneof.
            let mut exclusive = Vec::new();
            for oneof in message.oneofs().filter(|o| !o.is_synthetic()) {
                let members: Vec<String> = oneof
                    .fields()
                    .map(|f| f.json_name().to_owned())
                    .filter(|name| object["properties"].get(name).is_some())
                    .collect();
                for (i, a) in members.iter().enumerate() {
                    for b in &members[i + 1..] {
                        exclusive.push(json!({ "not": { "required": [a, b] } }));
                    }
                }
            }
            if !exclusive.is_empty() {
                object["allOf"] = Value::Array(exclusive);
            }
        }
        object
    }

    /// The schema of one field's value. A `required` field (`REQUIRED`, on the request side)
    /// must also be non-empty: proto3 cannot tell a default value from an absent one.
    pub(super) fn field(&mut self, field: &FieldDescriptor, side: Side, required: bool) -> Value {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                return json!({ "type": "object" });
            };
            let mut schema = json!({
                "type": "object",
                "additionalProperties": self.kind(&entry.map_entry_value_field().kind(), side),
            });
            // Keys are JSON strings: integers and booleans in their text form.
            match entry.map_entry_key_field().kind() {
                Kind::String => {}
                Kind::Bool => schema["propertyNames"] = json!({ "pattern": "^(true|false)$" }),
                _ => schema["propertyNames"] = json!({ "pattern": INT64_OUTPUT }),
            }
            if required {
                schema["minProperties"] = json!(1);
            }
            if side != Side::Response {
                self.apply_map_rules(field, &mut schema);
            }
            schema
        } else if field.is_list() {
            let mut items = self.kind(&field.kind(), side);
            mark_email(field, &mut items);
            let mut schema = json!({ "type": "array" });
            if required {
                schema["minItems"] = json!(1);
            }
            if side != Side::Response {
                self.apply_rules(field, &mut items, Some(&mut schema));
            }
            schema["items"] = items;
            schema
        } else {
            match field.kind() {
                Kind::Enum(e) => self.enumeration(&e, side, required),
                kind => {
                    let mut schema = self.kind(&kind, side);
                    mark_email(field, &mut schema);
                    if required && matches!(kind, Kind::String | Kind::Bytes) {
                        schema["minLength"] = json!(1);
                    }
                    if side != Side::Response {
                        self.apply_rules(field, &mut schema, None);
                    }
                    schema
                }
            }
        }
    }

    /// A map field's `min_items` / `max_items` as `minProperties` / `maxProperties`.
    fn apply_map_rules(&self, field: &FieldDescriptor, schema: &mut Value) {
        let mut counts = json!({});
        self.apply_rules(field, &mut json!({}), Some(&mut counts));
        if let Some(n) = counts.get("minItems") {
            schema["minProperties"] = n.clone();
        }
        if let Some(n) = counts.get("maxItems") {
            schema["maxProperties"] = n.clone();
        }
    }

    /// The field's `ironmesh.api.v1.field_rules` as JSON Schema keywords: on `value` (a string
    /// schema, or the items of a repeated field) and on `list` (the array schema).
    pub(super) fn apply_rules(
        &self,
        field: &FieldDescriptor,
        value: &mut Value,
        list: Option<&mut Value>,
    ) {
        let Some(extension) = &self.field_rules else {
            return;
        };
        let options = field.options();
        if !options.has_extension(extension) {
            return;
        }
        let Proto::Message(rules) = &*options.get_extension(extension) else {
            return;
        };
        let number = |name: &str| match rules.get_field_by_name(name).as_deref() {
            Some(Proto::U32(n)) if *n > 0 => Some(*n),
            _ => None,
        };
        // A string schema may be a type list when `null` is accepted too; the keywords apply to
        // strings only either way.
        if let Some(n) = number("min_chars") {
            value["minLength"] = json!(n);
        }
        if let Some(n) = number("max_chars") {
            value["maxLength"] = json!(n);
        }
        if let Some(Proto::String(pattern)) = rules.get_field_by_name("pattern").as_deref()
            && !pattern.is_empty()
        {
            value["pattern"] = json!(pattern);
        }
        if let Some(list) = list {
            if let Some(n) = number("min_items") {
                list["minItems"] = json!(n);
            }
            if let Some(n) = number("max_items") {
                list["maxItems"] = json!(n);
            }
        }
    }
}

/// `format: email` on a string field named `email` or `…_email`: the contracts' naming is the
/// signal (the field rules cannot state a format, and a pattern could only approximate an
/// address), so generated clients and fuzzers send addresses. Names merely containing the word
/// (`email_contains`, a search filter) are not addresses and keep plain strings.
fn mark_email(field: &FieldDescriptor, schema: &mut Value) {
    let named = field.name() == "email" || field.name().ends_with("_email");
    if named && field.kind() == Kind::String {
        schema["format"] = json!("email");
    }
}
