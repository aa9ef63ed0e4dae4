//! Reservations over gRPC as orders calls them (a service identity), on both backends:
//! all-or-nothing with a violation per short sku, idempotent per order (also concurrently),
//! Commit and Release per the contract (a lapsed reservation is expired first), the sweeper,
//! and internal methods refused to user tokens.

mod common;

use std::time::Duration;

use common::{One, create, lapse, reserve, restock, slow_sweeper, stock};
use ironmesh_proto::ironmesh::inventory::v1 as pb;
use ironmesh_testkit::preconditions;
use ironmesh_testkit::{authed, backends, eventually, violations};

fn held(response: pb::ReserveResponse) -> pb::Reservation {
    response.reservation.unwrap()
}

/// Lines are checked; a short line fails the whole Reserve with one INSUFFICIENT_STOCK per
/// short sku and holds nothing; unknown and inactive products are named; a repeat for the same
/// order returns the same reservation, units held once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_is_all_or_nothing_and_idempotent_per_order() {
    for backend in backends() {
        let one = One::start_with(backend, slow_sweeper).await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        let mut orders = one.orders();
        let a = create(&mut client, &token, "A", 100).await;
        let b = create(&mut client, &token, "B", 200).await;
        let c = create(&mut client, &token, "C", 300).await;
        restock(&mut client, &token, &a.product_id, 5).await;
        restock(&mut client, &token, &b.product_id, 1).await;

        // B and C short: both named, A not held either.
        let request = reserve(&[(&a.product_id, 2), (&b.product_id, 2), (&c.product_id, 1)]);
        let status = orders.reserve(request).await.unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::FailedPrecondition,
            "{backend:?}"
        );
        assert_eq!(
            preconditions(&status),
            [
                ("INSUFFICIENT_STOCK".to_owned(), "B".to_owned()),
                ("INSUFFICIENT_STOCK".to_owned(), "C".to_owned())
            ]
        );
        assert_eq!(stock(&mut client, &token, &a.product_id).await.reserved, 0);

        // Unknown and inactive products.
        let hidden = client
            .create_product(one.op(pb::CreateProductRequest {
                product: Some(common::product("HIDDEN", 1, false)),
            }))
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        let ghost = uuid::Uuid::now_v7().to_string();
        let mut request = reserve(&[(&ghost, 1), (&hidden.product_id, 1)]);
        request.lines.push(pb::ReservationLine {
            sku: "NO-SUCH".into(),
            quantity: 1,
            ..Default::default()
        });
        let status = orders.reserve(request).await.unwrap_err();
        assert_eq!(
            preconditions(&status),
            [
                ("PRODUCT_NOT_FOUND".to_owned(), ghost.clone()),
                ("PRODUCT_INACTIVE".to_owned(), "HIDDEN".to_owned()),
                ("PRODUCT_NOT_FOUND".to_owned(), "NO-SUCH".to_owned())
            ]
        );

        // Malformed requests; the same product by id and by sku.
        let mut request = reserve(&[(&a.product_id, 0)]);
        request.order_id = "x".into();
        request.ttl = Some(prost_types::Duration {
            seconds: 30,
            nanos: 0,
        });
        let status = orders.reserve(request).await.unwrap_err();
        assert_eq!(
            violations(&status),
            ["order_id", "lines[0].quantity", "ttl"]
        );
        let mut request = reserve(&[(&a.product_id, 1)]);
        request.lines.push(pb::ReservationLine {
            sku: "A".into(),
            quantity: 1,
            ..Default::default()
        });
        let status = orders.reserve(request).await.unwrap_err();
        assert_eq!(violations(&status), ["lines[1]"]);

        // Held by id and by sku, in request order, with both names in the answer.
        let mut request = reserve(&[(&b.product_id, 1)]);
        request.lines.insert(
            0,
            pb::ReservationLine {
                sku: "A".into(),
                quantity: 3,
                ..Default::default()
            },
        );
        request.ttl = Some(prost_types::Duration {
            seconds: 120,
            nanos: 0,
        });
        let first = held(orders.reserve(request.clone()).await.unwrap().into_inner());
        assert_eq!(first.status(), pb::ReservationStatus::Held);
        assert_eq!(first.order_id, request.order_id);
        let lines: Vec<_> = first
            .lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.sku.as_str(), l.quantity))
            .collect();
        assert_eq!(
            lines,
            [
                (a.product_id.as_str(), "A", 3),
                (b.product_id.as_str(), "B", 1)
            ]
        );
        let ttl = first.expires_at.unwrap().seconds - first.created_at.unwrap().seconds;
        assert!((119..=121).contains(&ttl), "{ttl}");

        // The repeat (even with other lines) is the same reservation, held once.
        let mut again = request.clone();
        again.lines.truncate(1);
        let second = held(orders.reserve(again).await.unwrap().into_inner());
        assert_eq!(second, first);
        let a_stock = stock(&mut client, &token, &a.product_id).await;
        assert_eq!(
            (a_stock.on_hand, a_stock.reserved, a_stock.available),
            (5, 3, 2)
        );

        // Internal: a user's token is refused, an administrator's too.
        let status = client
            .reserve(authed(reserve(&[(&a.product_id, 1)]), &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        one.stop().await;
    }
}

