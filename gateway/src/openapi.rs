//! The OpenAPI 3.1 document of the REST surface, built at start from the route table — the same
//! descriptors the transcoder runs on, so the document cannot drift from what is served.
//!
//! - One operation per binding (`Service_Method`, then `_1`, `_2`… for additional bindings), with
//!   its path and query parameters and its body, as the transcoder binds them (query parameters
//!   are named by their lowerCamelCase JSON paths, `a.b`; the transcoder takes proto names too).
//! - Schemas follow the proto3 JSON mapping the transcoder speaks (prost-reflect): lowerCamelCase
//!   property names, 64-bit integers as decimal strings, enums by name, well-known types in their
//!   JSON forms (inline). Output-only and input-only fields are `readOnly` / `writeOnly`.
//! - A message is described twice when requests and responses both carry it: `<full name>` is
//!   what the gateway sends (proto3 JSON leaves out fields at their defaults, so nothing is
//!   `required`), `<full name>-Input` what it accepts — `google.api.field_behavior` `REQUIRED`
//!   fields required and non-empty, unknown properties refused (the transcoder answers 400),
//!   at most one member of each oneof. Messages only requests carry keep the plain name.
//! - Every operation lists the `google.rpc.Status` error responses (`default` plus the statuses
//!   the gateway maps gRPC codes to) and the bearer schemes: access tokens (JWT) and API keys
//!   (`Authorization: Bearer imk_…`).
//! - Which methods need no credentials is declared by each service's access table, not by the
//!   descriptors: [`document`] lets every operation also be called without credentials (`{}`
//!   among its security alternatives); [`document_with`] takes the answer per method.

use std::collections::{HashMap, HashSet};

use prost_reflect::{
    EnumDescriptor, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor, Value as Proto,
};
use serde_json::{Map, Value, json};

use crate::transcode::{BodyTarget, HTTP_BODY, Route, RouteTable};

/// Where `$ref`s to schemas point.
const SCHEMAS: &str = "#/components/schemas/";
/// The message every error body is.
const STATUS: &str = "google.rpc.Status";
/// The suffix of a message's request-side schema when responses carry the message too.
const INPUT_SUFFIX: &str = "-Input";

/// 64-bit integers the transcoder parses in any position; 18 digits always fit in an `i64`.
const INT64_INPUT: &str = "^-?[0-9]{1,18}$";
/// Likewise for `u64`: 19 digits always fit.
const UINT64_INPUT: &str = "^[0-9]{1,19}$";
const INT64_OUTPUT: &str = "^-?[0-9]+$";
const UINT64_OUTPUT: &str = "^[0-9]+$";
/// RFC 3339 as prost-reflect accepts it (upper-case `T`, `Z` or a `±hh:mm` offset). Years stay
/// within 1000–8999 so that no offset can push the instant out of `Timestamp`'s range.
const TIMESTAMP_INPUT: &str = concat!(
    "^[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}",
    "T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?",
    "(Z|[+-][0-9]{2}:[0-9]{2})$",
);
/// Seconds with up to nine fractional digits, within `Duration`'s range.
const DURATION_INPUT: &str = "^-?[0-9]{1,11}(\\.[0-9]{1,9})?s$";
const DURATION_OUTPUT: &str = "^-?[0-9]+(\\.[0-9]+)?s$";
/// Numbers as request bodies may write them in strings (Rust's float syntax, a subset).
const FLOAT_TEXT: &str = "^(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|-?Infinity)$";
/// Comma-separated lowerCamelCase field paths.
const FIELD_MASK: &str =
    "^([a-z][A-Za-z0-9]*(\\.[a-z][A-Za-z0-9]*)*(,[a-z][A-Za-z0-9]*(\\.[a-z][A-Za-z0-9]*)*)*)?$";
/// Canonical padded base64, which every decoder of the transcoder accepts.
const BASE64: &str =
    "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// The error responses of every operation: status, component name, description.
