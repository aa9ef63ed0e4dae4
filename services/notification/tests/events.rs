//! Events become notifications exactly once, on both backends: a catalogued event delivered
//! again, and 20 times at once, makes one notification with the catalogue's text (the rest are
//! duplicates); on PostgreSQL the same through two pools as two replicas would; an uncatalogued
//! event is accepted and makes nothing; a customer cannot call the sink. And a real event: a
//! customer's password change at auth reaches their inbox over the backbone.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use common::{LIMIT, One};
use ironmesh_proto::ironmesh::auth::v1 as auth;
use ironmesh_proto::ironmesh::events::v1::{
    self as events, event_sink_service_client::EventSinkServiceClient,
};
use ironmesh_proto::ironmesh::notification::v1 as pb;
use ironmesh_proto::ironmesh::orders::v1 as orders;
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{Backend, PASSWORD, authed, backends, eventually};
use smtp::{Sink, event_of, inbox};
use tonic::Code;

const ORDER: &str = "ironmesh.orders.v1.Order";

fn paid_order(customer: &str) -> orders::Order {
    orders::Order {
        order_id: uuid::Uuid::now_v7().to_string(),
        customer_id: customer.to_owned(),
        status: orders::OrderStatus::Paid.into(),
        lines: vec![orders::OrderLine {
            sku: "MUG".to_owned(),
            product_name: "Mug".to_owned(),
            quantity: 2,
            ..Default::default()
        }],
        total_minor: 2500,
        currency: "EUR".to_owned(),
        payment_reference: "pay-42".to_owned(),
        ..Default::default()
    }
}

