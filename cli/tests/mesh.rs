//! The foundation's promises about every service, proven against real servers started in-process
//! by the testkit on 127.0.0.1:0 (SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set and
//! always in CI).

use std::collections::BTreeSet;
use std::time::Duration;

use ironmesh_proto::ironmesh;
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{Backend, TestMesh, authed, backends};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

/// The fully-qualified gRPC services each process must expose (beyond health and reflection).
fn own_services(kind: ServiceKind) -> Vec<&'static str> {
    match kind {
        // A producer of events also serves the operator's API over its outbox.
        ServiceKind::Auth => vec![
            "ironmesh.auth.v1.AuthService",
            "ironmesh.events.v1.EventsAdminService",
        ],
        ServiceKind::Orders => vec![
            "ironmesh.orders.v1.OrdersService",
            "ironmesh.events.v1.EventsAdminService",
        ],
        ServiceKind::Inventory => vec![
            "ironmesh.inventory.v1.InventoryService",
            "ironmesh.events.v1.EventsAdminService",
        ],
        ServiceKind::Provisioning => vec![
            "ironmesh.provisioning.v1.ProvisioningService",
            "ironmesh.events.v1.EventsAdminService",
        ],
        ServiceKind::Notification => vec![
            "ironmesh.notification.v1.NotificationService",
            "ironmesh.events.v1.EventSinkService",
        ],
        ServiceKind::Audit => vec![
            "ironmesh.audit.v1.AuditService",
            "ironmesh.events.v1.EventSinkService",
        ],
    }
}

const INFRA: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Asks reflection (`$version` = `v1` or `v1alpha`, whose generated types differ but have the same
/// shape) to list the services of `kind`'s process.
macro_rules! list_services {
    ($version:ident, $mesh:expr, $kind:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

        let mut client = ServerReflectionClient::new($mesh.channel($kind).await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection call")
            .into_inner();
        let response = tokio::time::timeout(LIMIT, responses.next())
            .await
            .expect("reflection answered in time")
            .expect("one response")
            .expect("reflection ok");
        match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => list
                .service
                .into_iter()
                .map(|s| s.name)
                .collect::<BTreeSet<String>>(),
            other => panic!("unexpected reflection response: {other:?}"),
        }
    }};
}

/// Asks reflection (`$version` = `v1` or `v1alpha`) for the file defining `$symbol`; returns
/// the number of encoded files it sent (0 when it answered with an error).
macro_rules! file_containing {
    ($version:ident, $mesh:expr, $kind:expr, $symbol:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

        let mut client = ServerReflectionClient::new($mesh.channel($kind).await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol($symbol.to_owned())),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection call")
            .into_inner();
        let response = tokio::time::timeout(LIMIT, responses.next())
            .await
            .expect("reflection answered in time")
            .expect("one response")
            .expect("reflection ok");
        match response.message_response {
            Some(MessageResponse::FileDescriptorResponse(files)) => {
                files.file_descriptor_proto.len()
            }
            _ => 0,
        }
    }};
}

/// Every service reflection lists also resolves to its descriptor, over both versions — what
/// `buf curl --list-methods` and grpcurl `describe` do next. (The v1alpha reflection service
/// used to be listed without a descriptor, so listing its methods failed.)
#[tokio::test]
async fn every_listed_service_resolves_to_a_descriptor_over_v1alpha_and_v1() {
    let mesh = TestMesh::start(Backend::Sqlite, &[ServiceKind::Orders, ServiceKind::Auth]).await;
    for kind in [ServiceKind::Orders, ServiceKind::Auth] {
        for name in list_services!(v1, mesh, kind) {
            assert!(
                file_containing!(v1, mesh, kind, name) > 0,
                "{kind}: v1 has no descriptor for {name}"
            );
            assert!(
                file_containing!(v1alpha, mesh, kind, name) > 0,
                "{kind}: v1alpha has no descriptor for {name}"
            );
        }
    }
    assert!(mesh.shutdown().await.is_empty());
}

/// Reflection on each service's port lists exactly that service's API plus health and both
/// reflection versions — through v1alpha (what grpcurl 1.8.6 speaks) and v1 alike — and no other
/// service's API.
#[tokio::test]
async fn reflection_lists_each_services_own_api_over_v1alpha_and_v1() {
    let mesh = TestMesh::start(Backend::Sqlite, &ServiceKind::ALL).await;
    for kind in ServiceKind::ALL {
        let mut expected: BTreeSet<String> =
            own_services(kind).into_iter().map(str::to_owned).collect();
        expected.extend(INFRA.iter().map(|s| (*s).to_owned()));
        assert_eq!(
            list_services!(v1alpha, mesh, kind),
            expected,
            "{kind} v1alpha"
        );
        assert_eq!(list_services!(v1, mesh, kind), expected, "{kind} v1");
    }
    assert!(mesh.shutdown().await.is_empty());
}