const ERRORS: [(&str, &str, &str); 12] = [
    (
        "400",
        "BadRequest",
        "INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE; a request the transcoder \
         cannot bind (details carry a `google.rpc.BadRequest` field violation).",
    ),
    (
        "401",
        "Unauthorized",
        "UNAUTHENTICATED: missing or invalid credentials.",
    ),
    (
        "403",
        "Forbidden",
        "PERMISSION_DENIED: the caller may not call this method.",
    ),
    (
        "404",
        "NotFound",
        "NOT_FOUND, or no REST route for this method and path.",
    ),
    ("409", "Conflict", "ALREADY_EXISTS or ABORTED."),
    (
        "413",
        "PayloadTooLarge",
        "The request body is larger than the gateway accepts.",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The request body is not of a media type this operation takes.",
    ),
    (
        "429",
        "TooManyRequests",
        "RESOURCE_EXHAUSTED, or the gateway's rate limit (then with `Retry-After` and \
         `RateLimit-*`).",
    ),
    (
        "500",
        "InternalError",
        "INTERNAL, UNKNOWN or DATA_LOSS; the message carries only the request id.",
    ),
    (
        "501",
        "NotImplemented",
        "UNIMPLEMENTED: the method is not built yet.",
    ),
    (
        "503",
        "Unavailable",
        "UNAVAILABLE: the service cannot be reached; retry with backoff.",
    ),
    (
        "504",
        "GatewayTimeout",
        "DEADLINE_EXCEEDED: the deadline passed before the service answered.",
    ),
];

/// The OpenAPI 3.1 document for every REST route, each operation also callable without
/// credentials (`{}` among its security alternatives): the descriptors do not say which methods
/// are public. Prefer [`document_with`] when the access tables are at hand.
pub fn document(table: &RouteTable) -> Value {
    document_with(table, |_| true)
}

/// The OpenAPI 3.1 document for every REST route; `public("/pkg.Service/Method")` says whether
/// a method can be called without credentials.
pub fn document_with(table: &RouteTable, public: impl Fn(&str) -> bool) -> Value {
    let mut schemas = Schemas::new(table);
    // Every error response refers to it, whatever the routes.
    schemas.status();
    let mut paths = Map::new();
    let mut operation_ids = HashSet::new();
    let mut tags = Map::new();
    let mut shapes = HashMap::new();
    for route in table.iter() {
        let service = route.method.parent_service();
        tags.entry(service.name()).or_insert_with(
            || json!({ "name": service.name(), "description": service.full_name() }),
        );
        let (path, names) = openapi_path(route, &mut shapes);
        let mut operation_id = format!("{}_{}", service.name(), route.method.name());
        let mut n = 0;
        while operation_ids.contains(&operation_id) {
            n += 1;
            operation_id = format!("{}_{}_{n}", service.name(), route.method.name());
        }
        let grpc_path = format!("/{}/{}", service.full_name(), route.method.name());
        let mut operation = json!({
            "operationId": operation_id,
            "tags": [service.name()],
            "description": format!("Transcoded to the gRPC method `{grpc_path}`."),
            "responses": schemas.responses(route),
            "security": security(public(&grpc_path)),
        });
        let mut all = schemas.path_parameters(route, &names);
        all.extend(schemas.query_parameters(route));
        if !all.is_empty() {
            operation["parameters"] = Value::Array(all);
        }
        if let Some(body) = schemas.request_body(route) {
            operation["requestBody"] = body;
        }
        let item = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        let method = route.http_method.as_str().to_ascii_lowercase();
        if item.get(&method).is_some() {
            // Templates that differ only in a variable's pattern (`{name=a/*}`, `{name=b/*}`)
            // are one OpenAPI path: only the first can be described.
            tracing::warn!(
                route = route.template.text(),
                "OpenAPI cannot tell this route from an earlier one; it is left out"
            );
            continue;
        }
        operation_ids.insert(operation_id);
        item[method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Ironmesh API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST surface of the Ironmesh gateway, transcoded to the services' \
                gRPC methods (proto3 JSON mapping). Errors are `google.rpc.Status` objects.",
        },
        "servers": [{ "url": "/" }],
        "tags": tags.into_iter().map(|(_, tag)| tag).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "responses": error_responses(),
            "headers": headers(),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from `POST /v1/auth/login` or \
                        `/v1/auth/refresh`.",
                },
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "imk_<prefix>_<secret>",
                    "description": "An API key from `POST /v1/auth/api-keys`, sent as \
                        `Authorization: Bearer imk_…`.",
                },
            },
        },
    })
}

