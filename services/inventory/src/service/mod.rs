//! The operations over the store and the product cache, one file per feature:
//! `products` (catalogue, cache-aside reads, paging), `stock` (AdjustStock with its idempotency
//! key, GetStock), `reservations` (Reserve, Commit, Release, the sweeper's expiries).
//! Input arrives checked as domain types; errors are [`InventoryError`].

mod products;
mod reservations;
mod stock;

use crate::cache::ProductCache;
use crate::domain::InventoryError;
use crate::settings::InventoryConfig;
use crate::store::Store;

/// Inventory's operations.
#[derive(Clone)]
pub struct Inventory {
    store: Store,
    cache: ProductCache,
    settings: InventoryConfig,
}

impl Inventory {
    pub fn new(store: Store, cache: ProductCache, settings: InventoryConfig) -> Self {
        Self {
            store,
            cache,
            settings,
        }
    }

    pub fn settings(&self) -> &InventoryConfig {
        &self.settings
    }
}

type Result<T> = std::result::Result<T, InventoryError>;
