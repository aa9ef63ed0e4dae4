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
//!   the gateway answers, from its own code → HTTP table) and its `security`, from the contract's
//!   access option (`[]` for public methods; bearer access tokens or API keys otherwise, with
//!   the method's scopes), the levels also as `x-ironmesh-access`. Internal methods are not in
//!   the route table, so not in the document.
//!
//! # Layout
//! - `document`: the document and its operations, security included.
//! - `operations`: parameters, request bodies and responses of one operation.
//! - `schema`: message schemas (`components/schemas`), field behaviour and rules.
//! - `scalars`: single values, enums and well-known types.
//! - `components`: error responses, headers and security schemes.

mod components;
mod document;
mod operations;
mod scalars;
mod schema;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

pub use document::document;

use crate::transcode::RouteTable;

/// Where `$ref`s to schemas point.
const SCHEMAS: &str = "#/components/schemas/";
/// The message every error body is.
const STATUS: &str = "google.rpc.Status";
/// The suffix of a message's request-side schema when responses carry the message too.
const INPUT_SUFFIX: &str = "-Input";

/// The document the gateway serves for the Ironmesh contracts (`ironmesh-proto`), as pretty
/// JSON: for tools that want it as a file (`openapi-spec-validator`, `schemathesis run FILE`,
/// generated clients) without starting the mesh.
pub fn render() -> Result<String, String> {
    let pool = prost_reflect::DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| format!("cannot read the descriptors: {e}"))?;
    let table = RouteTable::from_pool(&pool)?;
    serde_json::to_string_pretty(&document(&table)).map_err(|e| e.to_string())
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
pub(super) fn field_at(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
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
