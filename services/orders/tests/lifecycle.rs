//! The order lifecycle through the gRPC API on both backends: created RESERVED with its price
//! snapshot, paid (stock committed), fulfilled, refunded; cancelled (stock released); every
//! transition an event; wrong payments, wrong states and bad input refused clearly.

mod common;

use common::{One, create, get, pay_request, status_of};
use ironmesh_proto::ironmesh::inventory::v1 as inv;
use ironmesh_proto::ironmesh::orders::v1 as pb;
use ironmesh_testkit::{authed, backends};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_goes_from_reserved_to_refunded_and_stock_follows() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mug = one.product("MUG", 1250, 5).await;
        one.product("TEE", 2000, 5).await;
        let alice = one.mesh.customer().await;
        let mut orders = one.orders().await;
        let mut inventory = one.inventory().await;
        let token = &one.admin.access_token;

        let order = create(
            &mut orders,
            &alice.access_token,
            "k-1",
            &[("MUG", 2), ("TEE", 1)],
        )
        .await;
        assert_eq!(status_of(&order), pb::OrderStatus::Reserved, "{backend:?}");
        assert_eq!(order.customer_id, alice.user_id);
        assert_eq!(order.total_minor, 2 * 1250 + 2000);
        assert_eq!(order.currency, "EUR");
        assert_eq!(order.lines[0].product_id, mug);
        assert_eq!(order.lines[0].product_name, "Product MUG");
        assert_eq!(order.lines[0].line_total_minor, 2500);
        assert!(!order.reservation_id.is_empty());
        assert!(order.reservation_expires_at.is_some());
        assert_eq!(common::stock(&mut inventory, token, &mug).await, (5, 2));

        // The price changes after the order: the order keeps its snapshot.
        inventory
            .update_product(one.op(inv::UpdateProductRequest {
                product: Some(inv::Product {
                    product_id: mug.clone(),
                    price_minor: 9999,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["price_minor".into()],
                }),
            }))
            .await
            .unwrap();
        let again = get(&mut orders, &alice.access_token, &order.order_id)
            .await
            .unwrap();
        assert_eq!(again.total_minor, 4500);

        // A stale amount or another currency is refused, nothing changes.
        let mut wrong = pay_request(&order, "ch_1");
        wrong.amount_minor += 1;
        wrong.currency = "USD".into();
        let err = orders
            .pay_order(authed(wrong, &alice.access_token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let kinds: Vec<_> = ironmesh_testkit::preconditions(&err)
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(kinds, ["AMOUNT_MISMATCH", "CURRENCY_MISMATCH"]);

        let paid = orders
            .pay_order(authed(pay_request(&order, "ch_1"), &alice.access_token))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        assert_eq!(status_of(&paid), pb::OrderStatus::Paid);
        assert_eq!(paid.payment_reference, "ch_1");
        assert!(paid.paid_at.is_some());
        assert_eq!(
            common::stock(&mut inventory, token, &mug).await,
            (3, 0),
            "committed"
        );
        // Paying again with the same reference is the same answer; another reference is not.
        let repeat = orders
            .pay_order(authed(pay_request(&order, "ch_1"), &alice.access_token))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        assert_eq!(repeat.paid_at, paid.paid_at);
        let other = orders
            .pay_order(authed(pay_request(&order, "ch_2"), &alice.access_token))
            .await
            .unwrap_err();
        assert_eq!(other.code(), Code::FailedPrecondition);
        // Paid orders are refunded, not cancelled.
        let cancel = orders
            .cancel_order(authed(
                pb::CancelOrderRequest {
                    order_id: order.order_id.clone(),
                    reason: String::new(),
                },
                &alice.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(cancel.code(), Code::FailedPrecondition);

        // Customers cannot fulfil (operator only); the operator can, and refund.
        let fulfil = pb::FulfillOrderRequest {
            order_id: order.order_id.clone(),
            shipment_reference: "UPS-1Z999".into(),
        };
        let denied = orders
            .fulfill_order(authed(fulfil.clone(), &alice.access_token))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        let fulfilled = orders
            .fulfill_order(one.op(fulfil))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        assert_eq!(status_of(&fulfilled), pb::OrderStatus::Fulfilled);
        assert_eq!(fulfilled.shipment_reference, "UPS-1Z999");
        let refund = |reason: &str| pb::RefundOrderRequest {
            order_id: order.order_id.clone(),
            reason: reason.to_owned(),
        };
        let err = orders.refund_order(one.op(refund(""))).await.unwrap_err();
        assert_eq!(ironmesh_testkit::violations(&err), ["reason"]);
        let refunded = orders
            .refund_order(one.op(refund("damaged in transit")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(refunded.refunded_minor, 4500);
        let refunded = refunded.order.unwrap();
        assert_eq!(status_of(&refunded), pb::OrderStatus::Refunded);
        assert_eq!(refunded.status_reason, "damaged in transit");

        let events: Vec<String> = common::order_events(one.mesh.config())
            .await
            .into_iter()
            .filter(|(_, id)| *id == order.order_id)
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            events,
            [
                "orders.order.pending",
                "orders.order.reserved",
                "orders.order.paid",
                "orders.order.fulfilled",
                "orders.order.refunded"
            ],
            "{backend:?}: one event per transition, none for repeats"
        );
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_gives_its_units_back() {
    for backend in backends() {
        let one = One::start(backend).await;
        let mug = one.product("MUG", 500, 3).await;
        let bob = one.mesh.customer().await;
        let mut orders = one.orders().await;
        let mut inventory = one.inventory().await;
        let token = &one.admin.access_token;
        let order = create(&mut orders, &bob.access_token, "k", &[("MUG", 3)]).await;
        assert_eq!(common::stock(&mut inventory, token, &mug).await, (3, 3));
        let cancel = pb::CancelOrderRequest {
            order_id: order.order_id.clone(),
            reason: "changed my mind".into(),
        };
        let cancelled = orders
            .cancel_order(authed(cancel.clone(), &bob.access_token))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        assert_eq!(
            status_of(&cancelled),
            pb::OrderStatus::Cancelled,
            "{backend:?}"
        );
        assert_eq!(cancelled.status_reason, "changed my mind");
        assert!(cancelled.cancelled_at.is_some());
        assert_eq!(
            common::stock(&mut inventory, token, &mug).await,
            (3, 0),
            "released"
        );
        // Cancelling again returns the order unchanged; paying it fails.
        let again = orders
            .cancel_order(authed(cancel, &bob.access_token))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        assert_eq!(again.cancelled_at, cancelled.cancelled_at);
        let err = orders
            .pay_order(authed(pay_request(&order, "ch"), &bob.access_token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        // The units can be ordered again.
        let next = create(&mut orders, &bob.access_token, "k2", &[("MUG", 3)]).await;
        assert_eq!(status_of(&next), pb::OrderStatus::Reserved);
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_its_fields_and_unknown_products_fail_cleanly() {
    for backend in backends() {
        let one = One::start(backend).await;
        one.product("MUG", 500, 3).await;
        let carol = one.mesh.customer().await;
        let mut orders = one.orders().await;
        let mut bad = common::order_of("", &[("MUG", 0), ("lower", 1)]);
        bad.lines.push(pb::OrderLine::default());
        let err = orders
            .create_order(authed(bad, &carol.access_token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{backend:?}");
        assert_eq!(
            ironmesh_testkit::violations(&err),
            [
                "idempotency_key",
                "lines[0].quantity",
                "lines[1].sku",
                "lines[2]",
                "lines[2].quantity"
            ]
        );
        let err = orders
            .create_order(authed(
                common::order_of("k", &[("NOPE", 1)]),
                &carol.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(
            ironmesh_testkit::preconditions(&err),
            [("PRODUCT_NOT_FOUND".into(), "NOPE".into())]
        );
        for id in ["", "not-a-uuid"] {
            let err = get(&mut orders, &carol.access_token, id).await.unwrap_err();
            assert_eq!(ironmesh_testkit::violations(&err), ["order_id"]);
        }
        let err = orders
            .pay_order(authed(
                pb::PayOrderRequest {
                    order_id: uuid::Uuid::now_v7().to_string(),
                    amount_minor: -1,
                    currency: "eur".into(),
                    payment_reference: "x".repeat(129),
                },
                &carol.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            ironmesh_testkit::violations(&err),
            ["amount_minor", "currency", "payment_reference"]
        );
        let missing = get(
            &mut orders,
            &carol.access_token,
            &uuid::Uuid::now_v7().to_string(),
        )
        .await
        .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        let anonymous = orders
            .list_orders(pb::ListOrdersRequest::default())
            .await
            .unwrap_err();
        assert_eq!(anonymous.code(), Code::Unauthenticated);
        assert_eq!(
            common::count_by_status(one.mesh.config()).await,
            [],
            "nothing written"
        );
        one.stop().await;
    }
}
