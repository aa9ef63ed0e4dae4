//! How the delivery engine treats receivers that fail, on both backends: 410 Gone disables the
//! endpoint, 429's Retry-After is a floor, and a redirect is a failure that is never followed
//! (and Redeliver retries it with the same webhook-id). Hanging receivers: `webhook_circuits`.
mod common;
#[path = "common/receiver.rs"]
mod receiver;

use std::time::Duration;

use common::{LIMIT, One, send};
use ironmesh_proto::ironmesh::notification::v1::{self as pb, DeliveryState};
use ironmesh_testkit::{authed, backends, eventually};
use receiver::{Receiver, Reply, await_delivery, create_endpoint, endpoints, is, state, status};
use tonic::Code;

const WEBHOOK: &[pb::Channel] = &[pb::Channel::Webhook];

/// 410 Gone: the delivery FAILS after one attempt, the endpoint is disabled (`disabled_at`),
/// its delivery cannot be redelivered, and a later Send makes no delivery to it — while the
/// user's other endpoint keeps receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_fails_the_delivery_and_disables_the_endpoint() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let user = one.mesh.customer().await;
        let token = user.access_token.as_str();
        let mut client = one.client().await;
        let mut gone = Receiver::start(|_, _| status(410)).await;
        let mut healthy = Receiver::ok().await;
        let (gone_endpoint, _) = create_endpoint(&mut client, token, &gone.url("/gone"), &[]).await;
        let (healthy_endpoint, _) =
            create_endpoint(&mut client, token, &healthy.url("/ok"), &[]).await;
        let first = client
            .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        gone.next().await;
        let id = &first.notification_id;
        let d = await_delivery(
            &mut client,
            token,
            id,
            &gone_endpoint.endpoint_id,
            "failed",
            is(DeliveryState::Failed),
        )
        .await;
        assert_eq!(
            (d.attempts, d.last_status_code),
            (1, 410),
            "{backend:?}: {d:?}"
        );
        assert_eq!(d.last_error, "HTTP 410 (gone)");
        let gone_id = gone_endpoint.endpoint_id.as_str();
        let disabled = eventually("the endpoint disabled", LIMIT, || {
            let mut client = client.clone();
            async move {
                endpoints(&mut client, token)
                    .await
                    .into_iter()
                    .find(|e| e.endpoint_id == gone_id && e.disabled_at.is_some())
            }
        })
        .await;
        assert!(disabled.disabled_at.is_some());
        let all = endpoints(&mut client, token).await;
        let other = all
            .iter()
            .find(|e| e.endpoint_id == healthy_endpoint.endpoint_id)
            .unwrap();
        assert!(
            other.disabled_at.is_none(),
            "only the endpoint that answered 410"
        );
        let redeliver = client
            .redeliver(authed(
                pb::RedeliverRequest {
                    delivery_id: d.delivery_id.clone(),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(redeliver.code(), Code::FailedPrecondition, "{redeliver:?}");

        healthy.next().await;
        let second = client
            .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        let made = receiver::of_notification(&mut client, token, &second.notification_id).await;
        let targets: Vec<&str> = made.iter().map(|d| d.endpoint_id.as_str()).collect();
        assert_eq!(
            targets,
            [healthy_endpoint.endpoint_id.as_str()],
            "{backend:?}: nothing for the disabled endpoint"
        );
        assert_eq!(healthy.next().await.webhook_id(), made[0].delivery_id);
        gone.assert_idle("a disabled endpoint receives nothing more");
        one.stop().await;
    }
}

/// 429 with `Retry-After: 2`: the next attempt comes no sooner than 2 s after the first (the
/// schedule alone would retry after 100 ms), then it is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_retry_after_is_honoured() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let user = one.mesh.customer().await;
        let token = user.access_token.as_str();
        let mut client = one.client().await;
        let mut rx = Receiver::start(|i, _| match i {
            0 => Reply::Status(429, vec![("retry-after", "2".to_owned())]),
            _ => status(200),
        })
        .await;
        let (endpoint, _) = create_endpoint(&mut client, token, &rx.url("/"), &[]).await;
        let sent = client
            .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        let got = rx.take(2).await;
        let gap = got[1].at - got[0].at;
        assert!(
            gap >= Duration::from_secs(2),
            "{backend:?}: retried after {gap:?}"
        );
        assert_eq!(got[0].webhook_id(), got[1].webhook_id());
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
        assert_eq!((d.attempts, d.last_status_code), (2, 200));
        rx.assert_idle("two attempts");
        one.stop().await;
    }
}

/// A 301 whose Location is a second receiver: never followed (the second sees nothing), each
/// attempt a failure with status 301, retried by the schedule until FAILED. Redeliver makes it
/// PENDING and the next request carries the same webhook-id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_redeliver_retries_it() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let user = one.mesh.customer().await;
        let token = user.access_token.as_str();
        let mut client = one.client().await;
        let mut elsewhere = Receiver::ok().await;
        let location = elsewhere.url("/moved");
        // Four attempts (the schedule) are redirected; after the redelivery it accepts.
        let mut rx = Receiver::start(move |i, _| match i {
            0..4 => Reply::Status(301, vec![("location", location.clone())]),
            _ => status(200),
        })
        .await;
        let (endpoint, _) = create_endpoint(&mut client, token, &rx.url("/hook"), &[]).await;
        let sent = client
            .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        let got = rx.take(4).await;
        let id = &sent.notification_id;
        let d = await_delivery(
            &mut client,
            token,
            id,
            &endpoint.endpoint_id,
            "failed",
            is(DeliveryState::Failed),
        )
        .await;
        assert_eq!(
            (d.attempts, d.last_status_code),
            (4, 301),
            "{backend:?}: {d:?}"
        );
        assert_eq!(d.last_error, "redirect not followed (301)");
        assert!(
            got.iter()
                .all(|r| r.path == "/hook" && r.webhook_id() == d.delivery_id)
        );
        rx.assert_idle("four attempts, as the schedule has");
        elsewhere.assert_idle("the Location is never requested");

        let again = client
            .redeliver(authed(
                pb::RedeliverRequest {
                    delivery_id: d.delivery_id.clone(),
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner()
            .delivery
            .unwrap();
        assert_eq!(again.delivery_id, d.delivery_id);
        assert_eq!(
            state(&again),
            DeliveryState::Pending,
            "{backend:?}: Redeliver → PENDING"
        );
        assert!(again.next_attempt_at.is_some());
        let retried = rx.next().await;
        assert_eq!(
            retried.webhook_id(),
            d.delivery_id,
            "the same webhook-id after Redeliver"
        );
        let done = await_delivery(
            &mut client,
            token,
            id,
            &endpoint.endpoint_id,
            "delivered",
            is(DeliveryState::Delivered),
        )
        .await;
        assert_eq!((done.attempts, done.last_status_code), (5, 200));
        elsewhere.assert_idle("still nothing at the Location");
        one.stop().await;
    }
}
