//! CreateOrder's idempotency, per customer: a repeat returns the original order (or the
//! original refusal), another body under the same key is INVALID_ARGUMENT, concurrent
//! duplicates make one order, and one customer's key never collides with another's.

mod common;

use common::{One, create, order_of, status_of};
use ironmesh_proto::ironmesh::orders::v1 as pb;
use ironmesh_testkit::{authed, backends};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_return_the_original_and_other_bodies_are_refused() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mug = one.product("MUG", 500, 10).await;
        let (alice, bob) = (one.mesh.customer().await, one.mesh.customer().await);
        let mut orders = one.orders().await;
        let first = create(&mut orders, &alice.access_token, "key-1", &[("MUG", 2)]).await;
        let repeat = create(&mut orders, &alice.access_token, "key-1", &[("MUG", 2)]).await;
        assert_eq!(repeat, first, "{backend:?}: the same order, unchanged");
        let err = orders
            .create_order(authed(
                order_of("key-1", &[("MUG", 3)]),
                &alice.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(ironmesh_testkit::violations(&err), ["idempotency_key"]);
        // Bob's "key-1" is his own.
        let bobs = create(&mut orders, &bob.access_token, "key-1", &[("MUG", 3)]).await;
        assert_ne!(bobs.order_id, first.order_id);
        assert_eq!(bobs.customer_id, bob.user_id);
        let mut inventory = one.inventory().await;
        assert_eq!(
            common::stock(&mut inventory, &one.admin.access_token, &mug).await,
            (10, 5),
            "two orders held, the repeat held nothing"
        );

        // A refusal repeats as the same refusal, and stays one REJECTED order.
        let short = || order_of("key-2", &[("MUG", 6)]);
        let err = orders
            .create_order(authed(short(), &alice.access_token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(
            ironmesh_testkit::preconditions(&err),
            [("INSUFFICIENT_STOCK".into(), "MUG".into())]
        );
        let again = orders
            .create_order(authed(short(), &alice.access_token))
            .await
            .unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition);
        assert_eq!(again.message(), err.message());
        assert_eq!(
            common::count_by_status(one.mesh.config()).await,
            [("REJECTED".into(), 1), ("RESERVED".into(), 2)]
        );
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_make_one_order() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mug = one.product("MUG", 500, 100).await;
        let alice = one.mesh.customer().await;
        let client = one.orders().await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let mut client = client.clone();
            let token = alice.access_token.clone();
            tasks.spawn(async move {
                client
                    .create_order(authed(order_of("same", &[("MUG", 1)]), &token))
                    .await
                    .map(|r| r.into_inner().order.unwrap())
            });
        }
        let mut ids = std::collections::HashSet::new();
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                Ok(order) => {
                    assert_eq!(status_of(&order), pb::OrderStatus::Reserved);
                    ids.insert(order.order_id);
                }
                // The first call still running: retry later, never a second order.
                Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
            }
        }
        assert!(
            ids.len() <= 1,
            "{backend:?}: one order id answered, got {ids:?}"
        );
        assert_eq!(
            common::count_by_status(one.mesh.config()).await,
            [("RESERVED".into(), 1)],
            "{backend:?}: exactly one order"
        );
        let mut inventory = one.inventory().await;
        assert_eq!(
            common::stock(&mut inventory, &one.admin.access_token, &mug).await,
            (100, 1)
        );
        // Once it is done, the key answers with the order.
        let mut client = client.clone();
        let order = create(&mut client, &alice.access_token, "same", &[("MUG", 1)]).await;
        if let Some(id) = ids.iter().next() {
            assert_eq!(&order.order_id, id);
        }
        one.stop().await;
    }
}
