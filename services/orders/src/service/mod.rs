//! The operations ([`Orders`]): creation ([`create`]), the caller's transitions and reads
//! ([`requests`]), and the saga's steps shared with recovery ([`saga`]).
//!
//! Every change goes through [`Orders::update_known`]: let a [`lifecycle`] step decide from the
//! order as last seen, save conditionally, and on a lost race decide again from a fresh read.

pub mod create;
pub mod requests;
pub mod saga;

use chrono::{DateTime, Utc};

use crate::domain::lifecycle::Next;
use crate::domain::{Caller, Order, OrdersError};
use crate::events;
use crate::settings::OrdersConfig;
use crate::store::Store;
use crate::upstream::Inventory;

/// How many times a change is decided again after losing a race before the caller is told to
/// retry (ABORTED). Each loss means another change of the same order won.
const MAX_RACES: usize = 32;

/// Orders' operations over its store and inventory.
#[derive(Clone, Debug)]
pub struct Orders {
    store: Store,
    inventory: Inventory,
    settings: OrdersConfig,
}

impl Orders {
    pub fn new(store: Store, inventory: Inventory, settings: OrdersConfig) -> Self {
        Self {
            store,
            inventory,
            settings,
        }
    }

    pub fn settings(&self) -> &OrdersConfig {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The order, if `caller` may see it; another customer's is NOT_FOUND, like a missing one.
    pub async fn visible(&self, caller: &Caller, id: &str) -> Result<Order, OrdersError> {
        crate::domain::require_id("order_id", id)?;
        match self.store.get(id).await? {
            Some(order) if caller.may_see(&order) => Ok(order),
            _ => Err(OrdersError::NotFound),
        }
    }

    /// Applies `step` to the order, starting from `known` (the order as the caller last read or
    /// saved it): saves what the step decides (with the event of a status change) conditionally
    /// on the state it decided from; when `known` was stale the save loses, and the step decides
    /// again from a fresh read, as after any lost race. Returns the order as saved, or as it was
    /// when the step had nothing to do.
    pub async fn update_known(
        &self,
        known: &Order,
        actor: &str,
        step: impl Fn(&Order, DateTime<Utc>) -> Next,
    ) -> Result<Order, OrdersError> {
        self.update_from(Some(known.clone()), &known.id, actor, step)
            .await
    }

    async fn update_from(
        &self,
        mut known: Option<Order>,
        id: &str,
        actor: &str,
        step: impl Fn(&Order, DateTime<Utc>) -> Next,
    ) -> Result<Order, OrdersError> {
        for _ in 0..MAX_RACES {
            let current = match known.take() {
                Some(order) => order,
                None => self.store.get(id).await?.ok_or(OrdersError::NotFound)?,
            };
            let Some(next) = step(&current, ironmesh_runtime::storage::now())? else {
                return Ok(current);
            };
            let event = (next.status != current.status).then(|| events::order(actor, &next));
            if let Some(saved) = self.store.save(&next, &current, event).await? {
                if saved.status != current.status {
                    crate::metrics::transition(saved.status);
                }
                return Ok(saved);
            }
        }
        Err(OrdersError::Aborted(
            "the order kept changing under this request; retry it",
        ))
    }
}
