//! Many replicas, one database: 200 concurrent Reserves of one unit against a stock of 10 —
//! through two inventory replicas on PostgreSQL, one on SQLite — hold exactly 10, while a
//! concurrent reader sees `0 <= reserved <= on_hand` at every read; and lapsed reservations
//! swept by two replicas at once come back exactly once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{One, ServiceClient, Two, as_orders, create, reserve, restock, store};
use ironmesh_runtime::{Config, with_pool};
use ironmesh_testkit::{Backend, backends, eventually};

const ATTEMPTS: usize = 200;
const STOCK: i64 = 10;

/// Runs the hammer over `replicas` (round-robin) and checks it: exactly [`STOCK`] held, the
/// rest refused with INSUFFICIENT_STOCK, and the invariant at every concurrent read.
async fn hammer(config: &Config, replicas: &[ServiceClient], product_id: &str) {
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let db = store(config).await;
        let stop = stop.clone();
        let id = product_id.to_owned();
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (on_hand, reserved): (i64, i64) = with_pool!(&db, pool => sqlx::query_as(
                    "SELECT on_hand, reserved FROM stock WHERE product_id = $1"
                ).bind(&id).fetch_one(pool).await.unwrap());
                assert!(
                    0 <= reserved && reserved <= on_hand,
                    "invariant broken: reserved {reserved}, on_hand {on_hand}"
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
        let request = reserve(&[(product_id, 1)]);
        tasks.spawn(async move { client.reserve(request).await });
    }
    let (mut held, mut short) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(_) => held += 1,
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
                assert_eq!(
                    ironmesh_testkit::preconditions(&status)[0].0,
                    "INSUFFICIENT_STOCK"
                );
                short += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.await.unwrap();
    assert!(reads > 0, "the reader ran during the hammer");
    assert_eq!((held, short), (STOCK as usize, ATTEMPTS - STOCK as usize));
}

/// One replica (SQLite, and PostgreSQL too): exactly 10 of 200 held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_reserves_for_ten_units_hold_exactly_ten() {
    for backend in backends() {
        let one = One::start_with(backend, common::slow_sweeper).await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        let a = create(&mut client, &token, "HOT", 100).await;
        restock(&mut client, &token, &a.product_id, STOCK).await;
        hammer(one.mesh.config(), &[one.orders()], &a.product_id).await;
        let s = common::stock(&mut client, &token, &a.product_id).await;
        assert_eq!(
            (s.on_hand, s.reserved, s.available),
            (STOCK, STOCK, 0),
            "{backend:?}"
        );
        one.stop().await;
    }
}

/// Two replicas on one PostgreSQL database: exactly 10 of 200 held between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_hold_exactly_the_stock() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipped: needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    }
    let two = Two::start(common::slow_sweeper).await;
    let mut client = two.first.inventory().await;
    let token = two.admin.access_token.clone();
    let a = create(&mut client, &token, "HOT", 100).await;
    restock(&mut client, &token, &a.product_id, STOCK).await;
    let replicas = [
        as_orders(two.first.config()),
        as_orders(two.second.config()),
    ];
    hammer(two.first.config(), &replicas, &a.product_id).await;
    let s = common::stock(&mut client, &token, &a.product_id).await;
    assert_eq!((s.on_hand, s.reserved), (STOCK, STOCK));
    two.stop().await;
}

/// Both replicas' sweepers race over 30 lapsed reservations: every unit comes back once, and
/// each reservation has one `expired` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sweepers_return_units_exactly_once() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipped: needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    }
    let two = Two::start(|config| {
        config
            .update_section::<ironmesh_inventory::settings::InventoryConfig>(|s| {
                s.sweep_interval_ms = 20;
            })
            .unwrap();
    })
    .await;
    let mut client = two.first.inventory().await;
    let token = two.admin.access_token.clone();
    let a = create(&mut client, &token, "A", 100).await;
    let b = create(&mut client, &token, "B", 100).await;
    restock(&mut client, &token, &a.product_id, 100).await;
    restock(&mut client, &token, &b.product_id, 100).await;
    let mut orders = as_orders(two.first.config());
    let mut ids = Vec::new();
    for _ in 0..30 {
        let r = orders
            .reserve(reserve(&[(&a.product_id, 2), (&b.product_id, 1)]))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        ids.push(r.reservation_id);
    }
    assert_eq!(
        common::stock(&mut client, &token, &a.product_id)
            .await
            .reserved,
        60
    );
    // All lapse at once, in one statement, so both sweepers find them in the same rounds.
    let db = store(two.first.config()).await;
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    with_pool!(&db, pool => sqlx::query("UPDATE reservations SET expires_at = $1")
        .bind(past).execute(pool).await.unwrap().rows_affected());
    eventually("both sweepers to finish", Duration::from_secs(30), || {
        let db = db.clone();
        async move {
            let (held,): (i64,) = with_pool!(&db, pool => sqlx::query_as(
                "SELECT COUNT(*) FROM reservations WHERE status = 'HELD'"
            ).fetch_one(pool).await.unwrap());
            (held == 0).then_some(())
        }
    })
    .await;
    for product in [&a.product_id, &b.product_id] {
        let s = common::stock(&mut client, &token, product).await;
        assert_eq!((s.on_hand, s.reserved), (100, 0), "units back exactly once");
    }
    let (events,): (i64,) = with_pool!(&db, pool => sqlx::query_as(
        "SELECT COUNT(*) FROM outbox_events WHERE event_type = 'inventory.reservation.expired'"
    ).fetch_one(pool).await.unwrap());
    assert_eq!(events, 30, "one expired event per reservation");
    let (distinct,): (i64,) = with_pool!(&db, pool => sqlx::query_as(
        "SELECT COUNT(DISTINCT aggregate_id) FROM outbox_events WHERE event_type = 'inventory.reservation.expired'"
    ).fetch_one(pool).await.unwrap());
    assert_eq!(distinct, 30);
    db.close().await;
    two.stop().await;
}
