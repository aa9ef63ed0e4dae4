//! The policy table against the real contracts and against descriptor sets built to be wrong.

use prost::Message;
use prost_types::{
    DescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
    ServiceDescriptorProto,
};

use super::*;
use ironmesh_proto::ironmesh::api::v1::AccessLevel;

/// Our contracts plus health, as a process serves them.
fn real() -> PolicyTable {
    PolicyTable::from_descriptor_sets(&[
        ironmesh_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ])
    .expect("the compiled contracts state access for every method")
}

fn access(table: &PolicyTable, path: &str) -> Access {
    table
        .get(path)
        .unwrap_or_else(|| panic!("{path} is in the table"))
        .access
        .clone()
}

fn require(levels: &[Level]) -> Access {
    Access::Require {
        levels: levels.to_vec(),
        scopes: Vec::new(),
    }
}

fn scoped(levels: &[Level], scope: &str) -> Access {
    Access::Require {
        levels: levels.to_vec(),
        scopes: vec![scope.to_owned()],
    }
}

/// A file `ironmesh/example/v1/example.proto` with one service and one method without options,
/// after `imports` (whole files, e.g. our options.proto).
fn unannotated_set(imports: Vec<FileDescriptorProto>) -> Vec<u8> {
    let dependency = imports.iter().filter_map(|f| f.name.clone()).collect();
    let example = FileDescriptorProto {
        name: Some("ironmesh/example/v1/example.proto".to_owned()),
        package: Some("ironmesh.example.v1".to_owned()),
        dependency,
        syntax: Some("proto3".to_owned()),
        message_type: vec![DescriptorProto {
            name: Some("Empty".to_owned()),
            ..Default::default()
        }],
        service: vec![ServiceDescriptorProto {
            name: Some("ExampleService".to_owned()),
            method: vec![MethodDescriptorProto {
                name: Some("Unmarked".to_owned()),
                input_type: Some(".ironmesh.example.v1.Empty".to_owned()),
                output_type: Some(".ironmesh.example.v1.Empty".to_owned()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut file = imports;
    file.push(example);
    FileDescriptorSet { file }.encode_to_vec()
}

/// Our options.proto and what it imports, from the compiled set. (Decoding through prost_types
/// drops option values, which is harmless here: these files have no services.)
fn options_files() -> Vec<FileDescriptorProto> {
    FileDescriptorSet::decode(ironmesh_proto::FILE_DESCRIPTOR_SET)
        .expect("the compiled set decodes")
        .file
        .into_iter()
        .filter(|f| {
            matches!(
                f.name.as_deref(),
                Some("google/protobuf/descriptor.proto" | "ironmesh/api/v1/options.proto")
            )
        })
        .collect()
}

fn refusal(set: &[u8]) -> String {
    match PolicyTable::from_descriptor_sets(&[set]) {
        Ok(table) => panic!("an unannotated method was accepted: {table:?}"),
        Err(PolicyError::Unannotated { method }) => method,
        Err(other) => panic!("refused for another reason: {other}"),
    }
}

/// A method without the access option is refused, by name, whether or not its set even knows
/// the option — a process built from it cannot start.
#[test]
fn an_unannotated_method_is_refused_by_name() {
    let method = "ironmesh.example.v1.ExampleService.Unmarked";
    assert_eq!(refusal(&unannotated_set(Vec::new())), method);
    let files = options_files();
    assert_eq!(files.len(), 2, "options.proto and descriptor.proto found");
    assert_eq!(refusal(&unannotated_set(files)), method);
    let message = PolicyTable::from_descriptor_sets(&[&unannotated_set(Vec::new())])
        .unwrap_err()
        .to_string();
    assert!(message.contains(method), "{message}");
    assert!(message.contains(ACCESS_OPTION), "{message}");
}

/// The compiled contracts build a table, and every method of every ironmesh service carries the
/// option itself (checked on the descriptors, independently of the table's reading of it).
#[test]
fn every_ironmesh_method_states_its_access() {
    let table = real();
    let pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).expect("decodes");
    let option = pool.get_extension_by_name(ACCESS_OPTION).expect("option");
    let mut methods = 0;
    for service in pool.services() {
        assert!(service.full_name().starts_with("ironmesh."), "{service:?}");
        for method in service.methods() {
            assert!(
                method.options().has_extension(&option),
                "{} states no access",
                method.full_name()
            );
            let path = format!("/{}/{}", service.full_name(), method.name());
            assert!(table.get(&path).is_some(), "{path} in the table");
            methods += 1;
        }
    }
    // auth 22, orders 7, inventory 10, provisioning 15, notification 12, audit 7, events 1 + 2
    // (the sink and the dead-letter admin API every producer serves).
    assert_eq!(methods, 76);
    assert_eq!(table.len(), methods + 2, "plus health Check and Watch");
}

/// The table says what the contracts' comments say, for methods of each level.
#[test]
fn known_methods_have_the_contracts_access() {
    let table = real();
    let auth = "/ironmesh.auth.v1.AuthService";
    assert_eq!(access(&table, &format!("{auth}/Login")), Access::Public);
    assert_eq!(access(&table, &format!("{auth}/GetJwks")), Access::Public);
    // Services call it as themselves (see auth.proto).
    assert_eq!(
        access(&table, &format!("{auth}/AuthenticateApiKey")),
        require(&[Level::Internal])
    );
    assert_eq!(
        access(&table, &format!("{auth}/GetMe")),
        Access::Authenticated
    );
    assert_eq!(
        access(&table, &format!("{auth}/ListUsers")),
        require(&[Level::Admin])
    );
    assert_eq!(
        access(&table, "/ironmesh.orders.v1.OrdersService/CancelOrder"),
        scoped(&[Level::Authenticated], "orders:write")
    );
    assert_eq!(
        access(&table, "/ironmesh.orders.v1.OrdersService/GetOrder"),
        scoped(&[Level::Authenticated], "orders:read")
    );
    assert_eq!(
        access(&table, "/ironmesh.orders.v1.OrdersService/FulfillOrder"),
        scoped(&[Level::Operator], "orders:write")
    );
    assert_eq!(
        access(&table, "/ironmesh.inventory.v1.InventoryService/GetProduct"),
        Access::Public
    );
    assert_eq!(
        access(&table, "/ironmesh.inventory.v1.InventoryService/Reserve"),
        require(&[Level::Internal])
    );
    assert_eq!(
        access(&table, "/ironmesh.notification.v1.NotificationService/Send"),
        scoped(&[Level::Operator, Level::Internal], "notification:write")
    );
    assert_eq!(
        access(&table, "/ironmesh.events.v1.EventSinkService/Deliver"),
        require(&[Level::Internal])
    );
    assert_eq!(
        access(
            &table,
            "/ironmesh.provisioning.v1.ProvisioningService/ReceiveWebhook"
        ),
        Access::Public
    );
    assert_eq!(
        access(&table, "/grpc.health.v1.Health/Check"),
        Access::Public
    );
}

/// API keys are limited to their scopes (auth.proto: "requests are limited to these"): every
/// method of the domain services that an end user may call names the one scope it needs,
/// `<service>:read` for methods without side effects and `<service>:write` for the rest.
/// Auth's own methods name none (keys are judged by their owner's roles there, and the ones
/// that manage credentials refuse API keys themselves).
#[test]
fn user_callable_domain_methods_name_their_api_key_scope() {
    let table = real();
    let pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).expect("decodes");
    let mut scoped_methods = 0;
    for service in pool.services() {
        let name = service
            .package_name()
            .split('.')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let policy = table.get(&path).expect("in the table");
            let user_callable = match &policy.access {
                Access::Public => false,
                Access::Authenticated => true,
                Access::Require { levels, .. } => levels.iter().any(|l| *l != Level::Internal),
            };
            let scopes = match &policy.access {
                Access::Require { scopes, .. } => scopes.clone(),
                _ => Vec::new(),
            };
            if name == "auth" || !user_callable {
                assert!(scopes.is_empty(), "{path} names scopes: {scopes:?}");
                continue;
            }
            let no_side_effects = method
                .method_descriptor_proto()
                .options
                .as_ref()
                .and_then(|o| o.idempotency_level)
                == Some(IdempotencyLevel::NoSideEffects as i32);
            let verb = if no_side_effects { "read" } else { "write" };
            assert_eq!(scopes, vec![format!("{name}:{verb}")], "{path}");
            scoped_methods += 1;
        }
    }
    assert_eq!(scoped_methods, 39);
}

/// Idempotency is still read from the same descriptors.
#[test]
fn idempotency_comes_from_the_contract() {
    let table = real();
    assert!(table.is_idempotent("/ironmesh.auth.v1.AuthService/GetMe"));
    assert!(table.is_idempotent("/ironmesh.orders.v1.OrdersService/CreateOrder"));
    assert!(!table.is_idempotent("/ironmesh.auth.v1.AuthService/Login"));
    assert!(!table.is_idempotent("/ironmesh.provisioning.v1.ProvisioningService/ClaimJob"));
}

/// Options that cannot be enforced as written are refused; the rest normalise to one form.
#[test]
fn access_options_are_checked_and_normalised() {
    let n = |level: AccessLevel| level as i32;
    let scopes = || vec!["orders:read".to_owned()];
    assert_eq!(
        Access::from_contract(&[], Vec::new()),
        Err(InvalidAccess::NoLevel)
    );
    assert_eq!(
        Access::from_contract(&[], scopes()),
        Err(InvalidAccess::NoLevel)
    );
    assert_eq!(
        Access::from_contract(&[n(AccessLevel::Unspecified)], Vec::new()),
        Err(InvalidAccess::UnknownLevel(0))
    );
    assert_eq!(
        Access::from_contract(&[99], Vec::new()),
        Err(InvalidAccess::UnknownLevel(99))
    );
    assert_eq!(
        Access::from_contract(
            &[n(AccessLevel::Public), n(AccessLevel::Authenticated)],
            Vec::new()
        ),
        Err(InvalidAccess::PublicCombined)
    );
    assert_eq!(
        Access::from_contract(&[n(AccessLevel::Public)], scopes()),
        Err(InvalidAccess::PublicCombined)
    );
    assert_eq!(
        Access::from_contract(&[n(AccessLevel::Public)], Vec::new()),
        Ok(Access::Public)
    );
    assert_eq!(
        Access::from_contract(&[n(AccessLevel::Authenticated)], Vec::new()),
        Ok(Access::Authenticated)
    );
    assert_eq!(
        Access::from_contract(&[n(AccessLevel::Authenticated)], scopes()),
        Ok(Access::Require {
            levels: vec![Level::Authenticated],
            scopes: scopes()
        })
    );
    assert_eq!(
        Access::from_contract(
            &[
                n(AccessLevel::Internal),
                n(AccessLevel::Operator),
                n(AccessLevel::Internal)
            ],
            Vec::new()
        ),
        Ok(require(&[Level::Operator, Level::Internal]))
    );
}
