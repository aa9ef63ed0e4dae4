//! Outgoing webhooks end to end, on both backends: a user registers an endpoint through the
//! API, an operator Sends on CHANNEL_WEBHOOK, and a real receiver on loopback (scripted per
//! test) gets Standard Webhooks requests that Python's independent `standardwebhooks` verifies;
//! retries keep the webhook-id and re-sign with fresh timestamps; a rotation signs with both
//! secrets for its grace and only the new one after; deleting an endpoint abandons its queue.
mod common;
#[path = "common/receiver.rs"]
mod receiver;

use std::time::Duration;

use axum::body::Bytes;
use common::{One, send};
use ironmesh_notification::signing::Secret;
use ironmesh_proto::ironmesh::notification::v1::{self as pb, DeliveryState};
use ironmesh_runtime::ServiceKind;
use ironmesh_runtime::storage::Database;
use ironmesh_testkit::{TestMesh, authed, backends};
use receiver::{
    Receiver, Verifier, await_delivery, create_endpoint, deliveries, endpoints, is, state, status,
};
use tonic::Code;

const WEBHOOK: &[pb::Channel] = &[pb::Channel::Webhook];

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A delivered webhook carries webhook-id (the delivery id), a current webhook-timestamp, one
/// `v1,` signature and the JSON envelope; Python verifies it with the secret CreateWebhook-
/// Endpoint returned and refuses it with another secret or a changed body; the delivery reads
/// DELIVERED after one attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_webhook_is_signed_and_verifies_independently() {
    let Some(verifier) = Verifier::new() else {
        return;
    };
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let user = one.mesh.customer().await;
        let token = user.access_token.as_str();
        let mut client = one.client().await;
        let mut rx = Receiver::ok().await;
        let (endpoint, secret) =
            create_endpoint(&mut client, token, &rx.url("/hooks/1"), &[]).await;
        assert!(secret.starts_with("whsec_"), "the secret's documented form");
        let sent = client
            .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();

        let got = rx.next().await;
        let id = &sent.notification_id;
        let d = await_delivery(
            &mut client,
            token,
            id,
            &endpoint.endpoint_id,
            "delivered",
            is(DeliveryState::Delivered),
        )
        .await;
        assert_eq!(got.path, "/hooks/1");
        assert_eq!(
            got.webhook_id(),
            d.delivery_id,
            "{backend:?}: webhook-id is the delivery id"
        );
        assert!(
            (unix_now() - got.timestamp()).abs() <= 60,
            "a current timestamp"
        );
        let signatures = got.signatures();
        assert_eq!(signatures.len(), 1, "one secret, one signature");
        assert!(signatures[0].starts_with("v1,"), "a v1 signature");
        assert_eq!(got.header("content-type"), "application/json");
        let body = got.json();
        assert_eq!(body["type"], "orders.order.paid");
        assert_eq!(body["notification_id"], sent.notification_id.as_str());
        assert_eq!(body["recipient_id"], user.user_id.as_str());
        assert_eq!(body["data"]["k"], "v");

        assert!(
            verifier.verifies(&secret, &got).await,
            "{backend:?}: python verifies with the endpoint's secret"
        );
        let stranger = Secret::generate().expose();
        assert!(
            !verifier.verifies(&stranger, &got).await,
            "another secret must not verify"
        );
        let mut tampered = got.clone();
        tampered.body = Bytes::from(String::from_utf8_lossy(&got.body).replace("paid", "void"));
        assert!(
            !verifier.verifies(&secret, &tampered).await,
            "a changed body must not verify"
        );

        assert_eq!(
            (d.attempts, d.last_status_code, d.last_error.as_str()),
            (1, 200, "")
        );
        assert_eq!(d.channel, i32::from(pb::Channel::Webhook));
        assert!(d.delivered_at.is_some() && d.next_attempt_at.is_none());
        rx.assert_idle("one delivery, one request");
        one.stop().await;
    }
}