/// The OpenAPI path of `route` and its parameter names, in order.
///
/// OpenAPI takes templates that differ only in their variables' names for one path, so every
/// route of one shape (`/v1/products/{}`) uses the names of the first: GET binding
/// `{product_id}` and PATCH binding `{product.product_id}` share `/v1/products/{product_id}`.
/// Names are the bound fields' last components: dots would read as attribute access to
/// tools that fill templates with Python's `str.format`.
fn openapi_path(route: &Route, shapes: &mut HashMap<String, Vec<String>>) -> (String, Vec<String>) {
    let (path, parameters) = route.template.openapi();
    // The literal parts around the variables (which contain no braces).
    let literals: Vec<&str> = path
        .split('{')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split_once('}').map_or(part, |(_, rest)| rest)
            }
        })
        .collect();
    let names = shapes.entry(literals.join("{}")).or_insert_with(|| {
        let mut names: Vec<String> = Vec::new();
        for parameter in &parameters {
            let base = parameter.name.rsplit('.').next().unwrap_or(&parameter.name);
            let mut name = base.to_owned();
            let mut n = 1;
            while names.contains(&name) {
                n += 1;
                name = format!("{base}{n}");
            }
            names.push(name);
        }
        names
    });
    let mut rendered = String::new();
    for (i, literal) in literals.iter().enumerate() {
        if i > 0 {
            rendered.push_str(&format!("{{{}}}", names[i - 1]));
        }
        rendered.push_str(literal);
    }
    (rendered, names.clone())
}

/// The security alternatives of an operation.
fn security(public: bool) -> Value {
    let mut alternatives = vec![json!({ "bearerAuth": [] }), json!({ "apiKey": [] })];
    if public {
        alternatives.push(json!({}));
    }
    Value::Array(alternatives)
}

/// Which side of the exchange a schema describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
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
struct Behavior {
    required: bool,
    output_only: bool,
    input_only: bool,
}

/// Builds `components/schemas` while the operations refer to it.
struct Schemas {
    field_behavior: Option<ExtensionDescriptor>,
    /// `ironmesh.api.v1.field_rules`: what services enforce exactly on string fields.
    field_rules: Option<ExtensionDescriptor>,
    /// `google.rpc.Status`, the body of every error.
    status: Option<MessageDescriptor>,
    /// Messages responses carry (transitively): their request-side schemas get [`INPUT_SUFFIX`].
    in_responses: HashSet<String>,
    components: Map<String, Value>,
}

