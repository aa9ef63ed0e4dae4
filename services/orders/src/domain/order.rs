//! The order as orders keeps it: what the contract shows plus recovery's bookkeeping
//! (`release_pending`, `next_attempt_ms`, `version`).

use chrono::{DateTime, Utc};

/// Where an order is in its lifecycle (the state machine is in [`super::lifecycle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Pending,
    Reserved,
    Paid,
    Fulfilled,
    Cancelled,
    Refunded,
    Rejected,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Pending,
        OrderStatus::Reserved,
        OrderStatus::Paid,
        OrderStatus::Fulfilled,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
        OrderStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Reserved => "RESERVED",
            OrderStatus::Paid => "PAID",
            OrderStatus::Fulfilled => "FULFILLED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::Rejected => "REJECTED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The last word of the event a transition into this status emits (`orders.order.paid`).
    pub fn event_name(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Reserved => "reserved",
            OrderStatus::Paid => "paid",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Rejected => "rejected",
        }
    }
}

/// One line, with the product's name and price as they were when the order was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: String,
    pub sku: String,
    pub product_name: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
}

impl OrderLine {
    /// Never overflows: quantities are at most 10 000 and the total was checked at creation.
    pub fn total_minor(&self) -> i64 {
        self.unit_price_minor.saturating_mul(self.quantity)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub status: OrderStatus,
    /// In request order.
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
    pub currency: String,
    pub idempotency_key: String,
    /// Empty until inventory held the stock.
    pub reservation_id: String,
    pub reservation_expires_at: Option<DateTime<Utc>>,
    /// While RESERVED, a non-empty reference means a payment is being recorded: the order is
    /// locked for it (no cancel, no other payment). From PAID on, the payment's reference.
    pub payment_reference: String,
    pub shipment_reference: String,
    pub status_reason: String,
    /// The skus that were short when the order was REJECTED for stock.
    pub short_skus: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub refunded_at: Option<DateTime<Utc>>,
    /// CANCELLED or REJECTED while a reservation may still hold units: recovery releases it.
    pub release_pending: bool,
    /// When recovery next looks at this order, in ms since the epoch (it only looks at PENDING
    /// and RESERVED orders and those with a release pending).
    pub next_attempt_ms: i64,
    /// Grows with every change; each change is conditional on the version it was decided from.
    pub version: i64,
}

impl Order {
    /// RESERVED with a payment being recorded.
    pub fn paying(&self) -> bool {
        self.status == OrderStatus::Reserved && !self.payment_reference.is_empty()
    }

    /// RESERVED, not being paid, and past the reservation's expiry.
    pub fn lapsed(&self, now: DateTime<Utc>) -> bool {
        self.status == OrderStatus::Reserved
            && !self.paying()
            && self.reservation_expires_at.is_some_and(|at| at <= now)
    }

    /// The payment reference as the contract shows it: empty until PAID.
    pub fn shown_payment_reference(&self) -> &str {
        match self.status {
            OrderStatus::Paid | OrderStatus::Fulfilled | OrderStatus::Refunded => {
                &self.payment_reference
            }
            _ => "",
        }
    }
}

/// Milliseconds since the epoch of `at`.
pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}
