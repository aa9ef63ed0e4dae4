//! A paid order end to end, on both backends: auth, inventory, orders and notification in one
//! mesh with a real SMTP server (Python's `aiosmtpd`); a customer orders a product and pays, and
//! orders' `orders.order.paid` event reaches notification over the backbone — the customer
//! finds "Payment received" in their inbox, receives it by email at their address, and their
//! webhook endpoint receives it signed — verified by Python's independent `standardwebhooks`.

mod common;
#[path = "common/receiver.rs"]
mod receiver;
#[path = "common/smtp.rs"]
mod smtp;

use common::{LIMIT, One};
use ironmesh_proto::ironmesh::inventory::v1 as inv;
use ironmesh_proto::ironmesh::notification::v1 as pb;
use ironmesh_proto::ironmesh::orders::v1 as orders;
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{authed, backends, eventually};
use smtp::{SmtpServer, deliveries_of, free_port, inbox, part, relay_on, state};

/// An active product `sku` at 12.50 EUR with 10 in stock, as the operator.
async fn product(one: &One, sku: &str) {
    let mut inventory = one.mesh.inventory().await;
    let created = inventory
        .create_product(one.op(inv::CreateProductRequest {
            product: Some(inv::Product {
                sku: sku.to_owned(),
                name: "Blue mug".to_owned(),
                price_minor: 1250,
                currency: "EUR".to_owned(),
                active: true,
                ..Default::default()
            }),
        }))
        .await
        .unwrap_or_else(|s| panic!("CreateProduct: {s:?}"))
        .into_inner()
        .product
        .unwrap();
    inventory
        .adjust_stock(one.op(inv::AdjustStockRequest {
            product_id: created.product_id,
            delta: 10,
            reason: inv::AdjustmentReason::Restock.into(),
            ..Default::default()
        }))
        .await
        .unwrap_or_else(|s| panic!("AdjustStock: {s:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_notifies_the_customer_in_app_by_email_and_by_webhook() {
    if !smtp::available() {
        return;
    }
    let Some(verifier) = receiver::Verifier::new() else {
        return;
    };
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let server = SmtpServer::start(dir.path(), port).await;
        let extra = [ServiceKind::Inventory, ServiceKind::Orders];
        let one = One::start_with(backend, &extra, |s| relay_on(s, port)).await;
        product(&one, "MUG").await;
        let ada = one.mesh.customer().await;
        // Ada wants orders on every channel, and registers her receiver for them.
        let mut hooks = receiver::Receiver::ok().await;
        let mut client = one.client().await;
        client
            .set_preferences(authed(
                pb::SetPreferencesRequest {
                    preferences: Some(pb::NotificationPreferences {
                        default_channels: vec![pb::Channel::InApp.into()],
                        event_types: vec![pb::EventTypePreference {
                            event_type: "orders.*".to_owned(),
                            channels: [
                                pb::Channel::InApp,
                                pb::Channel::Email,
                                pb::Channel::Webhook,
                            ]
                            .map(i32::from)
                            .to_vec(),
                        }],
                        updated_at: None,
                    }),
                },
                &ada.access_token,
            ))
            .await
            .unwrap();
        let (_, secret) = receiver::create_endpoint(
            &mut client,
            &ada.access_token,
            &hooks.url("/hook"),
            &["orders.*"],
        )
        .await;
        let mut shop = one.mesh.orders().await;
        let order = shop
            .create_order(authed(
                orders::CreateOrderRequest {
                    idempotency_key: "ada-1".to_owned(),
                    lines: vec![orders::OrderLine {
                        sku: "MUG".to_owned(),
                        quantity: 2,
                        ..Default::default()
                    }],
                },
                &ada.access_token,
            ))
            .await
            .unwrap_or_else(|s| panic!("{backend:?}: CreateOrder: {s:?}"))
            .into_inner()
            .order
            .unwrap();
        shop.pay_order(authed(
            orders::PayOrderRequest {
                order_id: order.order_id.clone(),
                amount_minor: order.total_minor,
                currency: order.currency.clone(),
                payment_reference: "pay-e2e".to_owned(),
            },
            &ada.access_token,
        ))
        .await
        .unwrap_or_else(|s| panic!("{backend:?}: PayOrder: {s:?}"));

        // In the inbox: the catalogue's text with the order's own values.
        let paid = eventually("the orders.order.paid notification", LIMIT, || {
            let (mut client, token) = (client.clone(), ada.access_token.clone());
            async move {
                inbox(&mut client, &token)
                    .await
                    .into_iter()
                    .find(|n| n.event_type == "orders.order.paid")
            }
        })
        .await;
        let body = format!(
            "We received your payment of 25.00 EUR for order {} (reference pay-e2e).",
            order.order_id
        );
        assert_eq!(paid.subject, "Payment received", "{backend:?}");
        assert_eq!(paid.body, body);
        assert_eq!(paid.data.get("order_id"), Some(&order.order_id));
        let all = inbox(&mut client, &ada.access_token).await;
        let paid_count = all
            .iter()
            .filter(|n| n.event_type == "orders.order.paid")
            .count();
        assert_eq!(paid_count, 1, "{backend:?}: once");

        // By email: delivered, and at the relay exactly once, to Ada, with the same text.
        let delivery = eventually("the paid email DELIVERED", LIMIT, || {
            let (mut client, token) = (client.clone(), one.admin.access_token.clone());
            let id = paid.notification_id.clone();
            async move {
                deliveries_of(&mut client, &token, &id)
                    .await
                    .into_iter()
                    .find(|d| {
                        state(d) == pb::DeliveryState::Delivered
                            && d.channel() == pb::Channel::Email
                    })
            }
        })
        .await;
        let messages = server.messages();
        let emails: Vec<_> = messages
            .iter()
            .filter(|m| m["subject"] == "Payment received")
            .collect();
        assert_eq!(
            emails.len(),
            1,
            "{backend:?}: one paid email in {messages:?}"
        );
        let email = emails[0];
        assert!(
            email["to"]
                .as_str()
                .unwrap()
                .contains(&format!("<{}>", ada.email))
        );
        assert_eq!(
            email["message_id"],
            format!("<{}@ironmesh>", delivery.delivery_id)
        );
        assert_eq!(part(email, "text/plain").trim_end(), body);
        assert!(part(email, "text/html").contains(&order.order_id));

        // By webhook: the reservation's, then the payment's, each signed with Ada's secret.
        let posts = hooks.take(2).await;
        let paid_post = posts
            .iter()
            .find(|r| r.json()["type"] == "orders.order.paid")
            .expect("the paid webhook");
        assert_eq!(
            paid_post.json()["notification_id"],
            paid.notification_id,
            "{backend:?}"
        );
        assert_eq!(paid_post.json()["body"], body);
        assert!(
            verifier.verifies(&secret, paid_post).await,
            "standardwebhooks verifies it"
        );
        assert!(
            !verifier
                .verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", paid_post)
                .await
        );
        one.stop().await;
        drop(server);
    }
}
