//! The state machine, as pure functions from the order as read to the order to write:
//! `Ok(Some(next))` — write it (conditional on the version read, so a concurrent change makes
//! the writer decide again); `Ok(None)` — nothing to do (the order is already there: the
//! transition RPCs are idempotent); `Err` — the transition does not apply.
//!
//! ```text
//! PENDING ─reserved→ RESERVED ─payment started→ RESERVED (paying) ─committed→ PAID ─→ FULFILLED
//! PENDING ─short / timed out→ REJECTED                            └─refused→ CANCELLED
//! PENDING / RESERVED (not paying) ─cancel or expiry→ CANCELLED
//! PAID / FULFILLED ─refund→ REFUNDED
//! ```
//!
//! A payment locks the RESERVED order before inventory commits the stock: between that lock
//! and PAID no cancel and no expiry can win, so a concurrent PayOrder and CancelOrder have
//! exactly one winner and events never say PAID for stock that was not taken. A cancelled or
//! timed-out order is marked `release_pending` until its reservation (known or not) is
//! released; recovery sees to that.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::order::millis;
use super::{Order, OrderStatus, OrdersError, Problem};

/// What a step decides.
pub type Next = Result<Option<Order>, OrdersError>;

/// How long a payment may stay in progress before recovery finishes it (commits the stock or
/// cancels the order).
pub const PAYMENT_LEASE: Duration = Duration::from_secs(30);

/// A payment as PayOrder states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub amount_minor: i64,
    pub currency: String,
    pub reference: String,
}