/// Many concurrent Reserves for one order make one reservation and hold its units once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reserves_for_one_order_hold_once() {
    for backend in backends() {
        let one = One::start_with(backend, slow_sweeper).await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        let a = create(&mut client, &token, "A", 100).await;
        restock(&mut client, &token, &a.product_id, 100).await;
        let request = reserve(&[(&a.product_id, 7)]);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let mut orders = one.orders();
            let request = request.clone();
            tasks.spawn(async move { held(orders.reserve(request).await.unwrap().into_inner()) });
        }
        let mut ids = std::collections::BTreeSet::new();
        while let Some(done) = tasks.join_next().await {
            ids.insert(done.unwrap().reservation_id);
        }
        assert_eq!(ids.len(), 1, "{backend:?}: one reservation");
        assert_eq!(stock(&mut client, &token, &a.product_id).await.reserved, 7);
        one.stop().await;
    }
}

/// Commit takes the units out (repeat: unchanged; after release: FAILED_PRECONDITION);
/// Release gives them back (repeat: unchanged; after commit: FAILED_PRECONDITION); a HELD
/// reservation past its expiry is expired first — Commit fails, Release answers EXPIRED —
/// units back once; unknown ids NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_release_follow_the_contract() {
    for backend in backends() {
        let one = One::start_with(backend, slow_sweeper).await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        let mut orders = one.orders();
        let a = create(&mut client, &token, "A", 100).await;
        restock(&mut client, &token, &a.product_id, 10).await;
        let reserve_two = || reserve(&[(&a.product_id, 2)]);
        let commit = |id: &str| pb::CommitReservationRequest {
            reservation_id: id.to_owned(),
        };
        let release = |id: &str| pb::ReleaseReservationRequest {
            reservation_id: id.to_owned(),
            reason: "order cancelled".into(),
        };

        let paid = held(orders.reserve(reserve_two()).await.unwrap().into_inner());
        let committed = orders
            .commit_reservation(commit(&paid.reservation_id))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        assert_eq!(
            committed.status(),
            pb::ReservationStatus::Committed,
            "{backend:?}"
        );
        let again = orders
            .commit_reservation(commit(&paid.reservation_id))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        assert_eq!(again, committed, "a repeat commit changes nothing");
        let s = stock(&mut client, &token, &a.product_id).await;
        assert_eq!((s.on_hand, s.reserved), (8, 0));
        let status = orders
            .release_reservation(release(&paid.reservation_id))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(preconditions(&status)[0].0, "RESERVATION_COMMITTED");

        let cancelled = held(orders.reserve(reserve_two()).await.unwrap().into_inner());
        assert_eq!(stock(&mut client, &token, &a.product_id).await.reserved, 2);
        let released = orders
            .release_reservation(release(&cancelled.reservation_id))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        assert_eq!(released.status(), pb::ReservationStatus::Released);
        let again = orders
            .release_reservation(release(&cancelled.reservation_id))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        assert_eq!(again, released);
        let s = stock(&mut client, &token, &a.product_id).await;
        assert_eq!((s.on_hand, s.reserved), (8, 0));
        let status = orders
            .commit_reservation(commit(&cancelled.reservation_id))
            .await
            .unwrap_err();
        assert_eq!(preconditions(&status)[0].0, "RESERVATION_RELEASED");

        // Lapsed: Commit expires it first and fails; Release then answers EXPIRED.
        let late = held(orders.reserve(reserve_two()).await.unwrap().into_inner());
        lapse(one.mesh.config(), &late.reservation_id).await;
        let status = orders
            .commit_reservation(commit(&late.reservation_id))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(preconditions(&status)[0].0, "RESERVATION_EXPIRED");
        assert_eq!(stock(&mut client, &token, &a.product_id).await.reserved, 0);
        let expired = orders
            .release_reservation(release(&late.reservation_id))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        assert_eq!(expired.status(), pb::ReservationStatus::Expired);

        // Lapsed, released first: EXPIRED, units back once.
        let late = held(orders.reserve(reserve_two()).await.unwrap().into_inner());
        lapse(one.mesh.config(), &late.reservation_id).await;
        let expired = orders
            .release_reservation(release(&late.reservation_id))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        assert_eq!(expired.status(), pb::ReservationStatus::Expired);
        let s = stock(&mut client, &token, &a.product_id).await;
        assert_eq!((s.on_hand, s.reserved), (8, 0));

        for (id, code) in [
            (uuid::Uuid::now_v7().to_string(), tonic::Code::NotFound),
            ("nope".to_owned(), tonic::Code::InvalidArgument),
        ] {
            let status = orders.commit_reservation(commit(&id)).await.unwrap_err();
            assert_eq!(status.code(), code);
            let status = orders.release_reservation(release(&id)).await.unwrap_err();
            assert_eq!(status.code(), code);
        }
        let status = client
            .commit_reservation(authed(commit(&paid.reservation_id), &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);

        let events = common::event_types(one.mesh.config()).await;
        let of = |id: &str| -> Vec<String> {
            events
                .iter()
                .filter(|(_, aggregate, _)| aggregate == id)
                .map(|(t, _, _)| t.clone())
                .collect()
        };
        assert_eq!(
            of(&paid.reservation_id),
            [
                "inventory.reservation.held",
                "inventory.reservation.committed"
            ]
        );
        assert_eq!(
            of(&cancelled.reservation_id),
            [
                "inventory.reservation.held",
                "inventory.reservation.released"
            ]
        );
        assert_eq!(
            of(&late.reservation_id),
            [
                "inventory.reservation.held",
                "inventory.reservation.expired"
            ]
        );
        let actors: Vec<&str> = events
            .iter()
            .filter(|(t, _, _)| t.starts_with("inventory.reservation."))
            .map(|(_, _, actor)| actor.as_str())
            .collect();
        assert!(actors.iter().all(|a| *a == "service:orders"), "{actors:?}");
        one.stop().await;
    }
}