/// grpc.health.v1 Check answers SERVING for the server ("") and each service name on both storage
/// backends, and NOT_FOUND for a name the process does not serve.
#[tokio::test]
async fn health_is_serving_per_service_name_and_not_found_for_unknown_names() {
    for backend in backends() {
        let mesh = TestMesh::start(backend, &ServiceKind::ALL).await;
        for kind in ServiceKind::ALL {
            let mut health = mesh.health(kind).await;
            let mut names = own_services(kind);
            names.push("");
            for name in names {
                let response = health
                    .check(HealthCheckRequest {
                        service: name.to_owned(),
                    })
                    .await
                    .unwrap_or_else(|s| panic!("{backend:?} {kind} check {name:?}: {s}"));
                assert_eq!(
                    response.into_inner().status,
                    ServingStatus::Serving as i32,
                    "{backend:?} {kind} {name:?}"
                );
            }
            let unknown = health
                .check(HealthCheckRequest {
                    service: "ironmesh.nope.v1.NopeService".to_owned(),
                })
                .await
                .expect_err("unknown service must not be reported");
            assert_eq!(unknown.code(), Code::NotFound, "{backend:?} {kind}");
        }
        assert!(mesh.shutdown().await.is_empty(), "{backend:?} clean stop");
    }
}

/// Watch on a name the process does not serve answers as the health protocol says: one
/// SERVICE_UNKNOWN message and the stream stays open (NOT_FOUND is Check's answer only); the
/// drain ends it like any other watch.
#[tokio::test]
async fn watch_of_an_unknown_name_sends_service_unknown_and_stays_open() {
    let mesh = TestMesh::start(Backend::Sqlite, &[ServiceKind::Orders]).await;
    let mut health = mesh.health(ServiceKind::Orders).await;
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "ironmesh.nope.v1.NopeService".to_owned(),
        })
        .await
        .expect("watch of an unknown name is not refused")
        .into_inner();
    let first = tokio::time::timeout(LIMIT, watch.next())
        .await
        .expect("first status in time")
        .expect("a status")
        .expect("ok");
    assert_eq!(first.status, ServingStatus::ServiceUnknown as i32);
    // Nothing more arrives and the stream does not end while the process runs (a bounded look).
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watch.next())
            .await
            .is_err(),
        "the stream stays open with nothing further to say"
    );
    let stopping = tokio::spawn(mesh.shutdown());
    let ended = tokio::time::timeout(LIMIT, watch.next())
        .await
        .expect("the drain ends the stream in time");
    assert!(ended.is_none(), "ended without another message: {ended:?}");
    let errors = tokio::time::timeout(LIMIT, stopping)
        .await
        .expect("shutdown finished within the limit")
        .expect("shutdown task");
    assert!(errors.is_empty(), "{errors:?}");
}

