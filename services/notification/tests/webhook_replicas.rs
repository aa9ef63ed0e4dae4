//! Exactly once across replicas (PostgreSQL only: two notification processes on one
//! database): Sends through both replicas to one endpoint reach the receiver once each — both
//! engines claim from the same queue, and a claimed row is no one else's.
mod common;
#[path = "common/receiver.rs"]
mod receiver;

use std::collections::HashMap;

use common::{LIMIT, Two, send};
use ironmesh_proto::ironmesh::notification::v1::{self as pb, DeliveryState};
use ironmesh_testkit::{Backend, backends, eventually};
use receiver::{Receiver, create_endpoint, deliveries, state};

const SENDS: usize = 100;

/// 100 Sends, alternating between the replicas and ten at a time: the receiver sees each
/// webhook-id exactly once, and every delivery is DELIVERED after one attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_each_webhook_exactly_once() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let two = Two::start(|_| {}).await;
    let user = two.first.customer().await;
    let token = user.access_token.as_str();
    let mut first = two.first.notification().await;
    let second = two.second.notification().await;
    let mut rx = Receiver::ok().await;
    let (endpoint, _) = create_endpoint(&mut first, token, &rx.url("/"), &[]).await;

    let mut notifications = Vec::with_capacity(SENDS);
    for batch in 0..SENDS / 10 {
        let calls = (0..10).map(|i| {
            let mut client = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let request = two.op(send(
                &user.user_id,
                "orders.order.paid",
                &format!("replicas-{batch}-{i}"),
                &[pb::Channel::Webhook],
            ));
            async move { client.send(request).await }
        });
        for sent in futures_util::future::join_all(calls).await {
            notifications.push(sent.expect("Send").into_inner().notification.unwrap());
        }
    }

    let got = rx.take(SENDS).await;
    let filter = pb::ListDeliveriesRequest {
        endpoint_id: endpoint.endpoint_id.clone(),
        ..Default::default()
    };
    let rows = eventually("every delivery DELIVERED", LIMIT, || {
        let (mut client, filter) = (first.clone(), filter.clone());
        async move {
            let rows = deliveries(&mut client, token, filter).await;
            let done = rows.iter().all(|d| state(d) == DeliveryState::Delivered);
            (rows.len() == SENDS && done).then_some(rows)
        }
    })
    .await;
    rx.assert_idle("one request per delivery");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for request in &got {
        *seen.entry(request.webhook_id()).or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "webhook-ids received more than once: {repeated:?}"
    );
    for d in &rows {
        assert_eq!(
            seen.get(d.delivery_id.as_str()),
            Some(&1),
            "delivery {} reached the receiver once",
            d.delivery_id
        );
        assert_eq!(d.attempts, 1, "{d:?}");
    }
    let mut sent: Vec<&str> = notifications
        .iter()
        .map(|n| n.notification_id.as_str())
        .collect();
    let mut delivered: Vec<&str> = rows.iter().map(|d| d.notification_id.as_str()).collect();
    sent.sort_unstable();
    delivered.sort_unstable();
    assert_eq!(sent, delivered, "one delivery per Send");
    two.stop().await;
}
