//! Stock 10, 200 concurrent CreateOrders of one unit from 20 customers: exactly 10 RESERVED,
//! 190 REJECTED, `reserved` = 10, and `0 <= reserved <= on_hand` at every concurrent read —
//! through one orders and one inventory on SQLite (and PostgreSQL), and through two replicas
//! of each on one PostgreSQL database. With two replicas, PayOrder through one and CancelOrder
//! through the other on each reserved order have one winner, duplicates spread over both make
//! one order, and a price changed through one is what an order through the other pays.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{One, Orders, Two, create, order_of, status_of};
use ironmesh_proto::ironmesh::inventory::v1 as inv;
use ironmesh_proto::ironmesh::orders::v1 as pb;
use ironmesh_runtime::{Config, ServiceKind, with_pool};
use ironmesh_testkit::{Session, TestMesh, authed, backends};
use tonic::Code;

const ATTEMPTS: usize = 200;
const CUSTOMERS: usize = 20;
const STOCK: i64 = 10;

async fn customers(mesh: &TestMesh) -> Vec<Session> {
    let mut all = Vec::with_capacity(CUSTOMERS);
    for _ in 0..CUSTOMERS {
        all.push(mesh.customer().await);
    }
    all
}

/// The hammer over `replicas` (round-robin), checked while it runs and after.
async fn hammer(config: &Config, replicas: &[Orders], people: &[Session], product_id: &str) {
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let db = common::store(config, ServiceKind::Inventory).await;
        let (stop, id) = (stop.clone(), product_id.to_owned());
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (on_hand, reserved): (i64, i64) = with_pool!(&db, pool => sqlx::query_as(
                    "SELECT on_hand, reserved FROM stock WHERE product_id = $1"
                ).bind(&id).fetch_one(pool).await.unwrap());
                assert!(
                    0 <= reserved && reserved <= on_hand,
                    "reserved {reserved}, on_hand {on_hand}"
                );
                reads += 1;
                tokio::task::yield_now().await;
            }
            db.close().await;
            reads
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ATTEMPTS {
        let mut client = replicas[i % replicas.len()].clone();
        let token = people[i % people.len()].access_token.clone();
        tasks.spawn(async move {
            client
                .create_order(authed(
                    order_of(&format!("attempt-{i}"), &[("HOT", 1)]),
                    &token,
                ))
                .await
        });
    }
    let (mut reserved, mut rejected) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(answer) => {
                assert_eq!(
                    status_of(&answer.into_inner().order.unwrap()),
                    pb::OrderStatus::Reserved
                );
                reserved += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(
                    ironmesh_testkit::preconditions(&status),
                    [("INSUFFICIENT_STOCK".into(), "HOT".into())]
                );
                rejected += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        reader.await.unwrap() > 0,
        "the reader ran during the hammer"
    );
    assert_eq!(
        (reserved, rejected),
        (STOCK as usize, ATTEMPTS - STOCK as usize)
    );
    assert_eq!(
        common::count_by_status(config).await,
        [("REJECTED".into(), 190), ("RESERVED".into(), 10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_orders_for_ten_units_reserve_exactly_ten() {
    for backend in backends() {
        let one = One::start(backend).await;
        let hot = one.product("HOT", 100, STOCK).await;
        let people = customers(&one.mesh).await;
        hammer(one.mesh.config(), &[one.orders().await], &people, &hot).await;
        let mut inventory = one.inventory().await;
        assert_eq!(
            common::stock(&mut inventory, &one.admin.access_token, &hot).await,
            (STOCK, STOCK),
            "{backend:?}"
        );
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_each_on_postgres_reserve_exactly_ten_and_agree_on_prices() {
    if !common::postgres_configured() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let two = Two::start().await;
    let token = two.admin.access_token.clone();
    let mut first_inventory = two.first.inventory().await;
    let hot = common::product(&mut first_inventory, &token, "HOT", 100, STOCK).await;
    let people = customers(&two.first).await;
    let replicas = [two.first.orders().await, two.second.orders().await];
    hammer(two.first.config(), &replicas, &people, &hot).await;
    let mut second_inventory = two.second.inventory().await;
    assert_eq!(
        common::stock(&mut second_inventory, &token, &hot).await,
        (STOCK, STOCK)
    );

    // Each of the ten: PayOrder through one replica, CancelOrder through the other, together.
    let reserved = replicas[0]
        .clone()
        .list_orders(authed(
            pb::ListOrdersRequest {
                status: pb::OrderStatus::Reserved.into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(reserved.len(), STOCK as usize);
    let mut races = tokio::task::JoinSet::new();
    for order in reserved {
        let (mut pay, mut cancel) = (replicas[0].clone(), replicas[1].clone());
        let (t1, t2) = (token.clone(), token.clone());
        races.spawn(async move {
            let paid = pay.pay_order(authed(common::pay_request(&order, "ch"), &t1));
            let cancelled = cancel.cancel_order(authed(
                pb::CancelOrderRequest {
                    order_id: order.order_id.clone(),
                    reason: "race".into(),
                },
                &t2,
            ));
            let (paid, cancelled) = tokio::join!(paid, cancelled);
            assert!(
                paid.is_ok() != cancelled.is_ok(),
                "exactly one winner: {paid:?} / {cancelled:?}"
            );
            for lost in [paid.as_ref().err(), cancelled.as_ref().err()]
                .into_iter()
                .flatten()
            {
                assert_eq!(lost.code(), Code::FailedPrecondition, "{lost:?}");
            }
            i64::from(paid.is_ok())
        });
    }
    let mut paid = 0;
    while let Some(won) = races.join_next().await {
        paid += won.unwrap();
    }
    assert_eq!(
        common::stock(&mut second_inventory, &token, &hot).await,
        (STOCK - paid, 0),
        "paid units taken, cancelled ones back"
    );

    // Duplicates of one request spread over both replicas make one order.
    let mut duplicates = tokio::task::JoinSet::new();
    for i in 0..8 {
        let mut client = replicas[i % 2].clone();
        let buyer = people[1].access_token.clone();
        duplicates.spawn(async move {
            client
                .create_order(authed(order_of("twice", &[("HOT", 1)]), &buyer))
                .await
        });
    }
    while let Some(done) = duplicates.join_next().await {
        if let Err(status) = done.unwrap() {
            assert!(
                matches!(status.code(), Code::Aborted | Code::FailedPrecondition),
                "{status:?}"
            );
        }
    }
    let db = common::store(two.first.config(), ServiceKind::Orders).await;
    let (made,): (i64,) = with_pool!(&db, pool => sqlx::query_as(
        "SELECT COUNT(*) FROM orders WHERE idempotency_key = 'twice'"
    ).fetch_one(pool).await.unwrap());
    db.close().await;
    assert_eq!(made, 1, "one order for eight duplicates over two replicas");

    // A price read through the second replica (cached there), changed through the first: the
    // next order through the second pays the new price.
    let mug = common::product(&mut first_inventory, &token, "MUG", 500, 5).await;
    let buyer = &people[0].access_token;
    let mut second = replicas[1].clone();
    assert_eq!(
        create(&mut second, buyer, "before", &[("MUG", 1)])
            .await
            .total_minor,
        500
    );
    first_inventory
        .update_product(authed(
            inv::UpdateProductRequest {
                product: Some(inv::Product {
                    product_id: mug,
                    price_minor: 750,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["price_minor".into()],
                }),
            },
            &token,
        ))
        .await
        .unwrap();
    assert_eq!(
        create(&mut second, buyer, "after", &[("MUG", 1)])
            .await
            .total_minor,
        750
    );
    two.stop().await;
}
