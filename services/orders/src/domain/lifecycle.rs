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
mod tests;
