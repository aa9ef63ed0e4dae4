//! The state machine's steps, one path and its repeats at a time.

use super::*;
use crate::domain::create::{CatalogueProduct, NewOrder, RawLine};

fn order() -> Order {
    let new = NewOrder::new(
        "k",
        &[RawLine {
            product_id: "",
            sku: "MUG",
            quantity: 2,
        }],
    )
    .unwrap();
    let catalogue = [CatalogueProduct {
        id: "p".into(),
        sku: "MUG".into(),
        name: "Mug".into(),
        price_minor: 500,
        currency: "EUR".into(),
        active: true,
    }];
    new.price("o".into(), "alice", &catalogue, Utc::now())
        .unwrap()
}

fn pay(reference: &str) -> Payment {
    Payment {
        amount_minor: 1000,
        currency: "EUR".into(),
        reference: reference.into(),
    }
}

fn apply(order: &Order, next: Next) -> Order {
    next.unwrap().unwrap_or_else(|| order.clone())
}

#[test]
fn the_happy_path_and_its_repeats() {
    let now = Utc::now();
    let o = order();
    let r = apply(
        &o,
        reserved(&o, "r1", now + chrono::Duration::minutes(15), now),
    );
    assert_eq!(r.status, OrderStatus::Reserved);
    assert!(reserved(&r, "r1", now, now).unwrap().is_none(), "repeat");
    let locked = apply(&r, start_payment(&r, &pay("ch_1"), now));
    assert!(locked.paying());
    assert_eq!(
        locked.shown_payment_reference(),
        "",
        "not shown before PAID"
    );
    assert!(start_payment(&locked, &pay("ch_1"), now).unwrap().is_none());
    assert!(start_payment(&locked, &pay("ch_2"), now).is_err());
    assert!(cancel(&locked, "", now).is_err(), "no cancel while paying");
    assert!(
        expire(&locked, now + chrono::Duration::hours(1))
            .unwrap()
            .is_none()
    );
    let p = apply(&locked, paid(&locked, "ch_1", now));
    assert_eq!(p.status, OrderStatus::Paid);
    assert_eq!(p.shown_payment_reference(), "ch_1");
    assert!(start_payment(&p, &pay("ch_1"), now).unwrap().is_none());
    assert!(cancel(&p, "", now).is_err());
    let f = apply(&p, fulfill(&p, "UPS-1", now));
    assert_eq!(f.status, OrderStatus::Fulfilled);
    assert!(fulfill(&f, "UPS-1", now).unwrap().is_none());
    let refunded = apply(&f, refund(&f, "damaged", now));
    assert_eq!(refunded.status, OrderStatus::Refunded);
    assert!(refund(&refunded, "again", now).unwrap().is_none());
}

#[test]
fn payments_must_match_and_beat_the_expiry() {
    let now = Utc::now();
    let o = order();
    let r = apply(
        &o,
        reserved(&o, "r1", now + chrono::Duration::minutes(1), now),
    );
    let wrong = Payment {
        amount_minor: 999,
        currency: "USD".into(),
        reference: "x".into(),
    };
    let Err(OrdersError::Precondition { problems, .. }) = start_payment(&r, &wrong, now) else {
        panic!("a wrong amount is refused");
    };
    assert_eq!(problems.len(), 2);
    let later = now + chrono::Duration::minutes(2);
    assert!(start_payment(&r, &pay("x"), later).is_err());
    let c = apply(&r, expire(&r, later));
    assert_eq!(c.status, OrderStatus::Cancelled);
    assert!(c.release_pending);
    let locked = apply(&r, start_payment(&r, &pay("x"), now));
    let refused = apply(&locked, payment_refused(&locked, "x", later));
    assert_eq!(refused.status, OrderStatus::Cancelled);
    assert!(
        !refused.release_pending,
        "nothing is held after a refused commit"
    );
}

#[test]
fn cancel_and_reject_mark_the_reservation_for_release() {
    let now = Utc::now();
    let o = order();
    let c = apply(&o, cancel(&o, "", now));
    assert_eq!(
        (c.status, c.release_pending),
        (OrderStatus::Cancelled, true)
    );
    assert_eq!(c.status_reason, "cancelled");
    assert!(cancel(&c, "again", now).unwrap().is_none());
    // A Reserve that answers after the cancel names the reservation to release.
    let learnt = apply(&c, reserved(&c, "late", now, now));
    assert_eq!(
        (learnt.status, learnt.reservation_id.as_str()),
        (OrderStatus::Cancelled, "late")
    );
    let done = apply(&learnt, released(&learnt));
    assert!(!done.release_pending);
    let short = apply(
        &o,
        rejected(&o, "insufficient stock: MUG", &["MUG".into()], now),
    );
    assert_eq!(
        (short.status, short.release_pending),
        (OrderStatus::Rejected, false)
    );
    let timed_out = apply(&o, rejected(&o, "inventory unavailable", &[], now));
    assert!(timed_out.release_pending);
    assert!(cancel(&short, "", now).is_err());
}