/// When a drain starts, a Watch stream that saw SERVING receives NOT_SERVING and then ends, so
/// watchers learn of the drain and do not hold the shutdown up; the mesh stops cleanly.
#[tokio::test]
async fn drain_turns_watch_not_serving_then_ends_the_stream() {
    let mesh = TestMesh::start(Backend::Sqlite, &[ServiceKind::Orders]).await;
    let mut health = mesh.health(ServiceKind::Orders).await;
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "ironmesh.orders.v1.OrdersService".to_owned(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = tokio::time::timeout(LIMIT, watch.next())
        .await
        .expect("first status in time")
        .expect("a status")
        .expect("ok");
    assert_eq!(first.status, ServingStatus::Serving as i32);

    let stopping = tokio::spawn(mesh.shutdown());

    let mut seen = Vec::new();
    let drained = tokio::time::timeout(LIMIT, async {
        while let Some(item) = watch.next().await {
            seen.push(item.expect("watch item").status);
        }
    })
    .await;
    assert!(drained.is_ok(), "the watch stream ended during the drain");
    assert_eq!(
        seen.last(),
        Some(&(ServingStatus::NotServing as i32)),
        "saw {seen:?}"
    );
    let errors = tokio::time::timeout(LIMIT, stopping)
        .await
        .expect("shutdown finished within the limit")
        .expect("shutdown task");
    assert!(errors.is_empty(), "{errors:?}");
}

/// A message of 4 MiB + 1 byte from an authenticated caller is refused with RESOURCE_EXHAUSTED
/// before the handler runs, and the server goes on answering the next call.
#[tokio::test]
async fn oversized_message_is_resource_exhausted_and_the_server_keeps_serving() {
    let mesh = TestMesh::start(Backend::Sqlite, &[ServiceKind::Auth, ServiceKind::Orders]).await;
    let token = mesh.customer().await.access_token;
    let mut orders = mesh.orders().await;
    // A string field of exactly the limit makes the encoded message a few bytes over it.
    let big = "x".repeat(4 * 1024 * 1024 + 1);
    let status = orders
        .get_order(authed(
            ironmesh::orders::v1::GetOrderRequest { order_id: big },
            &token,
        ))
        .await
        .expect_err("oversized message must be refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Same connection, next call: it reaches the handler again (NOT_FOUND for this unknown id).
    let next = orders
        .get_order(authed(
            ironmesh::orders::v1::GetOrderRequest {
                order_id: "0190d5a0-0000-7000-8000-000000000000".to_owned(),
            },
            &token,
        ))
        .await
        .expect_err("no such order");
    assert_eq!(next.code(), Code::NotFound, "{next:?}");
    let serving = mesh
        .health(ServiceKind::Orders)
        .await
        .check(HealthCheckRequest::default())
        .await
        .expect("health after oversized call");
    assert_eq!(serving.into_inner().status, ServingStatus::Serving as i32);
    assert!(mesh.shutdown().await.is_empty());
}

/// Health follows the store: when the service's PostgreSQL database stops accepting connections,
/// Watch turns NOT_SERVING (and `/readyz` 503); when it comes back, SERVING again. PostgreSQL
/// only — that is where a store can go away while the process lives.
#[tokio::test]
async fn health_follows_store_readiness() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let mesh = TestMesh::start_with(Backend::Postgres, &[ServiceKind::Orders], false, |config| {
        config.health_poll_secs = 1;
    })
    .await;
    let mut watch = mesh
        .health(ServiceKind::Orders)
        .await
        .watch(HealthCheckRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let mut next_status = async || {
        tokio::time::timeout(LIMIT, watch.next())
            .await
            .expect("a status change in time")
            .expect("stream open")
            .expect("ok")
            .status
    };
    assert_eq!(next_status().await, ServingStatus::Serving as i32);

    let database = mesh.database().expect("postgres mesh");
    database.set_reachable(false).await;
    assert_eq!(next_status().await, ServingStatus::NotServing as i32);
    let admin = mesh.admin_addr(ironmesh_launcher::mesh::Component::Service(
        ServiceKind::Orders,
    ));
    let readyz = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .unwrap();
    assert_eq!(readyz.status().as_u16(), 503);

    database.set_reachable(true).await;
    assert_eq!(next_status().await, ServingStatus::Serving as i32);
    assert!(mesh.shutdown().await.is_empty());
}

/// Each admin port's `/metrics` is valid Prometheus text (checked by `promtool check metrics`
/// when promtool is installed — CI installs it) with the RED series of that service's calls,
/// labelled with the service, method and code.
#[tokio::test]
async fn metrics_record_calls_and_pass_promtool() {
    let mesh = TestMesh::start(
        Backend::Sqlite,
        &[ServiceKind::Auth, ServiceKind::Orders, ServiceKind::Audit],
    )
    .await;
    let admin = mesh.admin_addr(ironmesh_launcher::mesh::Component::Service(
        ServiceKind::Orders,
    ));
    let scrape = || async {
        let response = reqwest::get(format!("http://{admin}/metrics"))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    };
    // The registry is process-wide (other tests in this binary may call ListOrders too under
    // plain `cargo test`), so count the calls as a difference, never as an absolute value.
    let handled = |text: &str| -> (u64, Option<String>) {
        let line = text.lines().find(|line| {
            line.starts_with("ironmesh_grpc_server_handled_total{")
                && line.contains("grpc_method=\"ListOrders\"")
                && line.contains("grpc_code=\"UNAUTHENTICATED\"")
                && line.contains("service=\"orders\"")
        });
        let count = line
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0);
        (count, line.map(str::to_owned))
    };
    let (before, _) = handled(&scrape().await);
    // Calls without credentials: refused by the stack whatever the handler does, so this test
    // keeps meaning the same once orders is built.
    let mut orders = mesh.orders().await;
    for _ in 0..3 {
        let status = orders
            .list_orders(ironmesh::orders::v1::ListOrdersRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let text = scrape().await;
    let (after, line) = handled(&text);
    assert!(line.is_some(), "a handled series for ListOrders:\n{text}");
    assert_eq!(after - before, 3, "three calls counted: {line:?}");
    assert!(
        text.contains("ironmesh_grpc_server_handling_seconds_bucket{"),
        "{text}"
    );
    assert!(
        !text.contains("service=\"audit\""),
        "each admin port shows only its own service's series"
    );

    ironmesh_testkit::metrics::check_with_promtool(&text);
    assert!(mesh.shutdown().await.is_empty());
}
