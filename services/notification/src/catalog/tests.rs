//! The table: every row renders without leftover placeholders, order events reach their
//! customer, security events their user, provisioning outcomes the customer onboarded, unknown
//! types nobody, a wrong payload is an error.

use super::*;

fn event(event_type: &str, payload: Vec<u8>) -> Event {
    Event {
        id: "evt-1".into(),
        r#type: event_type.into(),
        source: "test".into(),
        payload,
        ..Default::default()
    }
}

fn paid_order() -> orders::Order {
    orders::Order {
        order_id: "o-1".into(),
        customer_id: "user-7".into(),
        status: orders::OrderStatus::Paid.into(),
        lines: vec![orders::OrderLine {
            product_name: "Blue mug".into(),
            quantity: 2,
            ..Default::default()
        }],
        total_minor: 2200,
        currency: "EUR".into(),
        payment_reference: "ch_1".into(),
        ..Default::default()
    }
}

#[test]
fn order_events_notify_the_customer_with_the_order_in_the_text() {
    let draft = draft(&event("orders.order.paid", paid_order().encode_to_vec()))
        .unwrap()
        .unwrap();
    assert_eq!(draft.recipient_id, "user-7");
    assert_eq!(draft.subject, "Payment received");
    assert_eq!(
        draft.body,
        "We received your payment of 22.00 EUR for order o-1 (reference ch_1)."
    );
    assert_eq!(draft.data["order_id"], "o-1");
    assert_eq!(draft.source_event_id, "evt-1");
}

#[test]
fn every_row_renders_every_placeholder() {
    let payloads = |payload: Payload| -> Vec<u8> {
        match payload {
            Payload::Order => paid_order().encode_to_vec(),
            Payload::PasswordChanged => auth::PasswordChanged {
                user_id: "u".into(),
                sessions_revoked: 2,
            }
            .encode_to_vec(),
            Payload::ApiKeyCreated => auth::ApiKeyCreated {
                user_id: "u".into(),
                name: "ci".into(),
                scopes: vec!["orders:read".into()],
                ..Default::default()
            }
            .encode_to_vec(),
            Payload::UserLocked => auth::UserLocked {
                user_id: "u".into(),
                reason: "too many failed logins".into(),
                until: None,
            }
            .encode_to_vec(),
            Payload::Provisioning => {
                ironmesh_proto::ironmesh::provisioning::v1::ProvisioningRequest {
                    request_id: "r".into(),
                    customer_id: "u".into(),
                    plan: "starter".into(),
                    ..Default::default()
                }
                .encode_to_vec()
            }
        }
    };
    for row in TABLE {
        let draft = draft(&event(row.event_type, payloads(row.payload)))
            .unwrap()
            .unwrap_or_else(|| panic!("{} notifies someone", row.event_type));
        assert!(
            !draft.body.contains('{') && !draft.subject.contains('{'),
            "{}: {}",
            row.event_type,
            draft.body
        );
    }
}

#[test]
fn unknown_types_notify_nobody_and_bad_payloads_are_errors() {
    assert_eq!(
        draft(&event("inventory.stock.adjusted", vec![])).unwrap(),
        None
    );
    let err = draft(&event("orders.order.paid", vec![0xff, 0xff, 0xff])).unwrap_err();
    assert_eq!(err.expected, "ironmesh.orders.v1.Order");
    // A payload without a recipient notifies nobody.
    let anonymous = orders::Order {
        customer_id: String::new(),
        ..paid_order()
    };
    assert_eq!(
        draft(&event("orders.order.paid", anonymous.encode_to_vec())).unwrap(),
        None
    );
}

#[test]
fn money_follows_the_currency_exponent() {
    assert_eq!(money(2200, "EUR"), "22.00 EUR");
    assert_eq!(money(5, "USD"), "0.05 USD");
    assert_eq!(money(1500, "JPY"), "1500 JPY");
    assert_eq!(money(1250, "KWD"), "1.250 KWD");
    assert_eq!(money(-199, "EUR"), "-1.99 EUR");
    assert_eq!(
        render("{a} and {b}", &BTreeMap::from([("a".into(), "x".into())])),
        "x and {b}"
    );
}

#[test]
fn provisioning_outcomes_notify_the_customer_being_onboarded() {
    use ironmesh_proto::ironmesh::provisioning::v1 as provisioning;
    let request = provisioning::ProvisioningRequest {
        request_id: "req-1".into(),
        customer_id: "cust-1".into(),
        plan: "professional".into(),
        attempts: 5,
        last_error: "region full".into(),
        ..Default::default()
    };
    let ok = draft(&event(
        "provisioning.request.succeeded",
        request.encode_to_vec(),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(ok.recipient_id, "cust-1");
    assert_eq!(ok.subject, "Your professional plan is ready");
    let failed = draft(&event(
        "provisioning.request.failed",
        request.encode_to_vec(),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        failed.body,
        "Provisioning request req-1 for the professional plan failed after 5 attempt(s): region full. Our operators have been told."
    );
}
