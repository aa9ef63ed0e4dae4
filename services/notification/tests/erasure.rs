//! GDPR erasure, on both backends: a customer deleting their account at auth (DeleteMyAccount,
//! whose `auth.user.deleted` reaches notification over the backbone) erases their
//! notifications, deliveries, webhook endpoints and preferences here — read in notification's
//! own tables and through the API as an operator — while another user's stay; a later event
//! about them makes nothing; and an erasure racing events about the same user leaves nothing.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use common::{LIMIT, One, send};
use ironmesh_proto::ironmesh::auth::v1 as auth;
use ironmesh_proto::ironmesh::notification::v1::{self as pb, Channel};
use ironmesh_proto::ironmesh::orders::v1 as orders;
use ironmesh_runtime::with_pool;
use ironmesh_testkit::{PASSWORD, Session, authed, backends, eventually};
use smtp::{Client, Sink, database, deliveries_of, event_of, free_port, rows_of};
use tonic::Code;

const ORDER: &str = "ironmesh.orders.v1.Order";

fn paid(customer: &str) -> ironmesh_proto::ironmesh::events::v1::Event {
    let order = orders::Order {
        order_id: uuid::Uuid::now_v7().to_string(),
        customer_id: customer.to_owned(),
        total_minor: 1000,
        currency: "EUR".to_owned(),
        ..Default::default()
    };
    event_of("orders.order.paid", ORDER, &order.order_id, &order)
}