/// The sweeper expires HELD reservations past their expiry, returns their units and writes
/// `inventory.reservation.expired` as `service:inventory`; ones still in time stay HELD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_expires_lapsed_reservations() {
    for backend in backends() {
        let one = One::start_with(backend, |config| {
            config
                .update_section::<ironmesh_inventory::settings::InventoryConfig>(|s| {
                    s.sweep_interval_ms = 50;
                })
                .unwrap();
        })
        .await;
        let mut client = one.client().await;
        let token = one.admin.access_token.clone();
        let mut orders = one.orders();
        let a = create(&mut client, &token, "A", 100).await;
        restock(&mut client, &token, &a.product_id, 10).await;
        let lapsing = held(
            orders
                .reserve(reserve(&[(&a.product_id, 3)]))
                .await
                .unwrap()
                .into_inner(),
        );
        let keeping = held(
            orders
                .reserve(reserve(&[(&a.product_id, 4)]))
                .await
                .unwrap()
                .into_inner(),
        );
        lapse(one.mesh.config(), &lapsing.reservation_id).await;
        eventually(
            "the sweeper to give 3 units back",
            Duration::from_secs(20),
            || {
                let mut client = client.clone();
                let token = token.clone();
                let id = a.product_id.clone();
                async move { (stock(&mut client, &token, &id).await.reserved == 4).then_some(()) }
            },
        )
        .await;
        let events = common::event_types(one.mesh.config()).await;
        let expired: Vec<_> = events
            .iter()
            .filter(|(t, _, _)| t == "inventory.reservation.expired")
            .collect();
        assert_eq!(expired.len(), 1, "{backend:?}");
        assert_eq!(expired[0].1, lapsing.reservation_id);
        assert_eq!(expired[0].2, "service:inventory");
        // Still in time: committable.
        let committed = orders
            .commit_reservation(pb::CommitReservationRequest {
                reservation_id: keeping.reservation_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        assert_eq!(committed.status(), pb::ReservationStatus::Committed);
        one.stop().await;
    }
}
