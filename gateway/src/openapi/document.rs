//! The document: one operation per route, with its security from the contract's access
//! option, and the components the operations refer to.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::components::{error_responses, headers, security_schemes};
use super::schema::Schemas;
use crate::access::Access;
use crate::transcode::{Route, RouteTable};

/// The OpenAPI 3.1 document for every REST route: what `/openapi.json` serves.
pub fn document(table: &RouteTable) -> Value {
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
            "description": format!(
                "Transcoded to the gRPC method `{grpc_path}`. Access: {}.",
                access_text(&route.access)
            ),
            "responses": schemas.responses(route),
            "security": security(&route.access),
            "x-ironmesh-access": access_extension(&route.access),
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
            "securitySchemes": security_schemes(),
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
pub(super) fn openapi_path(
    route: &Route,
    shapes: &mut HashMap<String, Vec<String>>,
) -> (String, Vec<String>) {
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

/// The security alternatives of an operation: none needed for a public method (`[]`);
/// otherwise an access token or an API key — the key with the method's scopes, where it lists
/// any (OpenAPI 3.1 lets non-OAuth schemes name roles there).
fn security(access: &Access) -> Value {
    if access.public() {
        return json!([]);
    }
    json!([{ "bearerAuth": [] }, { "apiKey": access.scopes }])
}

/// `x-ironmesh-access`: the contract's levels and scopes as they are, for tools that want more
/// than `security` can say (operator vs admin).
fn access_extension(access: &Access) -> Value {
    json!({ "levels": access.levels, "scopes": access.scopes })
}

/// The access, in words, for the operation's description.
fn access_text(access: &Access) -> String {
    let mut text = access.levels.join(" or ");
    if !access.scopes.is_empty() {
        text.push_str(&format!(
            " (API keys need one of the scopes {})",
            access.scopes.join(", ")
        ));
    }
    text
}
