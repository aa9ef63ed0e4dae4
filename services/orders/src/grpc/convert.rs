//! Proto ⇄ domain for orders, plain functions.

use ironmesh_proto::ironmesh::orders::v1 as pb;

use crate::domain::create::RawLine;
use crate::domain::{Order, OrderStatus, OrdersError};

pub use ironmesh_runtime::time::timestamp;

pub fn status(status: OrderStatus) -> pb::OrderStatus {
    match status {
        OrderStatus::Pending => pb::OrderStatus::Pending,
        OrderStatus::Reserved => pb::OrderStatus::Reserved,
        OrderStatus::Paid => pb::OrderStatus::Paid,
        OrderStatus::Fulfilled => pb::OrderStatus::Fulfilled,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled,
        OrderStatus::Refunded => pb::OrderStatus::Refunded,
        OrderStatus::Rejected => pb::OrderStatus::Rejected,
    }
}

/// A status filter: `None` for UNSPECIFIED (any); a value the contract does not define is a
/// violation on `status`.
pub fn status_filter(value: i32) -> Result<Option<OrderStatus>, OrdersError> {
    let known = pb::OrderStatus::try_from(value)
        .map_err(|_| OrdersError::invalid("status", "not an OrderStatus value"))?;
    let status = match known {
        pb::OrderStatus::Unspecified => return Ok(None),
        pb::OrderStatus::Pending => OrderStatus::Pending,
        pb::OrderStatus::Reserved => OrderStatus::Reserved,
        pb::OrderStatus::Paid => OrderStatus::Paid,
        pb::OrderStatus::Fulfilled => OrderStatus::Fulfilled,
        pb::OrderStatus::Cancelled => OrderStatus::Cancelled,
        pb::OrderStatus::Refunded => OrderStatus::Refunded,
        pb::OrderStatus::Rejected => OrderStatus::Rejected,
    };
    Ok(Some(status))
}

/// The order as the contract shows it (bookkeeping stays inside).
pub fn order(o: &Order) -> pb::Order {
    pb::Order {
        order_id: o.id.clone(),
        customer_id: o.customer_id.clone(),
        status: status(o.status).into(),
        lines: o
            .lines
            .iter()
            .map(|l| pb::OrderLine {
                product_id: l.product_id.clone(),
                sku: l.sku.clone(),
                quantity: l.quantity,
                product_name: l.product_name.clone(),
                unit_price_minor: l.unit_price_minor,
                line_total_minor: l.total_minor(),
            })
            .collect(),
        total_minor: o.total_minor,
        currency: o.currency.clone(),
        idempotency_key: o.idempotency_key.clone(),
        reservation_id: o.reservation_id.clone(),
        reservation_expires_at: match o.status {
            OrderStatus::Reserved => o.reservation_expires_at.map(timestamp),
            _ => None,
        },
        payment_reference: o.shown_payment_reference().to_owned(),
        shipment_reference: o.shipment_reference.clone(),
        status_reason: o.status_reason.clone(),
        created_at: Some(timestamp(o.created_at)),
        updated_at: Some(timestamp(o.updated_at)),
        paid_at: o.paid_at.map(timestamp),
        fulfilled_at: o.fulfilled_at.map(timestamp),
        cancelled_at: o.cancelled_at.map(timestamp),
        refunded_at: o.refunded_at.map(timestamp),
    }
}

pub fn raw_lines(lines: &[pb::OrderLine]) -> Vec<RawLine<'_>> {
    lines
        .iter()
        .map(|l| RawLine {
            product_id: &l.product_id,
            sku: &l.sku,
            quantity: l.quantity,
        })
        .collect()
}

/// What a CreateOrder's idempotency fingerprint covers: the fields the service reads.
pub fn create_fingerprint(request: &pb::CreateOrderRequest) -> String {
    use prost::Message as _;
    let read = pb::CreateOrderRequest {
        idempotency_key: request.idempotency_key.clone(),
        lines: request
            .lines
            .iter()
            .map(|l| pb::OrderLine {
                product_id: l.product_id.clone(),
                sku: l.sku.clone(),
                quantity: l.quantity,
                ..Default::default()
            })
            .collect(),
    };
    ironmesh_idempotency::fingerprint(&read.encode_to_vec())
}