/// `n` deliveries of `event` at once, spread over `sinks`: (accepted, duplicates, rejected).
async fn at_once(sinks: &[Sink], event: &events::Event, n: usize) -> (usize, usize, Vec<String>) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (sink, event) = (sinks[i % sinks.len()].clone(), event.clone());
            tokio::spawn(async move { sink.deliver(&[event]).await })
        })
        .collect();
    let (mut accepted, mut duplicates, mut rejected) = (0, 0, Vec::new());
    for task in tasks {
        let r = task.await.unwrap();
        accepted += r.accepted_ids.len();
        duplicates += r.duplicate_ids.len();
        rejected.extend(r.rejected.into_iter().map(|r| r.reason));
    }
    (accepted, duplicates, rejected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catalogued_event_notifies_exactly_once_even_delivered_at_once() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        let sink = Sink::open(one.mesh.config()).await;

        // Once, then again: one notification with the catalogue's text, then a duplicate.
        let order = paid_order(&ada.user_id);
        let paid = event_of("orders.order.paid", ORDER, &order.order_id, &order);
        let first = sink.deliver(std::slice::from_ref(&paid)).await;
        assert_eq!(
            first.accepted_ids,
            std::slice::from_ref(&paid.id),
            "{backend:?}: {first:?}"
        );
        let again = sink.deliver(std::slice::from_ref(&paid)).await;
        assert!(
            again.accepted_ids.is_empty() && again.rejected.is_empty(),
            "{again:?}"
        );
        assert_eq!(again.duplicate_ids, std::slice::from_ref(&paid.id));
        let got = inbox(&mut client, &ada.access_token).await;
        assert_eq!(got.len(), 1, "{backend:?}: one notification");
        let n = &got[0];
        assert_eq!(n.event_type, "orders.order.paid");
        assert_eq!(n.subject, "Payment received");
        assert_eq!(
            n.body,
            format!(
                "We received your payment of 25.00 EUR for order {} (reference pay-42).",
                order.order_id
            )
        );
        assert_eq!(n.source_event_id, paid.id);
        assert_eq!(n.recipient_id, ada.user_id);
        assert_eq!(n.data.get("order_id"), Some(&order.order_id));
        let default_channels: Vec<i32> = [pb::Channel::InApp, pb::Channel::Email]
            .map(i32::from)
            .into();
        assert_eq!(
            n.channels, default_channels,
            "the recipient's default preferences"
        );

        // 20 deliveries of one new event at once: one accepted, 19 duplicates, one notification.
        let order = paid_order(&ada.user_id);
        let paid = event_of("orders.order.paid", ORDER, &order.order_id, &order);
        let (accepted, duplicates, rejected) =
            at_once(std::slice::from_ref(&sink), &paid, 20).await;
        assert_eq!((accepted, duplicates), (1, 19), "{backend:?}: {rejected:?}");
        let got = inbox(&mut client, &ada.access_token).await;
        let made = got.iter().filter(|n| n.source_event_id == paid.id).count();
        assert_eq!(made, 1, "{backend:?}: one notification for 20 deliveries");

        // Two replicas (two pools on one PostgreSQL database) at once: still one.
        if backend == Backend::Postgres {
            let other = Sink::open(one.mesh.config()).await;
            let order = paid_order(&ada.user_id);
            let paid = event_of("orders.order.paid", ORDER, &order.order_id, &order);
            let (accepted, duplicates, rejected) = at_once(&[sink.clone(), other], &paid, 20).await;
            assert_eq!((accepted, duplicates), (1, 19), "{rejected:?}");
            let got = inbox(&mut client, &ada.access_token).await;
            assert_eq!(
                got.iter().filter(|n| n.source_event_id == paid.id).count(),
                1
            );
        }

        // The same event twice in one batch: its id is answered once (accepted), one notification.
        let order = paid_order(&ada.user_id);
        let twice = event_of("orders.order.paid", ORDER, &order.order_id, &order);
        let answer = sink.deliver(&[twice.clone(), twice.clone()]).await;
        assert_eq!(
            answer.accepted_ids,
            std::slice::from_ref(&twice.id),
            "{backend:?}"
        );
        assert!(
            answer.duplicate_ids.is_empty() && answer.rejected.is_empty(),
            "{answer:?}"
        );
        let got = inbox(&mut client, &ada.access_token).await;
        assert_eq!(
            got.iter().filter(|n| n.source_event_id == twice.id).count(),
            1
        );

        // Not in the catalogue: accepted (nothing to retry), nothing made.
        let before = inbox(&mut client, &ada.access_token).await.len();
        let order = paid_order(&ada.user_id);
        let created = event_of("orders.order.created", ORDER, &order.order_id, &order);
        let answer = sink.deliver(std::slice::from_ref(&created)).await;
        assert_eq!(
            answer.accepted_ids,
            std::slice::from_ref(&created.id),
            "{backend:?}"
        );
        assert_eq!(inbox(&mut client, &ada.access_token).await.len(), before);

        // A catalogued type whose payload is not its message: refused for good.
        let mut garbled = event_of("orders.order.paid", ORDER, &order.order_id, &order);
        garbled.payload = vec![0xff, 0xff, 0xff];
        let answer = sink.deliver(std::slice::from_ref(&garbled)).await;
        assert_eq!(answer.rejected.len(), 1, "{backend:?}: {answer:?}");
        assert!(!answer.rejected[0].retryable);
        assert_eq!(inbox(&mut client, &ada.access_token).await.len(), before);

        // Over gRPC the sink is for services only: a customer's call is refused, nothing made.
        let channel = one.mesh.channel(ServiceKind::Notification).await;
        let mut grpc = EventSinkServiceClient::new(channel);
        let order = paid_order(&ada.user_id);
        let forged = event_of("orders.order.paid", ORDER, &order.order_id, &order);
        let request = events::DeliverRequest {
            events: vec![forged],
        };
        let err = grpc
            .deliver(authed(request, &ada.access_token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{backend:?}: {err:?}");
        assert_eq!(inbox(&mut client, &ada.access_token).await.len(), before);
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_at_auth_reaches_the_users_inbox() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let ada = one.mesh.customer().await;
        let bob = one.mesh.customer().await;
        let mut auth_client = one.mesh.auth().await;
        auth_client
            .change_password(authed(
                auth::ChangePasswordRequest {
                    current_password: PASSWORD.to_owned(),
                    new_password: "an entirely new passphrase".to_owned(),
                    revoke_other_sessions: true,
                },
                &ada.access_token,
            ))
            .await
            .unwrap_or_else(|s| panic!("{backend:?}: ChangePassword: {s:?}"));

        let mut client = one.client().await;
        let n = eventually("the password_changed notification", LIMIT, || {
            let (mut client, token) = (client.clone(), ada.access_token.clone());
            async move {
                inbox(&mut client, &token)
                    .await
                    .into_iter()
                    .find(|n| n.event_type == "auth.user.password_changed")
            }
        })
        .await;
        assert_eq!(n.subject, "Your password was changed", "{backend:?}");
        assert_eq!(n.recipient_id, ada.user_id);
        assert!(!n.source_event_id.is_empty(), "made from an event");
        assert!(n.body.contains("session(s) were signed out"), "{}", n.body);
        let all = inbox(&mut client, &ada.access_token).await;
        assert_eq!(all.len(), 1, "{backend:?}: exactly one");
        assert!(
            inbox(&mut client, &bob.access_token).await.is_empty(),
            "only Ada is told"
        );
        one.stop().await;
    }
}