fn after(now: DateTime<Utc>, wait: Duration) -> i64 {
    millis(now).saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

fn moved(order: &Order, to: OrderStatus, now: DateTime<Utc>) -> Order {
    let mut next = order.clone();
    next.status = to;
    next.updated_at = now;
    next
}

/// Inventory holds the stock (`reservation_id`, until `expires_at`). A PENDING order becomes
/// RESERVED; one cancelled or rejected meanwhile keeps its status but learns the reservation,
/// so that it is released.
pub fn reserved(
    order: &Order,
    reservation_id: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Next {
    match order.status {
        OrderStatus::Pending => {
            let mut next = moved(order, OrderStatus::Reserved, now);
            next.reservation_id = reservation_id.to_owned();
            next.reservation_expires_at = Some(expires_at);
            next.next_attempt_ms = millis(expires_at);
            Ok(Some(next))
        }
        OrderStatus::Cancelled | OrderStatus::Rejected if order.reservation_id.is_empty() => {
            let mut next = order.clone();
            next.reservation_id = reservation_id.to_owned();
            next.release_pending = true;
            Ok(Some(next))
        }
        _ => Ok(None),
    }
}

/// A PENDING order becomes REJECTED: `short` names the skus inventory could not hold (then
/// nothing is held), or is empty when inventory could not be reached in time (then a
/// reservation may exist and is released).
pub fn rejected(order: &Order, reason: &str, short: &[String], now: DateTime<Utc>) -> Next {
    if order.status != OrderStatus::Pending {
        return Ok(None);
    }
    let mut next = moved(order, OrderStatus::Rejected, now);
    next.status_reason = reason.to_owned();
    next.short_skus = short.to_vec();
    next.release_pending = short.is_empty();
    next.next_attempt_ms = millis(now);
    Ok(Some(next))
}

/// CancelOrder: PENDING or RESERVED (not being paid) → CANCELLED, reservation to release.
pub fn cancel(order: &Order, reason: &str, now: DateTime<Utc>) -> Next {
    match order.status {
        OrderStatus::Cancelled => Ok(None),
        OrderStatus::Pending | OrderStatus::Reserved if !order.paying() => {
            let reason = if reason.trim().is_empty() {
                "cancelled"
            } else {
                reason
            };
            Ok(Some(cancelled(order, reason, now)))
        }
        OrderStatus::Pending | OrderStatus::Reserved => Err(OrdersError::status(
            order,
            "a payment of this order is being recorded; it can no longer be cancelled",
        )),
        OrderStatus::Paid | OrderStatus::Fulfilled | OrderStatus::Refunded => Err(
            OrdersError::status(order, "the order is paid; refund it instead of cancelling"),
        ),
        OrderStatus::Rejected => Err(OrdersError::status(
            order,
            "the order was rejected and holds nothing to cancel",
        )),
    }
}

fn cancelled(order: &Order, reason: &str, now: DateTime<Utc>) -> Order {
    let mut next = moved(order, OrderStatus::Cancelled, now);
    next.status_reason = reason.to_owned();
    next.cancelled_at = Some(now);
    next.release_pending = true;
    next.next_attempt_ms = millis(now);
    next
}

/// The reservation's expiry passed before any payment began: CANCELLED, units to release.
pub fn expire(order: &Order, now: DateTime<Utc>) -> Next {
    if !order.lapsed(now) {
        return Ok(None);
    }
    Ok(Some(cancelled(
        order,
        "the reservation expired before payment",
        now,
    )))
}

/// PayOrder's first step: checks the payment against the order and locks the RESERVED order
/// for it. `None` when it is locked for this very payment already, or already paid by it.
pub fn start_payment(order: &Order, payment: &Payment, now: DateTime<Utc>) -> Next {
    match order.status {
        OrderStatus::Paid | OrderStatus::Fulfilled | OrderStatus::Refunded => {
            if order.payment_reference == payment.reference {
                Ok(None)
            } else {
                Err(OrdersError::status(
                    order,
                    "the order was already paid with another payment_reference",
                ))
            }
        }
        OrderStatus::Reserved if order.paying() => {
            if order.payment_reference == payment.reference {
                Ok(None)
            } else {
                Err(OrdersError::status(
                    order,
                    "another payment of this order is being recorded",
                ))
            }
        }
        OrderStatus::Reserved => {
            let mut problems = Vec::new();
            if payment.amount_minor != order.total_minor {
                problems.push(Problem::new(
                    "AMOUNT_MISMATCH",
                    "amount_minor",
                    format!("the order total is {}", order.total_minor),
                ));
            }
            if payment.currency != order.currency {
                problems.push(Problem::new(
                    "CURRENCY_MISMATCH",
                    "currency",
                    format!("the order is in {}", order.currency),
                ));
            }
            if !problems.is_empty() {
                return Err(OrdersError::precondition(
                    "the payment does not match the order total",
                    problems,
                ));
            }
            if order.lapsed(now) {
                return Err(OrdersError::status(order, "the reservation has expired"));
            }
            let mut next = order.clone();
            next.payment_reference = payment.reference.clone();
            next.updated_at = now;
            next.next_attempt_ms = after(now, PAYMENT_LEASE);
            Ok(Some(next))
        }
        OrderStatus::Pending => Err(OrdersError::status(
            order,
            "the order's stock is not reserved yet; retry shortly",
        )),
        OrderStatus::Cancelled | OrderStatus::Rejected => Err(OrdersError::status(
            order,
            "only RESERVED orders can be paid",
        )),
    }
}

/// Inventory committed the stock of the payment `reference`: PAID.
pub fn paid(order: &Order, reference: &str, now: DateTime<Utc>) -> Next {
    if order.status != OrderStatus::Reserved || order.payment_reference != reference {
        return Ok(None);
    }
    let mut next = moved(order, OrderStatus::Paid, now);
    next.paid_at = Some(now);
    Ok(Some(next))
}

/// Inventory refused to commit (the reservation expired or was released first): CANCELLED;
/// nothing is held any more.
pub fn payment_refused(order: &Order, reference: &str, now: DateTime<Utc>) -> Next {
    if order.status != OrderStatus::Reserved || order.payment_reference != reference {
        return Ok(None);
    }
    let mut next = cancelled(
        order,
        "the reservation expired before the payment was recorded",
        now,
    );
    next.release_pending = false;
    Ok(Some(next))
}

/// FulfillOrder: PAID → FULFILLED.
pub fn fulfill(order: &Order, shipment_reference: &str, now: DateTime<Utc>) -> Next {
    match order.status {
        OrderStatus::Fulfilled => Ok(None),
        OrderStatus::Paid => {
            let mut next = moved(order, OrderStatus::Fulfilled, now);
            next.shipment_reference = shipment_reference.to_owned();
            next.fulfilled_at = Some(now);
            Ok(Some(next))
        }
        _ => Err(OrdersError::status(
            order,
            "only PAID orders can be fulfilled",
        )),
    }
}

/// RefundOrder: PAID or FULFILLED → REFUNDED.
pub fn refund(order: &Order, reason: &str, now: DateTime<Utc>) -> Next {
    match order.status {
        OrderStatus::Refunded => Ok(None),
        OrderStatus::Paid | OrderStatus::Fulfilled => {
            let mut next = moved(order, OrderStatus::Refunded, now);
            next.status_reason = reason.to_owned();
            next.refunded_at = Some(now);
            Ok(Some(next))
        }
        _ => Err(OrdersError::status(
            order,
            "only PAID or FULFILLED orders can be refunded",
        )),
    }
}

/// The order's reservation is released (or was never made): nothing left to do.
pub fn released(order: &Order) -> Next {
    if !order.release_pending {
        return Ok(None);
    }
    let mut next = order.clone();
    next.release_pending = false;
    Ok(Some(next))
}

/// Recovery takes the order until `until` (ms): another replica looks again only then.
pub fn claimed(order: &Order, until: i64) -> Next {
    let mut next = order.clone();
    next.next_attempt_ms = until;
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
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
}
