//! The route table against contracts built to be wrong, and against ours.

use super::*;

/// The route table of one test service whose methods carry `rules` (`(rpc line, option)`),
/// each public unless `access` says otherwise (`""` leaves the access option out).
fn table_of(rules: &[(&str, &str)]) -> Result<RouteTable, String> {
    table_with_access(
        rules,
        "option (ironmesh.api.v1.access) = {levels: ACCESS_LEVEL_PUBLIC};",
    )
}

fn table_with_access(rules: &[(&str, &str)], access: &str) -> Result<RouteTable, String> {
    let dir = tempfile::tempdir().unwrap();
    let methods: String = rules
        .iter()
        .map(|(rpc, rule)| {
            format!("  {rpc} {{ {access} option (google.api.http) = {{{rule}}}; }}\n")
        })
        .collect();
    let source = format!(
        "syntax = \"proto3\";\npackage t.v1;\nimport \"google/api/annotations.proto\";\n\
         import \"ironmesh/api/v1/options.proto\";\n\
         message Req {{ string id = 1; string name = 2; Inner inner = 3; }}\n\
         message Inner {{ string id = 1; }}\n\
         message Resp {{ string id = 1; }}\n\
         service S {{\n{methods}}}\n"
    );
    std::fs::write(dir.path().join("t.proto"), source).unwrap();
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let mut compiler = protox::Compiler::new([dir.path(), shared.as_path()]).unwrap();
    compiler.include_imports(true);
    compiler.open_files(["t.proto"]).unwrap();
    let pool = DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap();
    RouteTable::from_pool(&pool)
}

#[test]
fn invalid_or_conflicting_rules_fail_with_a_clear_message() {
    let ok = table_of(&[
        ("rpc A(Req) returns (Resp)", r#"get: "/v1/a/{inner.id}""#),
        (
            "rpc B(Req) returns (Resp)",
            r#"post: "/v1/a/{id}" body: "inner""#,
        ),
    ]);
    assert_eq!(ok.map(|t| t.len()), Ok(2));
    let cases = [
        (
            vec![
                ("rpc A(Req) returns (Resp)", r#"get: "/v1/x/{id}""#),
                ("rpc B(Req) returns (Resp)", r#"get: "/v1/x/{name}""#),
            ],
            "conflicting HTTP rules: GET /v1/x/{id} is bound by t.v1.S.A and t.v1.S.B",
        ),
        (
            vec![("rpc A(Req) returns (Resp)", r#"get: "/v1/x/{nope}""#)],
            "t.v1.S.A: path field `nope` does not exist in t.v1.Req",
        ),
        (
            vec![("rpc A(Req) returns (Resp)", r#"get: "v1/x""#)],
            "must start with /",
        ),
        (
            vec![("rpc A(Req) returns (Resp)", r#"post: "/v1/x" body: "name""#)],
            "t.v1.S.A: body `name` must name a message field",
        ),
        (
            vec![(
                "rpc A(Req) returns (Resp)",
                r#"get: "/v1/x" response_body: "id""#,
            )],
            "t.v1.S.A: response_body `id` must name a message field",
        ),
        (
            vec![(
                "rpc A(stream Req) returns (Resp)",
                r#"post: "/v1/x" body: "*""#,
            )],
            "t.v1.S.A: client-streaming methods cannot be bound to HTTP",
        ),
    ];
    for (rules, expected) in cases {
        let Err(err) = table_of(&rules) else {
            panic!("accepted, but should fail with {expected:?}");
        };
        assert!(err.contains(expected), "{err:?} should say {expected:?}");
    }
}

/// A routed method whose contract does not say who may call it stops the gateway's start,
/// as it stops a service's; an internal-only one is not routed at all.
#[test]
fn access_decides_what_is_routed() {
    let rule = [("rpc A(Req) returns (Resp)", r#"get: "/v1/a/{id}""#)];
    let err = table_with_access(&rule, "").unwrap_err();
    assert!(err.contains("t.v1.S.A states no access"), "{err}");
    let internal = table_with_access(
        &rule,
        "option (ironmesh.api.v1.access) = {levels: ACCESS_LEVEL_INTERNAL};",
    )
    .unwrap();
    assert_eq!(internal.len(), 0);
}

/// Every rule in our contracts parses, binds existing fields, and none conflict.
#[test]
fn our_contracts_make_a_consistent_route_table() {
    let pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
    let table = RouteTable::from_pool(&pool).expect("no invalid or conflicting rules");
    assert!(table.len() > 50, "{}", table.len());
    let (route, bindings) = table
        .find(&Method::POST, "/v1/orders/o-1:cancel")
        .expect("custom verb route");
    assert_eq!(route.method.name(), "CancelOrder");
    assert_eq!(bindings, vec![("order_id".to_owned(), "o-1".to_owned())]);
    let (route, _) = table.find(&Method::GET, "/.well-known/jwks.json").unwrap();
    assert_eq!(route.method.name(), "GetJwks", "additional binding");
    assert!(table.find(&Method::DELETE, "/v1/orders/o-1").is_none());
    let (created, _) = table.find(&Method::POST, "/v1/auth/register").unwrap();
    assert_eq!(created.success, http::StatusCode::CREATED);
    let (deleted, _) = table
        .find(&Method::DELETE, "/v1/webhook-endpoints/e-1")
        .unwrap();
    assert_eq!(deleted.success, http::StatusCode::NO_CONTENT);
}
