//! The operator's gRPC API over dead letters, served by a real tonic server on 127.0.0.1:0:
//! list and replay as the library does, bad input as INVALID_ARGUMENT with field violations,
//! and the contract marks both methods operator-only.

#[macro_use]
mod support;

use ironmesh_outbox::{EventsAdmin, Outbox};
use ironmesh_proto::ironmesh::events::v1::events_admin_service_client::EventsAdminServiceClient;
use ironmesh_proto::ironmesh::events::v1::events_admin_service_server::EventsAdminServiceServer;
use ironmesh_proto::ironmesh::events::v1::{ListDeadLettersRequest, ReplayDeadLettersRequest};
use prost_reflect::{DescriptorPool, Value};
use support::{Backend, LIMIT, TestDb, TestSink, Verdict, event, fast_config, start_relay, write};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

both_backends!(dead_letters_are_listed_and_replayed_over_grpc);

/// Serves `admin` on a fresh port until the returned sender is dropped or fired.
async fn serve(admin: EventsAdmin) -> (Channel, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EventsAdminServiceServer::new(admin))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(LIMIT)
        .connect_lazy();
    (channel, stop)
}

/// A refused event is listed with its reason, paged; bad page sizes, tokens and a missing
/// subscriber are INVALID_ARGUMENT naming the field; replay over gRPC wakes the relay and the
/// event arrives once.
async fn dead_letters_are_listed_and_replayed_over_grpc(backend: Backend) {
    let mut test = TestDb::create(backend).await;
    let db = test.connect().await;
    let sink = TestSink::start().await;
    sink.set_rule(|_, _| Verdict::Reject {
        reason: "unknown event type".into(),
        retryable: false,
    });
    let outbox = Outbox::new("svc", vec![sink.subscriber("audit", &["*"])]);
    let relay = start_relay(&outbox, &db, fast_config());
    let first = write(&db, &outbox, event("svc.thing.created", "a")).await;
    let second = write(&db, &outbox, event("svc.thing.created", "b")).await;
    support::eventually("two dead letters", || async {
        support::states(&db, "audit").await.get("dead") == Some(&2)
    })
    .await;

    let (channel, _stop) = serve(EventsAdmin::new(db.clone(), outbox.clone())).await;
    let mut client = EventsAdminServiceClient::new(channel);
    let page = client
        .list_dead_letters(ListDeadLettersRequest {
            subscriber: "audit".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.dead_letters.len(), 1);
    let dead = &page.dead_letters[0];
    assert_eq!(dead.event.as_ref(), Some(&first));
    assert_eq!(dead.attempts, 1);
    assert!(dead.last_error.contains("unknown event type"));
    assert!(dead.dead_at.is_some());
    let rest = client
        .list_dead_letters(ListDeadLettersRequest {
            page_token: page.next_page_token.clone(),
            ..ListDeadLettersRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.dead_letters[0].event.as_ref(), Some(&second));
    assert!(rest.next_page_token.is_empty());

    for (request, field) in [
        (
            ListDeadLettersRequest {
                page_size: 501,
                ..ListDeadLettersRequest::default()
            },
            "page_size",
        ),
        (
            ListDeadLettersRequest {
                page_token: "bogus".into(),
                ..ListDeadLettersRequest::default()
            },
            "page_token",
        ),
    ] {
        let status = client.list_dead_letters(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, field);
    }
    let status = client
        .replay_dead_letters(ReplayDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.get_details_bad_request().unwrap().field_violations[0].field,
        "subscriber"
    );

    sink.set_rule(|_, _| Verdict::Accept);
    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            subscriber: "audit".into(),
            event_id: first.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.replayed_count, 1);
    sink.wait_until("the replayed event", |s| s.has_accepted(&first.id))
        .await;
    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            subscriber: "audit".into(),
            event_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.replayed_count, 1);
    sink.wait_until("the other one", |s| s.has_accepted(&second.id))
        .await;
    assert_eq!(sink.with_state(|s| s.accepted.len()), 2);
    relay.stop().await;
    test.drop_database().await;
}

/// Both admin methods carry the access option OPERATOR (a method without one would stop the
/// process from starting).
#[test]
fn admin_methods_are_operator_only_in_the_contract() {
    let pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
    let access = pool
        .get_extension_by_name("ironmesh.api.v1.access")
        .expect("the access option exists");
    let service = pool
        .get_service_by_name("ironmesh.events.v1.EventsAdminService")
        .unwrap();
    let operator = pool
        .get_enum_by_name("ironmesh.api.v1.AccessLevel")
        .unwrap()
        .get_value_by_name("ACCESS_LEVEL_OPERATOR")
        .unwrap()
        .number();
    let methods: Vec<_> = service.methods().collect();
    assert_eq!(methods.len(), 2);
    for method in methods {
        let options = method.options();
        assert!(options.has_extension(&access), "{}", method.full_name());
        let value = options.get_extension(&access);
        let levels = value
            .as_message()
            .unwrap()
            .get_field_by_name("levels")
            .unwrap();
        let Value::List(levels) = &*levels else {
            panic!("levels is a list")
        };
        assert_eq!(
            levels,
            &vec![Value::EnumNumber(operator)],
            "{}",
            method.full_name()
        );
    }
}