/// Gives `user` an endpoint, preferences and two notifications with email and webhook
/// deliveries; returns the notification ids.
async fn populate(one: &One, client: &mut Client, user: &Session, hook_port: u16) -> Vec<String> {
    let endpoint = pb::WebhookEndpoint {
        url: format!("http://127.0.0.1:{hook_port}/hook"),
        ..Default::default()
    };
    client
        .create_webhook_endpoint(authed(
            pb::CreateWebhookEndpointRequest {
                endpoint: Some(endpoint),
            },
            &user.access_token,
        ))
        .await
        .unwrap_or_else(|s| panic!("CreateWebhookEndpoint: {s:?}"));
    let preferences = pb::NotificationPreferences {
        default_channels: vec![Channel::InApp.into()],
        ..Default::default()
    };
    client
        .set_preferences(authed(
            pb::SetPreferencesRequest {
                preferences: Some(preferences),
            },
            &user.access_token,
        ))
        .await
        .unwrap_or_else(|s| panic!("SetPreferences: {s:?}"));
    let mut ids = Vec::new();
    for i in 0..2 {
        let channels = [Channel::InApp, Channel::Email, Channel::Webhook];
        let request = send(
            &user.user_id,
            "billing.invoice.issued",
            &format!("{}-{i}", user.user_id),
            &channels,
        );
        let n = client
            .send(one.op(request))
            .await
            .unwrap_or_else(|s| panic!("Send: {s:?}"))
            .into_inner()
            .notification
            .unwrap();
        ids.push(n.notification_id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_erases_the_users_data_here_and_only_theirs() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let (ada, bob) = (one.mesh.customer().await, one.mesh.customer().await);
        let mut client = one.client().await;
        let hook_port = free_port();
        let adas = populate(&one, &mut client, &ada, hook_port).await;
        let bobs = populate(&one, &mut client, &bob, hook_port).await;
        let db = database(one.mesh.config()).await;
        let everything = [2, 4, 1, 1];
        assert_eq!(rows_of(&db, &ada.user_id).await, everything, "{backend:?}");
        assert_eq!(rows_of(&db, &bob.user_id).await, everything);

        one.mesh
            .auth()
            .await
            .delete_my_account(authed(
                auth::DeleteMyAccountRequest {
                    password: PASSWORD.to_owned(),
                    ..Default::default()
                },
                &ada.access_token,
            ))
            .await
            .unwrap_or_else(|s| panic!("{backend:?}: DeleteMyAccount: {s:?}"));

        // auth.user.deleted arrives through the relay and erases every row of Ada's.
        eventually("Ada's rows erased", LIMIT, || {
            let (db, user) = (db.clone(), ada.user_id.clone());
            async move { (rows_of(&db, &user).await == [0; 4]).then_some(()) }
        })
        .await;
        assert_eq!(
            rows_of(&db, &bob.user_id).await,
            everything,
            "{backend:?}: Bob's stay"
        );
        let (tombstones,): (i64,) = with_pool!(&db, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM erased_users WHERE user_id = $1"
        ).bind(&ada.user_id).fetch_one(pool).await.unwrap());
        assert_eq!(tombstones, 1, "only the id is remembered");

        // The operator's view: Ada's notifications and deliveries are gone, Bob's are there.
        for id in &adas {
            let get = pb::GetNotificationRequest {
                notification_id: id.clone(),
            };
            let err = client.get_notification(one.op(get)).await.unwrap_err();
            assert_eq!(err.code(), Code::NotFound, "{backend:?}");
            assert!(
                deliveries_of(&mut client, &one.admin.access_token, id)
                    .await
                    .is_empty()
            );
        }
        for id in &bobs {
            let get = pb::GetNotificationRequest {
                notification_id: id.clone(),
            };
            client.get_notification(one.op(get)).await.unwrap();
            let of = deliveries_of(&mut client, &one.admin.access_token, id).await;
            assert_eq!(
                of.len(),
                2,
                "{backend:?}: Bob's email and webhook deliveries"
            );
        }
        let bobs_endpoints = client
            .list_webhook_endpoints(authed(
                pb::ListWebhookEndpointsRequest::default(),
                &bob.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .endpoints;
        assert_eq!(bobs_endpoints.len(), 1);

        // A later event about Ada makes nothing (and is remembered as handled); a Send to her is
        // refused, for auth no longer knows her.
        let sink = Sink::open(one.mesh.config()).await;
        let late = paid(&ada.user_id);
        let answer = sink.deliver(std::slice::from_ref(&late)).await;
        assert_eq!(
            answer.accepted_ids,
            std::slice::from_ref(&late.id),
            "{backend:?}: {answer:?}"
        );
        let again = sink.deliver(std::slice::from_ref(&late)).await;
        assert_eq!(again.duplicate_ids, std::slice::from_ref(&late.id));
        let to_ada = send(
            &ada.user_id,
            "billing.invoice.issued",
            "",
            &[Channel::InApp],
        );
        let err = client.send(one.op(to_ada)).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{backend:?}");
        assert_eq!(rows_of(&db, &ada.user_id).await, [0; 4]);
        db.close().await;
        one.stop().await;
    }
}

/// An erasure delivered while events about the same user are being applied: whichever order
/// they take, nothing of the user remains (a notification written first is erased, one written
/// after is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erasure_racing_events_about_the_user_leaves_nothing() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let (cy, dee) = (one.mesh.customer().await, one.mesh.customer().await);
        let sinks = [
            Sink::open(one.mesh.config()).await,
            Sink::open(one.mesh.config()).await,
        ];
        let deleted = event_of(
            "auth.user.deleted",
            "ironmesh.auth.v1.UserDeleted",
            &cy.user_id,
            &auth::UserDeleted {
                user_id: cy.user_id.clone(),
            },
        );
        let mut tasks = Vec::new();
        for i in 0..20 {
            let sink = sinks[i % 2].clone();
            let event = if i == 10 {
                deleted.clone()
            } else {
                paid(&cy.user_id)
            };
            tasks.push(tokio::spawn(async move { sink.deliver(&[event]).await }));
        }
        tasks.push(tokio::spawn({
            let (sink, event) = (sinks[0].clone(), paid(&dee.user_id));
            async move { sink.deliver(&[event]).await }
        }));
        for task in tasks {
            let answer = task.await.unwrap();
            assert_eq!(answer.accepted_ids.len(), 1, "{backend:?}: {answer:?}");
        }
        let db = database(one.mesh.config()).await;
        assert_eq!(
            rows_of(&db, &cy.user_id).await,
            [0; 4],
            "{backend:?}: nothing of Cy"
        );
        let dees = rows_of(&db, &dee.user_id).await;
        assert_eq!(dees[0], 1, "{backend:?}: Dee's notification stays");
        db.close().await;
        one.stop().await;
    }
}
