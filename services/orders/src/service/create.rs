//! CreateOrder: answer a repeat of the customer's idempotency key from what it recorded; else
//! price the lines from inventory's catalogue, write the PENDING order with its key and event
//! in one transaction, and reserve its stock in a task of its own.

use std::time::Duration;

use ironmesh_idempotency::Claim;

use super::Orders;
use super::saga::{Step, detached, rejection};
use crate::domain::order::millis;
use crate::domain::{Caller, NewOrder, Order, OrderStatus, OrdersError};
use crate::events;
use crate::store::{Inserted, orders_key_scope};

/// How long after creation recovery first looks at a PENDING order (at most the pending
/// timeout): the CreateOrder that wrote it is normally done long before.
const FIRST_LOOK: Duration = Duration::from_secs(5);

impl Orders {
    /// Creates `new` for `caller`; `fingerprint` identifies the request for its key.
    pub async fn create_order(
        &self,
        caller: &Caller,
        new: NewOrder,
        fingerprint: &str,
    ) -> Result<Order, OrdersError> {
        let scope = orders_key_scope(&caller.subject);
        let db = self.store.database();
        if let Some(found) =
            ironmesh_idempotency::lookup(db, &scope, &new.idempotency_key, fingerprint)
                .await
                .map_err(|err| OrdersError::Internal(Box::new(err)))?
        {
            return self.repeat(found).await;
        }
        let (ids, skus) = new.lookups();
        let catalogue = self.inventory.products(ids, skus).await.map_err(|err| {
            tracing::warn!(error = %err, "pricing an order failed");
            OrdersError::Unavailable(
                "inventory is unavailable; retry with the same idempotency_key",
            )
        })?;
        let now = ironmesh_runtime::storage::now();
        let id = ironmesh_runtime::storage::new_id();
        let mut order = new.price(id, &caller.subject, &catalogue, now)?;
        let first_look = FIRST_LOOK.min(self.settings.pending_timeout());
        order.next_attempt_ms = millis(now) + i64::try_from(first_look.as_millis()).unwrap_or(0);
        let event = events::order(&caller.subject, &order);
        match self.store.insert(&order, fingerprint, event).await? {
            Inserted::Created => crate::metrics::transition(OrderStatus::Pending),
            Inserted::Repeat(id) => return self.repeat(Claim::Repeat { resource: id }).await,
            Inserted::Mismatch => return self.repeat(Claim::Mismatch).await,
        }
        let this = self.clone();
        let actor = caller.subject.clone();
        let pending = order.clone();
        let step = detached(async move { this.reserve_stock(&pending, &actor).await }).await??;
        match step {
            Step::Done(order) => answer(order),
            Step::Later(unreachable) => {
                tracing::warn!(order_id = %order.id, error = %unreachable, "reserving stock failed; recovery retries");
                Ok(order)
            }
        }
    }

    /// The answer to a request whose key was used before.
    async fn repeat(&self, found: Claim) -> Result<Order, OrdersError> {
        let id = match found {
            Claim::Repeat { resource } => resource,
            Claim::Fresh => return Err(OrdersError::Aborted("retry the request")),
            Claim::Mismatch => {
                return Err(OrdersError::invalid(
                    "idempotency_key",
                    "already used by this customer for a different request",
                ));
            }
        };
        let order = self.store.get(&id).await?.ok_or_else(|| {
            OrdersError::Internal("an idempotency key names an order that does not exist".into())
        })?;
        if order.status == OrderStatus::Pending {
            return Err(OrdersError::Aborted(
                "the order with this idempotency_key is still being created; retry shortly",
            ));
        }
        answer(order)
    }
}

/// What CreateOrder answers for `order`: the order, or for a REJECTED one FAILED_PRECONDITION
/// with its short lines.
fn answer(order: Order) -> Result<Order, OrdersError> {
    if order.status == OrderStatus::Rejected && !order.short_skus.is_empty() {
        return Err(rejection(&order));
    }
    Ok(order)
}
