//! Who sees what: a customer sees only their own orders (another's is NOT_FOUND, even to
//! cancel or pay); operators see and filter all; pages are newest first with tokens bound to
//! the filters.

mod common;

use common::{One, create, get, pay_request};
use ironmesh_proto::ironmesh::orders::v1 as pb;
use ironmesh_testkit::{authed, backends};
use tonic::Code;

fn list(status: pb::OrderStatus, customer: &str, size: i32, token: &str) -> pb::ListOrdersRequest {
    pb::ListOrdersRequest {
        page_size: size,
        page_token: token.to_owned(),
        status: status.into(),
        customer_id: customer.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_see_their_own_orders_and_operators_see_all() {
    for backend in backends() {
        let one = One::start(backend).await;
        one.product("MUG", 500, 100).await;
        let (alice, bob) = (one.mesh.customer().await, one.mesh.customer().await);
        let mut orders = one.orders().await;
        let mut mine = Vec::new();
        for i in 0..5 {
            mine.push(
                create(
                    &mut orders,
                    &alice.access_token,
                    &format!("a{i}"),
                    &[("MUG", 1)],
                )
                .await,
            );
        }
        let bobs = create(&mut orders, &bob.access_token, "b0", &[("MUG", 1)]).await;

        // Another customer's order does not exist for alice, whatever she tries.
        let err = get(&mut orders, &alice.access_token, &bobs.order_id)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{backend:?}");
        let err = orders
            .cancel_order(authed(
                pb::CancelOrderRequest {
                    order_id: bobs.order_id.clone(),
                    reason: String::new(),
                },
                &alice.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = orders
            .pay_order(authed(pay_request(&bobs, "x"), &alice.access_token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = orders
            .list_orders(authed(
                list(pb::OrderStatus::Unspecified, &bob.user_id, 0, ""),
                &alice.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);

        // Alice's list, two at a time, newest first.
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = orders
                .list_orders(authed(
                    list(pb::OrderStatus::Unspecified, "", 2, &token),
                    &alice.access_token,
                ))
                .await
                .unwrap()
                .into_inner();
            assert!(page.orders.len() <= 2);
            seen.extend(page.orders.into_iter().map(|o| o.order_id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let expected: Vec<_> = mine.iter().rev().map(|o| o.order_id.clone()).collect();
        assert_eq!(seen, expected, "{backend:?}: her five, newest first");

        // A token used with other filters is refused.
        let first = orders
            .list_orders(authed(
                list(pb::OrderStatus::Unspecified, "", 2, ""),
                &alice.access_token,
            ))
            .await
            .unwrap()
            .into_inner();
        let err = orders
            .list_orders(authed(
                list(pb::OrderStatus::Paid, "", 2, &first.next_page_token),
                &alice.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(ironmesh_testkit::violations(&err), ["page_token"]);
        let err = orders
            .list_orders(authed(
                pb::ListOrdersRequest {
                    status: 42,
                    page_size: -1,
                    ..Default::default()
                },
                &alice.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(ironmesh_testkit::violations(&err), ["status"]);

        // The operator sees everyone's, filters by customer and by status.
        let all = orders
            .list_orders(one.op(list(pb::OrderStatus::Unspecified, "", 0, "")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.orders.len(), 6);
        let bobs_only = orders
            .list_orders(one.op(list(pb::OrderStatus::Unspecified, &bob.user_id, 0, "")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(bobs_only.orders.len(), 1);
        assert_eq!(bobs_only.orders[0].order_id, bobs.order_id);
        orders
            .pay_order(authed(pay_request(&bobs, "ch"), &bob.access_token))
            .await
            .unwrap();
        let paid = orders
            .list_orders(one.op(list(pb::OrderStatus::Paid, "", 0, "")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(paid.orders.len(), 1);
        assert_eq!(
            get(&mut orders, &one.admin.access_token, &bobs.order_id)
                .await
                .unwrap()
                .order_id,
            bobs.order_id
        );
        one.stop().await;
    }
}
