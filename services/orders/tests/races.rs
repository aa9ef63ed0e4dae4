//! Races with one winner: PayOrder and CancelOrder sent together on each of many orders — one
//! succeeds, the other is FAILED_PRECONDITION, and stock matches the winners. A reservation
//! that lapses unpaid cancels its order with a reason and gives the units back; paying after
//! it fails and the order ends CANCELLED.

mod common;

use common::{LIMIT, One, create, get, pay_request, status_of};
use ironmesh_orders::settings::OrdersConfig;
use ironmesh_proto::ironmesh::orders::v1 as pb;
use ironmesh_runtime::{Config, ServiceKind, with_pool};
use ironmesh_testkit::{Component, authed, backends, eventually, metrics};
use tonic::Code;

const ORDERS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_and_cancel_together_have_exactly_one_winner() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mug = one.product("MUG", 500, ORDERS as i64).await;
        let dave = one.mesh.customer().await;
        let mut client = one.orders().await;
        let mut placed = Vec::new();
        for i in 0..ORDERS {
            placed.push(
                create(
                    &mut client,
                    &dave.access_token,
                    &format!("k{i}"),
                    &[("MUG", 1)],
                )
                .await,
            );
        }
        let mut tasks = tokio::task::JoinSet::new();
        for order in &placed {
            let (mut a, mut b) = (client.clone(), client.clone());
            let (t1, t2) = (dave.access_token.clone(), dave.access_token.clone());
            let pay = pay_request(order, &format!("ch-{}", order.order_id));
            let cancel = pb::CancelOrderRequest {
                order_id: order.order_id.clone(),
                reason: "race".into(),
            };
            tasks.spawn(async move {
                let (paid, cancelled) = tokio::join!(
                    a.pay_order(authed(pay, &t1)),
                    b.cancel_order(authed(cancel, &t2))
                );
                (
                    paid.map(|r| r.into_inner().order.unwrap()),
                    cancelled.map(|r| r.into_inner().order.unwrap()),
                )
            });
        }
        let mut paid = 0;
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                (Ok(order), Err(lost)) => {
                    assert_eq!(status_of(&order), pb::OrderStatus::Paid);
                    assert_eq!(lost.code(), Code::FailedPrecondition, "{lost:?}");
                    paid += 1;
                }
                (Err(lost), Ok(order)) => {
                    assert_eq!(status_of(&order), pb::OrderStatus::Cancelled);
                    assert_eq!(lost.code(), Code::FailedPrecondition, "{lost:?}");
                }
                other => panic!("{backend:?}: not exactly one winner: {other:?}"),
            }
        }
        let mut inventory = one.inventory().await;
        let token = &one.admin.access_token;
        assert_eq!(
            common::stock(&mut inventory, token, &mug).await,
            (ORDERS as i64 - paid, 0),
            "{backend:?}: paid units taken, cancelled ones back"
        );
        one.stop().await;
    }
}

/// Moves order `id`'s reservation expiry into the past, in orders and in inventory, as if its
/// TTL had run out (a minute is the shortest TTL; tests do not wait for it).
async fn lapse(config: &Config, id: &str, reservation_id: &str) {
    let past = chrono::Utc::now() - chrono::Duration::seconds(5);
    let db = common::store(config, ServiceKind::Orders).await;
    with_pool!(&db, pool => sqlx::query(
        "UPDATE orders SET reservation_expires_at = $1, next_attempt_ms = $2 WHERE id = $3")
        .bind(past).bind(past.timestamp_millis()).bind(id)
        .execute(pool).await.unwrap().rows_affected());
    db.close().await;
    let db = common::store(config, ServiceKind::Inventory).await;
    with_pool!(&db, pool => sqlx::query("UPDATE reservations SET expires_at = $1 WHERE id = $2")
        .bind(past).bind(reservation_id)
        .execute(pool).await.unwrap().rows_affected());
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_reservation_cancels_the_order_and_returns_the_units() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mug = one.product("MUG", 500, 4).await;
        let erin = one.mesh.customer().await;
        let mut client = one.orders().await;
        let order = create(&mut client, &erin.access_token, "k", &[("MUG", 4)]).await;
        let admin = one.mesh.admin_addr(Component::Service(ServiceKind::Orders));
        let before = metrics::scrape(admin).await;
        lapse(one.mesh.config(), &order.order_id, &order.reservation_id).await;
        let cancelled = eventually("recovery cancels the lapsed order", LIMIT, || {
            let mut client = client.clone();
            let (token, id) = (erin.access_token.clone(), order.order_id.clone());
            async move {
                let order = get(&mut client, &token, &id).await.unwrap();
                (status_of(&order) == pb::OrderStatus::Cancelled).then_some(order)
            }
        })
        .await;
        assert_eq!(
            cancelled.status_reason, "the reservation expired before payment",
            "{backend:?}"
        );
        let inventory = one.inventory().await;
        eventually("the lapsed order's units are back", LIMIT, || {
            let mut inventory = inventory.clone();
            let (token, mug) = (one.admin.access_token.clone(), mug.clone());
            async move { (common::stock(&mut inventory, &token, &mug).await == (4, 0)).then_some(()) }
        })
        .await;
        let events: Vec<_> = common::order_events(one.mesh.config())
            .await
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert!(events.contains(&"orders.order.cancelled".to_owned()));
        // Counted in /metrics (process-wide counters: compared before and after).
        let after = metrics::scrape(admin).await;
        let expiries = |text: &str| {
            let labels = [
                ("service", "orders"),
                ("step", "expiry"),
                ("outcome", "done"),
            ];
            metrics::sample(text, "ironmesh_orders_recovery_steps_total", &labels).unwrap()
        };
        let cancels = |text: &str| {
            let labels = [("service", "orders"), ("status", "cancelled")];
            metrics::sample(text, "ironmesh_orders_transitions_total", &labels).unwrap()
        };
        assert!(expiries(&after) > expiries(&before), "{backend:?}");
        assert!(cancels(&after) > cancels(&before));
        metrics::check_with_promtool(&after);
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_after_the_reservation_lapsed_fails_and_cancels() {
    for backend in backends() {
        // Recovery and the sweeper out of the way: the payment meets the lapsed hold first.
        let one = One::start_with(backend, |config| {
            config
                .update_section::<OrdersConfig>(|s| s.recovery_interval_ms = 3_600_000)
                .unwrap();
            config
                .update_section::<ironmesh_inventory::settings::InventoryConfig>(|s| {
                    s.sweep_interval_ms = 3_600_000;
                })
                .unwrap();
        })
        .await;
        let mug = one.product("MUG", 500, 2).await;
        let frank = one.mesh.customer().await;
        let mut client = one.orders().await;
        let order = create(&mut client, &frank.access_token, "k", &[("MUG", 2)]).await;
        lapse(one.mesh.config(), &order.order_id, &order.reservation_id).await;
        let err = client
            .pay_order(authed(pay_request(&order, "ch-late"), &frank.access_token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{backend:?}");
        let after = get(&mut client, &frank.access_token, &order.order_id)
            .await
            .unwrap();
        assert_eq!(status_of(&after), pb::OrderStatus::Cancelled);
        assert_eq!(after.payment_reference, "", "never paid");
        let mut inventory = one.inventory().await;
        assert_eq!(
            common::stock(&mut inventory, &one.admin.access_token, &mug).await,
            (2, 0)
        );
        one.stop().await;
    }
}
