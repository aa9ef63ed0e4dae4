//! The storefront through the REST gateway, as a frontend and an operator use it: the operator
//! creates and stocks a product, a customer browses, orders and pays, the operator fulfils and
//! refunds — and every step of the order and the stock is in the audit log. Both backends.

use std::time::Duration;

use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{Rest, TestMesh, backends};
use serde_json::{Value, json};

/// The longest the audit log may take to show a step.
const DELIVERY_LIMIT: Duration = Duration::from_secs(60);

fn id(value: &Value) -> String {
    value.as_str().expect("an id string").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_orders_pays_and_is_refunded_and_audit_records_each_step() {
    for backend in backends() {
        let mesh = TestMesh::start_with(backend, &ServiceKind::ALL, true, |_| {}).await;
        let rest = Rest::new(&mesh);
        let operator = mesh.admin().await;
        let op = Some(operator.access_token.as_str());
        let customer = mesh.customer().await;
        let me = Some(customer.access_token.as_str());

        // The operator adds a product (inactive until published) and stocks it.
        let (status, created) = rest
            .call(
                "POST",
                "/v1/inventory/products",
                op,
                Some(json!({"sku": "MUG-01", "name": "Mug", "priceMinor": "1250",
                            "currency": "EUR", "active": true})),
            )
            .await;
        assert_eq!(status, 201, "{backend:?}: {created}");
        let product_id = id(&created["product"]["productId"]);
        let (status, stock) = rest
            .call(
                "POST",
                &format!("/v1/inventory/products/{product_id}/stock:adjust"),
                op,
                Some(json!({"delta": "5", "reason": "ADJUSTMENT_REASON_RESTOCK",
                            "note": "delivery 42"})),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {stock}");
        assert_eq!(stock["stock"]["onHand"], "5", "{stock}");

        // Anyone browses; a customer orders two.
        let (status, page) = rest
            .call("GET", "/v1/inventory/products?query=mug", None, None)
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["products"][0]["productId"], product_id.as_str());
        let (status, placed) = rest
            .call(
                "POST",
                "/v1/orders",
                me,
                Some(json!({"idempotencyKey": "cart-1",
                            "lines": [{"sku": "MUG-01", "quantity": "2"}]})),
            )
            .await;
        assert_eq!(status, 201, "{backend:?}: {placed}");
        let order = &placed["order"];
        assert_eq!(order["status"], "ORDER_STATUS_RESERVED", "{placed}");
        assert_eq!(order["totalMinor"], "2500");
        assert_eq!(order["lines"][0]["productName"], "Mug");
        let order_id = id(&order["orderId"]);
        let (_, stock) = rest
            .call(
                "GET",
                &format!("/v1/inventory/products/{product_id}/stock"),
                me,
                None,
            )
            .await;
        assert_eq!(
            (
                stock["stock"]["reserved"].clone(),
                stock["stock"]["available"].clone()
            ),
            (json!("2"), json!("3")),
            "{stock}"
        );

        // A stale amount is refused; the right one pays and takes the units out of stock.
        let (status, stale) = rest
            .call(
                "POST",
                &format!("/v1/orders/{order_id}:pay"),
                me,
                Some(json!({"amountMinor": "1250", "currency": "EUR",
                            "paymentReference": "ch_1"})),
            )
            .await;
        assert_eq!(status, 400, "FAILED_PRECONDITION: {stale}");
        let (status, paid) = rest
            .call(
                "POST",
                &format!("/v1/orders/{order_id}:pay"),
                me,
                Some(json!({"amountMinor": "2500", "currency": "EUR",
                            "paymentReference": "ch_1"})),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {paid}");
        assert_eq!(paid["order"]["status"], "ORDER_STATUS_PAID");
        let (_, stock) = rest
            .call(
                "GET",
                &format!("/v1/inventory/products/{product_id}/stock"),
                me,
                None,
            )
            .await;
        // JSON leaves zero-valued fields out, as proto3 JSON does: no `reserved` is 0.
        assert_eq!(
            (
                stock["stock"]["onHand"].clone(),
                stock["stock"]
                    .get("reserved")
                    .cloned()
                    .unwrap_or(json!("0"))
            ),
            (json!("3"), json!("0")),
            "{stock}"
        );

        // A customer cannot fulfil; the operator fulfils and refunds.
        let (status, _) = rest
            .call(
                "POST",
                &format!("/v1/orders/{order_id}:fulfill"),
                me,
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 403);
        let (status, shipped) = rest
            .call(
                "POST",
                &format!("/v1/orders/{order_id}:fulfill"),
                op,
                Some(json!({"shipmentReference": "DHL-9"})),
            )
            .await;
        assert_eq!(status, 200, "{shipped}");
        assert_eq!(shipped["order"]["status"], "ORDER_STATUS_FULFILLED");
        let (status, refunded) = rest
            .call(
                "POST",
                &format!("/v1/orders/{order_id}:refund"),
                op,
                Some(json!({"reason": "arrived broken"})),
            )
            .await;
        assert_eq!(status, 200, "{refunded}");
        assert_eq!(refunded["order"]["status"], "ORDER_STATUS_REFUNDED");
        assert_eq!(refunded["refundedMinor"], "2500");

        // The customer sees the order in their list; audit shows every step.
        let (_, mine) = rest.call("GET", "/v1/orders", me, None).await;
        assert_eq!(mine["orders"][0]["orderId"], order_id.as_str(), "{mine}");
        let wanted = [
            "inventory.product.created",
            "inventory.stock.adjusted",
            "inventory.reservation.held",
            "inventory.reservation.committed",
            "orders.order.pending",
            "orders.order.reserved",
            "orders.order.paid",
            "orders.order.fulfilled",
            "orders.order.refunded",
        ];
        let admin = &operator;
        ironmesh_testkit::eventually("every storefront step in audit", DELIVERY_LIMIT, || async {
            let mut actions = Vec::new();
            for prefix in ["orders.*", "inventory.*"] {
                let (status, page) = rest
                    .call(
                        "GET",
                        &format!("/v1/audit/entries?action={prefix}&pageSize=1000"),
                        Some(&admin.access_token),
                        None,
                    )
                    .await;
                assert_eq!(status, 200, "{page}");
                for entry in page["entries"].as_array().into_iter().flatten() {
                    // About the order or the product: in its resource, or (a reservation's
                    // entries) in the details rendered from the payload.
                    let text = entry.to_string();
                    if text.contains(&order_id) || text.contains(&product_id) {
                        actions.push(entry["action"].as_str().unwrap_or_default().to_owned());
                    }
                }
            }
            wanted
                .iter()
                .all(|w| actions.iter().any(|a| a == w))
                .then_some(())
        })
        .await;
        assert!(mesh.shutdown().await.is_empty());
    }
}
