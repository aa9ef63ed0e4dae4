//! Proto ⇄ domain, plain functions.

use std::time::Duration;

use ironmesh_proto::ironmesh::inventory::v1 as pb;

use crate::domain::reservation::RawLine;
use crate::domain::{
    AdjustmentReason, NewProduct, Product, Reservation, ReservationLine, ReservationStatus, Stock,
};

pub use ironmesh_runtime::time::timestamp;

pub fn product(p: &Product) -> pb::Product {
    pb::Product {
        product_id: p.id.clone(),
        sku: p.sku.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        price_minor: p.price_minor,
        currency: p.currency.clone(),
        active: p.active,
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
    }
}

/// The request's product as values to create or update with (product_id and output-only
/// fields are not read).
pub fn new_product(p: Option<&pb::Product>) -> NewProduct {
    let Some(p) = p else {
        return NewProduct::default();
    };
    NewProduct {
        sku: p.sku.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        price_minor: p.price_minor,
        currency: p.currency.clone(),
        active: p.active,
    }
}

pub fn stock(s: &Stock) -> pb::Stock {
    pb::Stock {
        product_id: s.product_id.clone(),
        sku: s.sku.clone(),
        on_hand: s.on_hand,
        reserved: s.reserved,
        available: s.available(),
        updated_at: Some(timestamp(s.updated_at)),
    }
}

pub fn adjustment_reason(reason: i32) -> Option<AdjustmentReason> {
    match pb::AdjustmentReason::try_from(reason).ok()? {
        pb::AdjustmentReason::Unspecified => None,
        pb::AdjustmentReason::Restock => Some(AdjustmentReason::Restock),
        pb::AdjustmentReason::Return => Some(AdjustmentReason::Return),
        pb::AdjustmentReason::Shrinkage => Some(AdjustmentReason::Shrinkage),
        pb::AdjustmentReason::Correction => Some(AdjustmentReason::Correction),
    }
}

pub fn reason(reason: AdjustmentReason) -> pb::AdjustmentReason {
    match reason {
        AdjustmentReason::Restock => pb::AdjustmentReason::Restock,
        AdjustmentReason::Return => pb::AdjustmentReason::Return,
        AdjustmentReason::Shrinkage => pb::AdjustmentReason::Shrinkage,
        AdjustmentReason::Correction => pb::AdjustmentReason::Correction,
    }
}

fn status(status: ReservationStatus) -> pb::ReservationStatus {
    match status {
        ReservationStatus::Held => pb::ReservationStatus::Held,
        ReservationStatus::Committed => pb::ReservationStatus::Committed,
        ReservationStatus::Released => pb::ReservationStatus::Released,
        ReservationStatus::Expired => pb::ReservationStatus::Expired,
    }
}

fn line(l: &ReservationLine) -> pb::ReservationLine {
    pb::ReservationLine {
        product_id: l.product_id.clone(),
        sku: l.sku.clone(),
        quantity: l.quantity,
    }
}

pub fn reservation(r: &Reservation) -> pb::Reservation {
    pb::Reservation {
        reservation_id: r.id.clone(),
        order_id: r.order_id.clone(),
        lines: r.lines.iter().map(line).collect(),
        status: status(r.status).into(),
        expires_at: Some(timestamp(r.expires_at)),
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
    }
}

pub fn raw_lines(lines: &[pb::ReservationLine]) -> Vec<RawLine<'_>> {
    lines
        .iter()
        .map(|l| RawLine {
            product_id: &l.product_id,
            sku: &l.sku,
            quantity: l.quantity,
        })
        .collect()
}

/// A request's `ttl`: `None` when unset, `Err` when it is not a valid non-negative duration.
pub fn ttl(ttl: Option<&prost_types::Duration>) -> Option<Result<Duration, ()>> {
    let ttl = ttl?;
    if ttl.seconds < 0 || !(0..1_000_000_000).contains(&ttl.nanos) {
        return Some(Err(()));
    }
    Some(Ok(Duration::new(
        u64::try_from(ttl.seconds).map_err(|_| ()).ok()?,
        u32::try_from(ttl.nanos).map_err(|_| ()).ok()?,
    )))
}

use ironmesh_runtime::time::from_timestamp;

/// A product as [`product`] encoded it for a cache, with the revision kept beside it.
pub fn stored_product(p: pb::Product, revision: i64) -> Option<Product> {
    Some(Product {
        created_at: from_timestamp(p.created_at)?,
        updated_at: from_timestamp(p.updated_at)?,
        id: p.product_id,
        sku: p.sku,
        name: p.name,
        description: p.description,
        price_minor: p.price_minor,
        currency: p.currency,
        active: p.active,
        revision,
    })
}
