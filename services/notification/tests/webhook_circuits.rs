//! Per-target isolation in the delivery engine, on both backends: a receiver that never
//! answers times out and opens its own circuit while other endpoints' deliveries keep
//! arriving; once it answers again, the half-open probe closes the circuit and its backlog is
//! delivered.
mod common;
#[path = "common/receiver.rs"]
mod receiver;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{LIMIT, One, send};
use ironmesh_proto::ironmesh::notification::v1::{self as pb, DeliveryState};
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{Component, backends, eventually, metrics};
use receiver::{Receiver, Reply, create_endpoint, deliveries, state, status};

const WEBHOOK: &[pb::Channel] = &[pb::Channel::Webhook];

fn by_endpoint(id: &str) -> pb::ListDeliveriesRequest {
    pb::ListDeliveriesRequest {
        endpoint_id: id.to_owned(),
        ..Default::default()
    }
}

fn open_circuits(text: &str) -> f64 {
    let labels = [("channel", "webhook"), ("state", "open")];
    metrics::sample(text, "ironmesh_notification_circuits", &labels).unwrap_or(0.0)
}

/// A receiver that never answers: its attempts time out (last_error says so) and its circuit
/// opens (the circuit gauge on /metrics; the receiver sees no more than the per-target cap plus
/// the breaker's threshold of requests), while another user's endpoint gets all of its
/// deliveries — with so few slots in the process that, without the per-target cap, the
/// hanging one would hold them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_opens_its_circuit_without_holding_up_others() {
    const N: usize = 8;
    for backend in backends() {
        let one = One::start(backend, |s| {
            s.attempt_timeout_ms = 1_000;
            s.max_in_flight = 4;
            s.per_target_concurrency = 2;
            s.breaker_failures = 2;
            s.breaker_cool_down_ms = 120_000;
        })
        .await;
        let admin = one
            .mesh
            .admin_addr(Component::Service(ServiceKind::Notification));
        // The gauge is process-wide: wait for this mesh's engine to have exported its own.
        eventually("a fresh circuit gauge", LIMIT, || async move {
            (open_circuits(&metrics::scrape(admin).await) == 0.0).then_some(())
        })
        .await;
        let (stuck_user, fine_user) = (one.mesh.customer().await, one.mesh.customer().await);
        let mut client = one.client().await;
        let mut hanging = Receiver::start(|_, _| Reply::Hang).await;
        let mut fine = Receiver::ok().await;
        let stuck_token = stuck_user.access_token.as_str();
        let (stuck, _) = create_endpoint(&mut client, stuck_token, &hanging.url("/"), &[]).await;
        let fine_token = fine_user.access_token.as_str();
        let (healthy, _) = create_endpoint(&mut client, fine_token, &fine.url("/"), &[]).await;
        // The hanging endpoint's deliveries first: they are due (and claimed) first.
        for (user, count) in [(&stuck_user, N), (&fine_user, N)] {
            for _ in 0..count {
                client
                    .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
                    .await
                    .unwrap();
            }
        }

        fine.take(N).await;
        eventually("every healthy delivery DELIVERED", LIMIT, || {
            let mut client = client.clone();
            let filter = by_endpoint(&healthy.endpoint_id);
            async move {
                let rows = deliveries(&mut client, fine_token, filter).await;
                let delivered = rows.iter().filter(|d| state(d) == DeliveryState::Delivered);
                (delivered.count() == N).then_some(())
            }
        })
        .await;
        let stuck_rows =
            deliveries(&mut client, stuck_token, by_endpoint(&stuck.endpoint_id)).await;
        assert_eq!(stuck_rows.len(), N);
        assert!(
            stuck_rows
                .iter()
                .all(|d| state(d) == DeliveryState::Pending),
            "{backend:?}: the hanging endpoint's deliveries are still not delivered: {stuck_rows:?}"
        );

        let timed_out = eventually("a hanging attempt timed out", LIMIT, || {
            let mut client = client.clone();
            let filter = by_endpoint(&stuck.endpoint_id);
            async move {
                let rows = deliveries(&mut client, stuck_token, filter).await;
                rows.into_iter()
                    .find(|d| d.last_error.contains("timed out"))
            }
        })
        .await;
        assert!(
            timed_out.attempts >= 1 && timed_out.last_status_code == 0,
            "{backend:?}: a timeout is an attempt without an answer: {timed_out:?}"
        );
        assert_eq!(state(&timed_out), DeliveryState::Pending, "retried later");
        eventually(
            "the hanging endpoint's circuit open",
            LIMIT,
            || async move { (open_circuits(&metrics::scrape(admin).await) >= 1.0).then_some(()) },
        )
        .await;
        assert!(hanging.count() >= 1, "the hanging receiver was tried");
        assert!(
            hanging.count() <= 4,
            "{backend:?}: an open circuit stops attempts, {} made",
            hanging.count()
        );
        hanging.next().await;
        one.stop().await;
    }
}

/// A receiver that hangs until the test lets it answer: its attempts time out (two in a row
/// open its circuit here); once it answers 200, the half-open probe gets through, the circuit
/// closes and every queued delivery is DELIVERED with status 200 — none sent more often than
/// it was attempted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_receiver_closes_its_circuit_and_gets_its_backlog() {
    const N: usize = 4;
    for backend in backends() {
        let one = One::start(backend, |s| {
            s.attempt_timeout_ms = 1_000;
            s.per_target_concurrency = 2;
            s.breaker_failures = 2;
            s.breaker_cool_down_ms = 1_000;
            // Enough attempts that none runs out while the receiver hangs.
            s.retry_schedule_ms = vec![0, 100, 100, 100, 100, 100, 100, 100, 100, 100];
        })
        .await;
        let user = one.mesh.customer().await;
        let token = user.access_token.as_str();
        let mut client = one.client().await;
        let answering = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&answering);
        let mut rx = Receiver::start(move |_, _| match flag.load(Ordering::SeqCst) {
            true => status(200),
            false => Reply::Hang,
        })
        .await;
        let (endpoint, _) = create_endpoint(&mut client, token, &rx.url("/"), &[]).await;
        for _ in 0..N {
            client
                .send(one.op(send(&user.user_id, "orders.order.paid", "", WEBHOOK)))
                .await
                .unwrap();
        }
        eventually("a hanging attempt timed out", LIMIT, || {
            let mut client = client.clone();
            let filter = by_endpoint(&endpoint.endpoint_id);
            async move {
                let rows = deliveries(&mut client, token, filter).await;
                rows.iter()
                    .any(|d| d.last_error.contains("timed out"))
                    .then_some(())
            }
        })
        .await;

        answering.store(true, Ordering::SeqCst);
        let rows = eventually("the backlog DELIVERED", LIMIT, || {
            let mut client = client.clone();
            let filter = by_endpoint(&endpoint.endpoint_id);
            async move {
                let rows = deliveries(&mut client, token, filter).await;
                let done = rows.iter().all(|d| state(d) == DeliveryState::Delivered);
                (rows.len() == N && done).then_some(rows)
            }
        })
        .await;
        let mut seen = Vec::new();
        while seen.len() < rx.count() {
            seen.push(rx.next().await);
        }
        for d in &rows {
            assert_eq!(d.last_status_code, 200, "{backend:?}: {d:?}");
            let tries = seen
                .iter()
                .filter(|r| r.webhook_id() == d.delivery_id)
                .count();
            assert!(
                tries >= 1 && tries <= d.attempts as usize,
                "{backend:?}: {d:?} sent {tries}×"
            );
        }
        one.stop().await;
    }
}