impl Schemas {
    fn new(table: &RouteTable) -> Self {
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

    fn behavior(&self, field: &FieldDescriptor) -> Behavior {
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
    fn status(&mut self) {
        if let Some(status) = self.status.clone() {
            self.message(&status, Side::Response);
        }
    }

    /// The component name of `message`'s schema for `side`.
    fn name(&self, message: &MessageDescriptor, side: Side) -> String {
        match side {
            Side::Body | Side::Text if self.in_responses.contains(message.full_name()) => {
                format!("{}{INPUT_SUFFIX}", message.full_name())
            }
            _ => message.full_name().to_owned(),
        }
    }

    /// A `$ref` to `message`'s schema (built on first use), or the inline JSON form of a
    /// well-known type.
    fn message(&mut self, message: &MessageDescriptor, side: Side) -> Value {
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
    fn object(&mut self, message: &MessageDescriptor, side: Side, excluded: &[Vec<&str>]) -> Value {
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
    fn field(&mut self, field: &FieldDescriptor, side: Side, required: bool) -> Value {
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
            schema
        } else if field.is_list() {
            let mut items = self.kind(&field.kind(), side);
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

    /// The field's `ironmesh.api.v1.field_rules` as JSON Schema keywords: on `value` (a string
    /// schema, or the items of a repeated field) and on `list` (the array schema).
    fn apply_rules(&self, field: &FieldDescriptor, value: &mut Value, list: Option<&mut Value>) {
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

    /// The schema of one value of `kind`.
    fn kind(&mut self, kind: &Kind, side: Side) -> Value {
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
    fn enumeration(&mut self, e: &EnumDescriptor, side: Side, nonzero: bool) -> Value {
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
    fn well_known(&mut self, message: &MessageDescriptor, side: Side) -> Option<Value> {
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

    /// The path parameters of `route`.
    fn path_parameters(&mut self, route: &Route, names: &[String]) -> Vec<Value> {
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
    fn query_parameters(&mut self, route: &Route) -> Vec<Value> {
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

    fn query_fields(
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
    fn request_body(&mut self, route: &Route) -> Option<Value> {
        if route.raw_body {
            return Some(json!({
                "required": true,
                "description": "The raw body, of any media type, passed on byte for byte.",
                "content": { "*/*": {} },
            }));
        }
        let input = route.method.input();
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
            self.object(&message, Side::Body, &excluded)
        };
        Some(json!({
            "required": required,
            "content": { "application/json": { "schema": schema } },
        }))
    }

    /// The success response and the error responses of `route`.
    fn responses(&mut self, route: &Route) -> Value {
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
        for (code, name, _) in ERRORS {
            if matches!(code, "413" | "415") && !takes_body {
                continue;
            }
            responses.insert(
                code.to_owned(),
                json!({ "$ref": format!("#/components/responses/{name}") }),
            );
        }
        responses.insert(
            "default".to_owned(),
            json!({ "$ref": "#/components/responses/Error" }),
        );
        Value::Object(responses)
    }

    /// The schema of a successful reply: the output message, or its `response_body` field.
    fn reply(&mut self, route: &Route) -> Value {
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

/// Every message `message` carries (itself included), into `seen`.
fn reachable(message: &MessageDescriptor, seen: &mut HashSet<String>) {
    if !seen.insert(message.full_name().to_owned()) {
        return;
    }
    for field in message.fields() {
        if let Kind::Message(inner) = field.kind() {
            if field.is_map() {
                if let Kind::Message(value) = inner.map_entry_value_field().kind() {
                    reachable(&value, seen);
                }
            } else {
                reachable(&inner, seen);
            }
        }
    }
}

/// The field at a dotted path of proto names.
fn field_at(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut current = message.clone();
    let mut found = None;
    for part in path.split('.') {
        let field = current.get_field_by_name(part)?;
        if let Kind::Message(inner) = field.kind() {
            current = inner;
        }
        found = Some(field);
    }
    found
}

/// `schema` with `keyword: true` (next to a `$ref` too: OpenAPI 3.1 schemas allow siblings).
fn annotate(mut schema: Value, keyword: &str) -> Value {
    if let Some(object) = schema.as_object_mut() {
        object.insert(keyword.to_owned(), Value::Bool(true));
    }
    schema
}

/// A 32-bit integer; request bodies may give it as a decimal string too.
fn int32(signed: bool, side: Side) -> Value {
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
fn int64(signed: bool, side: Side) -> Value {
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
fn float(single: bool, side: Side) -> Value {
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
fn nullable(mut schema: Value) -> Value {
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

/// The headers every response may carry.
fn common_headers() -> Value {
    let mut headers = Map::new();
    for name in [
        "X-Request-Id",
        "X-Trace-Id",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Policy",
    ] {
        headers.insert(
            name.to_owned(),
            json!({ "$ref": format!("#/components/headers/{name}") }),
        );
    }
    Value::Object(headers)
}

/// `components/headers`.
fn headers() -> Value {
    json!({
        "X-Request-Id": {
            "description": "The request id: the caller's `X-Request-Id` when acceptable, else a \
                new one. Logged with every line the request causes.",
            "schema": { "type": "string" },
        },
        "X-Trace-Id": {
            "description": "The W3C trace id of the request (joined to the caller's \
                `traceparent` when sent).",
            "schema": { "type": "string", "pattern": "^[0-9a-f]{32}$" },
        },
        "RateLimit-Limit": integer_header("Requests allowed in a burst."),
        "RateLimit-Remaining": integer_header("Requests left in the current burst."),
        "RateLimit-Reset": integer_header("Seconds until a request is allowed again."),
        "RateLimit-Policy": {
            "description": "The budget that applied: `<limit>;w=<seconds>;name=\"<group>\"`.",
            "schema": { "type": "string" },
        },
        "Retry-After": integer_header("Seconds to wait before retrying."),
    })
}

/// A header whose value is a count (requests, seconds).
fn integer_header(description: &str) -> Value {
    json!({ "description": description, "schema": { "type": "integer", "minimum": 0 } })
}

/// `components/responses`: one per error status, and `Error` for the rest.
fn error_responses() -> Value {
    let body = json!({ "schema": { "$ref": format!("{SCHEMAS}{STATUS}") } });
    let mut responses = Map::new();
    let default = ("default", "Error", "Any other error status.");
    for (code, name, description) in ERRORS.iter().copied().chain([default]) {
        let mut headers = common_headers();
        if code == "429" {
            for name in ["Retry-After", "RateLimit-Reset"] {
                headers[name] = json!({ "$ref": format!("#/components/headers/{name}") });
            }
        }
        responses.insert(
            name.to_owned(),
            json!({
                "description": description,
                "headers": headers,
                "content": { "application/json": body },
            }),
        );
    }
    Value::Object(responses)
}

/// A query parameter; repeated fields repeat the name (`a=1&a=2`).
fn query_parameter(name: &str, schema: Value, required: bool, repeated: bool) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let pool =
            prost_reflect::DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        RouteTable::from_pool(&pool).unwrap()
    }

    fn operation<'d>(document: &'d Value, path: &str, method: &str) -> &'d Value {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "no {method} {path}");
        operation
    }

    /// `$ref`s resolved against the document.
    fn resolve<'d>(document: &'d Value, schema: &'d Value) -> &'d Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.strip_prefix(SCHEMAS).expect("a schema reference");
                &document["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    /// Every route is one operation with a unique id, a success response and the error
    /// responses, and every `$ref` points at a component that exists.
    #[test]
    fn every_route_is_a_documented_operation() {
        let table = table();
        let document = document(&table);
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        let mut ids = HashSet::new();
        let mut count = 0;
        for (_, item) in document["paths"].as_object().unwrap() {
            for (_, operation) in item.as_object().unwrap() {
                count += 1;
                let id = operation["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "duplicate operationId {id}");
                let responses = operation["responses"].as_object().unwrap();
                assert_eq!(
                    responses["default"]["$ref"], "#/components/responses/Error",
                    "{id}"
                );
                for code in ["400", "401", "403", "404", "429", "500", "501", "503"] {
                    assert!(responses.contains_key(code), "{id} lacks {code}");
                }
                assert!(
                    responses.keys().any(|code| code.starts_with('2')),
                    "{id} has no success"
                );
            }
        }
        assert_eq!(count, table.len(), "one operation per route");
        assert!(ids.contains("AuthService_GetJwks_1"), "additional binding");
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = &reference[..reference.find('"').unwrap()];
            let mut node = &document;
            for part in target.trim_start_matches("#/").split('/') {
                node = &node[part];
            }
            assert!(node.is_object(), "dangling $ref {target}");
        }
    }

    /// Register: a JSON body whose `REQUIRED` fields are required and non-empty, unknown
    /// fields refused, 201 on success with the response-side `User`, public per the table.
    #[test]
    fn register_documents_its_body_and_created_status() {
        let table = table();
        let document = document_with(&table, |method| {
            method == "/ironmesh.auth.v1.AuthService/Register"
        });
        let register = operation(&document, "/v1/auth/register", "post");
        assert_eq!(register["operationId"], "AuthService_Register");
        assert_eq!(register["tags"], json!(["AuthService"]));
        let body = &register["requestBody"];
        assert_eq!(body["required"], true);
        let schema = resolve(&document, &body["content"]["application/json"]["schema"]);
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort_unstable();
        assert_eq!(required, ["displayName", "email", "password"]);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["email"]["minLength"], 1);
        assert_eq!(schema["properties"]["password"]["writeOnly"], true);
        // ironmesh.api.v1.field_rules, as auth enforces them.
        assert_eq!(schema["properties"]["password"]["minLength"], 12);
        assert_eq!(schema["properties"]["password"]["maxLength"], 128);
        let keys = operation(&document, "/v1/auth/api-keys", "post");
        let keys = resolve(
            &document,
            &keys["requestBody"]["content"]["application/json"]["schema"],
        );
        let scopes = &keys["properties"]["scopes"];
        assert_eq!(
            (scopes["minItems"].clone(), scopes["maxItems"].clone()),
            (json!(1), json!(20))
        );
        assert_eq!(scopes["items"]["pattern"], "^[a-z0-9][a-z0-9:._-]*$");
        assert_eq!(scopes["items"]["maxLength"], 64);
        assert!(register["responses"]["201"].is_object());
        assert!(register["responses"].get("200").is_none());
        let reply = resolve(
            &document,
            &register["responses"]["201"]["content"]["application/json"]["schema"],
        );
        let user = resolve(&document, &reply["properties"]["user"]);
        assert!(
            user.get("required").is_none(),
            "replies omit default fields"
        );
        assert_eq!(user["properties"]["userId"]["readOnly"], true);
        assert_eq!(
            register["security"],
            json!([{ "bearerAuth": [] }, { "apiKey": [] }, {}])
        );
        let me = operation(&document, "/v1/auth/me", "get");
        assert_eq!(
            me["security"],
            json!([{ "bearerAuth": [] }, { "apiKey": [] }])
        );
        let schemes = &document["components"]["securitySchemes"];
        assert_eq!(schemes["bearerAuth"]["bearerFormat"], "JWT");
        assert_eq!(schemes["apiKey"]["scheme"], "bearer");
    }

    /// The proto3 JSON mapping: int64 as decimal strings, enums by name, timestamps as
    /// RFC 3339, oneof members exclusive in requests.
    #[test]
    fn schemas_follow_the_proto3_json_mapping() {
        let document = document(&table());
        let schemas = &document["components"]["schemas"];
        let expires_in = &schemas["ironmesh.auth.v1.TokenPair"]["properties"]["expiresIn"];
        assert_eq!(expires_in["type"], "string");
        assert_eq!(expires_in["format"], "int64");
        let role = &schemas["ironmesh.auth.v1.Role"];
        assert_eq!(role["type"], "string");
        assert!(
            role["enum"]
                .as_array()
                .unwrap()
                .contains(&json!("ROLE_ADMIN"))
        );
        let created_at = &schemas["ironmesh.auth.v1.User"]["properties"]["createdAt"];
        assert_eq!(created_at["format"], "date-time");
        let login = &schemas["ironmesh.auth.v1.LoginRequest"];
        assert_eq!(
            login["allOf"],
            json!([{ "not": { "required": ["totpCode", "recoveryCode"] } }])
        );
        let status = &schemas[STATUS]["properties"];
        assert_eq!(status["code"]["type"], "integer");
        assert_eq!(status["details"]["items"]["required"], json!(["@type"]));
        // Product is both sent and accepted: two schemas.
        assert!(
            schemas["ironmesh.inventory.v1.Product"]
                .get("required")
                .is_none()
        );
        let input = &schemas["ironmesh.inventory.v1.Product-Input"];
        assert!(
            input["required"]
                .as_array()
                .unwrap()
                .contains(&json!("sku"))
        );
        assert_eq!(input["properties"]["priceMinor"]["pattern"], INT64_INPUT);
    }

    /// GET parameters come from the query (JSON names, repeated fields exploded); path-bound
    /// fields stay out of bodies; raw, streaming and empty replies have their own forms.
    #[test]
    fn parameters_bodies_and_special_replies() {
        let document = document(&table());
        let list = operation(&document, "/v1/auth/users", "get");
        let names: Vec<&str> = list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"pageSize") && names.contains(&"role"),
            "{names:?}"
        );
        assert!(list.get("requestBody").is_none());

        let revoke = operation(&document, "/v1/auth/sessions/{session_id}:revoke", "post");
        assert_eq!(revoke["parameters"][0]["in"], "path");
        assert_eq!(revoke["parameters"][0]["required"], true);
        let body = &revoke["requestBody"]["content"]["application/json"]["schema"];
        assert!(
            body["properties"].get("sessionId").is_none(),
            "bound by the path"
        );

        let update = operation(&document, "/v1/inventory/products/{product_id}", "patch");
        assert_eq!(
            update["parameters"][0]["description"],
            "Binds `product.product_id`."
        );
        assert!(operation(&document, "/v1/inventory/products/{product_id}", "get").is_object());
        let product = &update["requestBody"]["content"]["application/json"]["schema"];
        assert!(product["properties"].get("productId").is_none());
        assert!(product["properties"].get("sku").is_some());

        let webhook = operation(&document, "/v1/provisioning/webhooks/{source}", "post");
        assert_eq!(webhook["requestBody"]["content"], json!({ "*/*": {} }));

        let watch = operation(
            &document,
            "/v1/provisioning/requests/{request_id}/position:watch",
            "get",
        );
        let content = &watch["responses"]["200"]["content"];
        assert!(content["application/x-ndjson"]["schema"]["properties"]["result"].is_object());
        assert!(content["text/event-stream"].is_object());

        let delete = operation(&document, "/v1/webhook-endpoints/{endpoint_id}", "delete");
        assert!(delete["responses"]["204"].is_object());
        assert!(delete["responses"]["204"].get("content").is_none());

        let export = operation(&document, "/v1/auth/me:export", "get");
        assert_eq!(export["responses"]["200"]["content"], json!({ "*/*": {} }));

        let limited = &document["components"]["responses"]["TooManyRequests"]["headers"];
        assert!(limited["Retry-After"].is_object());
    }

    /// Writes the document to `$OPENAPI_OUT`, if set, for tools that want it as a file
    /// (`openapi-spec-validator`, `schemathesis run FILE --url …`).
    #[test]
    fn write_document_when_asked() {
        if let Ok(path) = std::env::var("OPENAPI_OUT") {
            let text = serde_json::to_string_pretty(&document(&table())).unwrap();
            std::fs::write(&path, text).unwrap();
        }
    }
}
