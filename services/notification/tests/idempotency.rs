//! Send is idempotent per key on both backends: a repeat returns the original, a different
//! request under the same key is refused naming the key, and the same key sent concurrently —
//! on PostgreSQL also through two replicas — makes exactly one notification and one delivery.

mod common;

use common::{One, Two, send};
use futures_util::future::join_all;
use ironmesh_proto::ironmesh::notification::v1::{self as pb, Channel};
use ironmesh_testkit::{Backend, authed, backends};
use tonic::Code;

const CALLS: usize = 24;

/// The ids `CALLS` concurrent Sends of one key through `clients` (round-robin) answered with.
async fn hammer(clients: &[common::Client], token: &str, to: &str) -> Vec<String> {
    let calls = (0..CALLS).map(|i| {
        let mut client = clients[i % clients.len()].clone();
        let request = authed(
            send(
                to,
                "shop.sale.started",
                "same-key",
                &[Channel::InApp, Channel::Email],
            ),
            token,
        );
        async move { client.send(request).await }
    });
    join_all(calls)
        .await
        .into_iter()
        .map(|r| {
            r.expect("every repeat succeeds")
                .into_inner()
                .notification
                .unwrap()
                .notification_id
        })
        .collect()
}

async fn assert_one(
    client: &mut common::Client,
    admin: &str,
    to: &str,
    token: &str,
    ids: &[String],
) {
    assert!(
        ids.iter().all(|id| id == &ids[0]),
        "one notification for one key: {ids:?}"
    );
    let inbox = client
        .list_notifications(authed(pb::ListNotificationsRequest::default(), token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.notifications.len(), 1, "for {to}");
    let deliveries = client
        .list_deliveries(authed(
            pb::ListDeliveriesRequest {
                notification_id: ids[0].clone(),
                ..Default::default()
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deliveries.deliveries.len(), 1, "one email delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_returns_the_original_and_a_changed_request_is_refused() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        let request = send(
            &ada.user_id,
            "shop.sale.started",
            "sale-1",
            &[Channel::InApp],
        );
        let first = client
            .send(one.op(request.clone()))
            .await
            .unwrap()
            .into_inner();
        let again = client
            .send(one.op(request.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first, again, "{backend:?}: the original, unchanged");

        let mut changed = request;
        changed.subject = "Another subject".into();
        let refused = client.send(one.op(changed)).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(ironmesh_testkit::violations(&refused), ["idempotency_key"]);

        // Without a key every Send is new.
        let unkeyed = send(&ada.user_id, "shop.sale.started", "", &[Channel::InApp]);
        let a = client
            .send(one.op(unkeyed.clone()))
            .await
            .unwrap()
            .into_inner();
        let b = client.send(one.op(unkeyed)).await.unwrap().into_inner();
        assert_ne!(
            a.notification.unwrap().notification_id,
            b.notification.unwrap().notification_id
        );
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_of_one_key_make_one_notification() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let ada = one.mesh.customer().await;
        let client = one.client().await;
        let ids = hammer(
            std::slice::from_ref(&client),
            &one.admin.access_token,
            &ada.user_id,
        )
        .await;
        assert_one(
            &mut client.clone(),
            &one.admin.access_token,
            &ada.user_id,
            &ada.access_token,
            &ids,
        )
        .await;
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgres_make_one_notification_per_key() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let two = Two::start(|_| {}).await;
    let ada = two.first.customer().await;
    let clients = [
        two.first.notification().await,
        two.second.notification().await,
    ];
    let ids = hammer(&clients, &two.admin.access_token, &ada.user_id).await;
    assert_one(
        &mut clients[1].clone(),
        &two.admin.access_token,
        &ada.user_id,
        &ada.access_token,
        &ids,
    )
    .await;
    two.stop().await;
}