/// 500, 500, then 200: exactly three attempts with one webhook-id, growing gaps as the
/// schedule says, non-decreasing timestamps, each signature valid for its own timestamp; the
/// delivery is DELIVERED after 3 attempts with status 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_by_schedule_with_the_same_id() {
    let Some(verifier) = Verifier::new() else {
        return;
    };
    for backend in backends() {
        // Gaps far enough apart that the engine's poll (100 ms) cannot reorder them.
        let one = One::start(backend, |s| s.retry_schedule_ms = vec![0, 200, 1500, 1500]).await;
        let user = one.mesh.customer().await;
        let token = user.access_token.as_str();
        let mut client = one.client().await;
        let mut rx = Receiver::start(|i, _| status(if i < 2 { 500 } else { 200 })).await;
        let (endpoint, secret) = create_endpoint(&mut client, token, &rx.url("/"), &[]).await;
        let sent = client
            .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();

        let got = rx.take(3).await;
        let id = &sent.notification_id;
        let d = await_delivery(
            &mut client,
            token,
            id,
            &endpoint.endpoint_id,
            "delivered",
            is(DeliveryState::Delivered),
        )
        .await;
        assert_eq!(
            (d.attempts, d.last_status_code, d.last_error.as_str()),
            (3, 200, ""),
            "{backend:?}"
        );
        rx.assert_idle("exactly three attempts");
        for request in &got {
            assert_eq!(
                request.webhook_id(),
                d.delivery_id,
                "every attempt has the same webhook-id"
            );
            assert!(
                verifier.verifies(&secret, request).await,
                "each attempt verifies with its own timestamp"
            );
        }
        let (first, second) = (got[1].at - got[0].at, got[2].at - got[1].at);
        assert!(
            first >= Duration::from_millis(180),
            "first retry after {first:?}"
        );
        assert!(
            second >= Duration::from_millis(720),
            "second retry after {second:?}"
        );
        assert!(second > first, "gaps grow: {first:?} then {second:?}");
        let stamps: Vec<i64> = got.iter().map(|r| r.timestamp()).collect();
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "timestamps never go back: {stamps:?}"
        );
        assert!(
            (unix_now() - stamps[2]).abs() <= 60,
            "the last timestamp is fresh"
        );
        one.stop().await;
    }
}

/// Moves a rotation's grace into the past (no API can; the column is store/endpoints.rs's).
async fn expire_previous_secret(mesh: &TestMesh, endpoint_id: &str) {
    let url = mesh.config().database_url(ServiceKind::Notification);
    let db = Database::connect(&url, ServiceKind::Notification.name())
        .await
        .expect("open the notification database");
    let past = chrono::Utc::now().timestamp_millis() - 60_000;
    let sql = "UPDATE webhook_endpoints SET previous_expires_ms = $1 \
         WHERE id = $2 AND previous_secret IS NOT NULL";
    let changed = ironmesh_runtime::with_pool!(&db, pool => sqlx::query(sql)
        .bind(past)
        .bind(endpoint_id)
        .execute(pool)
        .await
        .expect("update the grace")
        .rows_affected());
    assert_eq!(changed, 1, "the endpoint holds a previous secret");
    ironmesh_runtime::with_pool!(&db, pool => pool.close().await);
}

