//! The events inventory writes (payloads: `proto/ironmesh/inventory/v1/events.proto`), one
//! constructor per event type. The actor is the caller's principal subject (a user id, or
//! `service:<name>`), or [`crate::domain::INVENTORY_SERVICE`] for the sweeper's expiries; the
//! request id and trace come from the call context.

use ironmesh_outbox::NewEvent;
use ironmesh_proto::ironmesh::inventory::v1 as pb;

use crate::domain::stock::LedgerEntry;
use crate::domain::{Product, Reservation};
use crate::grpc::convert;

pub const PRODUCT_CREATED: &str = "inventory.product.created";
pub const PRODUCT_UPDATED: &str = "inventory.product.updated";
pub const STOCK_ADJUSTED: &str = "inventory.stock.adjusted";
pub const RESERVATION_HELD: &str = "inventory.reservation.held";
pub const RESERVATION_COMMITTED: &str = "inventory.reservation.committed";
pub const RESERVATION_RELEASED: &str = "inventory.reservation.released";
pub const RESERVATION_EXPIRED: &str = "inventory.reservation.expired";

/// `inventory.product.created` or `.updated` (`event_type`), with the product as stored.
pub fn product(event_type: &str, actor: &str, product: &Product) -> NewEvent {
    NewEvent::protobuf(
        event_type,
        "product",
        &product.id,
        actor,
        &convert::product(product),
    )
}

pub fn stock_adjusted(entry: &LedgerEntry) -> NewEvent {
    let message = pb::StockAdjusted {
        stock: Some(convert::stock(&entry.stock)),
        delta: entry.delta,
        reason: convert::reason(entry.reason).into(),
        note: entry.note.clone(),
        adjustment_id: entry.id.clone(),
    };
    NewEvent::protobuf(
        STOCK_ADJUSTED,
        "stock",
        &entry.product_id,
        &entry.actor,
        &message,
    )
}

/// `inventory.reservation.<held|committed|released|expired>` (`event_type`), with the
/// reservation after the change.
pub fn reservation(event_type: &str, actor: &str, reservation: &Reservation) -> NewEvent {
    NewEvent::protobuf(
        event_type,
        "reservation",
        &reservation.id,
        actor,
        &convert::reservation(reservation),
    )
}
