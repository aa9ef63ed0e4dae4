//! The events orders writes: `orders.order.<status>` for every transition into a status
//! (`orders.order.pending` at creation), with the order as the contract shows it as payload
//! (`ironmesh.orders.v1.Order`). The actor is the caller's principal subject, or
//! [`crate::domain::ORDERS_SERVICE`] for what recovery does.

use ironmesh_outbox::NewEvent;

use crate::domain::Order;
use crate::grpc::convert;

/// The event type of a transition into `order`'s status.
pub fn event_type(order: &Order) -> String {
    format!("orders.order.{}", order.status.event_name())
}

/// `orders.order.<status>` for `order` as it now is.
pub fn order(actor: &str, order: &Order) -> NewEvent {
    NewEvent::protobuf(
        &event_type(order),
        "order",
        &order.id,
        actor,
        &convert::order(order),
    )
}