/// RotateWebhookSecret: during the grace each delivery carries two `v1,` signatures and Python
/// verifies the message with the old secret alone and with the new one alone; after the grace
/// one signature, which only the new secret verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_signs_with_both_secrets_until_its_grace_ends() {
    let Some(verifier) = Verifier::new() else {
        return;
    };
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let user = one.mesh.customer().await;
        let token = user.access_token.as_str();
        let mut client = one.client().await;
        let mut rx = Receiver::ok().await;
        let (endpoint, old) = create_endpoint(&mut client, token, &rx.url("/"), &[]).await;
        let rotate = pb::RotateWebhookSecretRequest {
            endpoint_id: endpoint.endpoint_id.clone(),
        };
        let rotated = client
            .rotate_webhook_secret(authed(rotate, token))
            .await
            .unwrap()
            .into_inner();
        let new = rotated.signing_secret;
        assert!(
            new.starts_with("whsec_") && new != old,
            "a different secret"
        );
        let until = rotated
            .previous_secret_expires_at
            .expect("the grace's end")
            .seconds;
        let grace = until - unix_now();
        assert!(
            (24 * 3600 - 60..=24 * 3600).contains(&grace),
            "a 24 h grace, got {grace} s"
        );
        let stranger = Secret::generate().expose();

        client
            .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
            .await
            .unwrap();
        let during = rx.next().await;
        let signatures = during.signatures();
        assert_eq!(
            signatures.len(),
            2,
            "{backend:?}: both secrets sign during the grace"
        );
        assert!(signatures.iter().all(|s| s.starts_with("v1,")));
        assert!(
            verifier.verifies(&old, &during).await,
            "the old secret alone verifies"
        );
        assert!(
            verifier.verifies(&new, &during).await,
            "the new secret alone verifies"
        );
        assert!(
            !verifier.verifies(&stranger, &during).await,
            "another secret does not"
        );

        expire_previous_secret(&one.mesh, &endpoint.endpoint_id).await;
        client
            .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
            .await
            .unwrap();
        let after = rx.next().await;
        assert_ne!(after.webhook_id(), during.webhook_id());
        assert_eq!(
            after.signatures().len(),
            1,
            "{backend:?}: one signature after the grace"
        );
        assert!(
            verifier.verifies(&new, &after).await,
            "the new secret verifies"
        );
        assert!(
            !verifier.verifies(&old, &after).await,
            "the old secret no longer does"
        );
        one.stop().await;
    }
}

/// DeleteWebhookEndpoint fails the endpoint's PENDING deliveries (abandoned, as the proto
/// says), they cannot be redelivered, only the owner can delete, and a second delete is
/// NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_endpoint_abandons_its_pending_deliveries() {
    for backend in backends() {
        // After the first (failed) attempt the next is a minute away: the rows stay PENDING.
        let one = One::start(backend, |s| s.retry_schedule_ms = vec![0, 60_000]).await;
        let (user, other) = (one.mesh.customer().await, one.mesh.customer().await);
        let token = user.access_token.as_str();
        let mut client = one.client().await;
        let mut rx = Receiver::start(|_, _| status(500)).await;
        let (endpoint, _) = create_endpoint(&mut client, token, &rx.url("/"), &[]).await;
        let endpoint_id = endpoint.endpoint_id.clone();
        for _ in 0..3 {
            client
                .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
                .await
                .unwrap();
        }
        rx.take(3).await;
        let filter = || pb::ListDeliveriesRequest {
            endpoint_id: endpoint_id.clone(),
            ..Default::default()
        };
        ironmesh_testkit::eventually("three failed first attempts", common::LIMIT, || {
            let mut client = client.clone();
            async move {
                let rows = deliveries(&mut client, token, filter()).await;
                let waiting = rows.iter().filter(|d| {
                    state(d) == DeliveryState::Pending
                        && d.attempts == 1
                        && d.last_status_code == 500
                });
                (waiting.count() == 3).then_some(())
            }
        })
        .await;

        let delete = || pb::DeleteWebhookEndpointRequest {
            endpoint_id: endpoint_id.clone(),
        };
        let foreign = client
            .delete_webhook_endpoint(authed(delete(), &other.access_token))
            .await
            .unwrap_err();
        assert_eq!(
            foreign.code(),
            Code::NotFound,
            "another user's endpoint is not found"
        );
        client
            .delete_webhook_endpoint(authed(delete(), token))
            .await
            .unwrap_or_else(|s| panic!("{backend:?}: delete: {s:?}"));

        let rows = deliveries(&mut client, token, filter()).await;
        assert_eq!(rows.len(), 3);
        for d in &rows {
            assert_eq!(state(d), DeliveryState::Failed, "{backend:?}: abandoned");
            assert_eq!(d.last_error, "the endpoint was deleted");
            assert!(d.next_attempt_at.is_none());
        }
        let again = client
            .redeliver(authed(
                pb::RedeliverRequest {
                    delivery_id: rows[0].delivery_id.clone(),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
        let twice = client
            .delete_webhook_endpoint(authed(delete(), token))
            .await
            .unwrap_err();
        assert_eq!(twice.code(), Code::NotFound, "{backend:?}: a second delete");
        assert!(endpoints(&mut client, token).await.is_empty());
        rx.assert_idle("nothing more after the delete");
        one.stop().await;
    }
}
