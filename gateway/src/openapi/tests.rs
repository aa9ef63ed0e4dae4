use std::collections::HashSet;

use serde_json::{Value, json};

use super::scalars::INT64_INPUT;
use super::*;
use crate::error::{ApiError, http_status};

fn table() -> RouteTable {
    let pool = prost_reflect::DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
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
    let document = document(&table);
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
    assert_eq!(schema["properties"]["email"]["format"], "email");
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
    // Public or not as the contract's access option says (a method without one reads as
    // authenticated); either way an operation states its security.
    for operation in [register, operation(&document, "/v1/auth/me", "get")] {
        let security = &operation["security"];
        assert!(
            *security == json!([])
                || security[0] == json!({ "bearerAuth": [] }) && security[1]["apiKey"].is_array(),
            "{security}"
        );
    }
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
    let filter = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "emailContains")
        .expect("emailContains");
    assert!(
        filter["schema"].get("format").is_none(),
        "a filter, not an address"
    );

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

/// [`render`] gives the document `/openapi.json` serves for the Ironmesh contracts.
#[test]
fn render_gives_the_served_document() {
    let rendered: Value = serde_json::from_str(&render().unwrap()).unwrap();
    assert_eq!(rendered, document(&table()));
}

/// The error responses come from the gateway's code → HTTP table and its own refusals: every
/// status a gRPC code maps to is documented with that code named, and so is every local refusal
/// (431 for all operations; 413 only where there is a body).
#[test]
fn error_responses_follow_the_code_table() {
    let document = document(&table());
    let responses = &document["components"]["responses"];
    for code in crate::error::CODES {
        let status = http_status(code);
        if status.as_u16() < 400 || status.as_u16() == 499 {
            continue;
        }
        let name = ironmesh_interceptors::grpc::code_name(code);
        let described = responses
            .as_object()
            .unwrap()
            .values()
            .any(|r| r["description"].as_str().unwrap().contains(name));
        assert!(described, "{name} ({status}) is not documented");
    }
    let me = operation(&document, "/v1/auth/me", "get");
    let register = operation(&document, "/v1/auth/register", "post");
    for error in [ApiError::HeadersTooLarge, ApiError::NoRoute] {
        let status = error.status().0.as_u16().to_string();
        assert!(me["responses"][&status].is_object(), "{status}");
    }
    assert!(me["responses"].get("413").is_none(), "no body, no 413");
    assert!(register["responses"]["413"].is_object());
    assert_eq!(
        responses["RequestHeaderFieldsTooLarge"]["content"]["application/json"]["schema"]["$ref"],
        format!("{SCHEMAS}{STATUS}")
    );
}

/// A partial update's body (the resource beside an `update_mask`, AIP-134) requires nothing and
/// takes `null` for any field, while the create body of the same resource requires its REQUIRED
/// fields.
#[test]
fn partial_update_bodies_require_nothing() {
    let document = document(&table());
    let create = operation(&document, "/v1/inventory/products", "post");
    let create = resolve(
        &document,
        &create["requestBody"]["content"]["application/json"]["schema"],
    );
    let required: HashSet<&str> = create["required"]
        .as_array()
        .expect("create requires fields")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        required.contains("sku") && required.contains("name"),
        "{required:?}"
    );
    assert!(!required.contains("priceMinor"), "0 is a valid price");
    let update = operation(&document, "/v1/inventory/products/{product_id}", "patch");
    let body = &update["requestBody"]["content"]["application/json"]["schema"];
    assert!(body.get("required").is_none(), "{body}");
    let sku = body["properties"]["sku"].to_string();
    assert!(sku.contains("null"), "an unset sku is null: {sku}");
}
