//! Stock: AdjustStock (idempotent by the caller's key, refused below reserved) and GetStock.

use super::{Inventory, Result};
use crate::domain::stock::MAX_ON_HAND;
use crate::domain::{self, Adjustment, Caller, InventoryError, Problem, Stock};
use crate::events;
use crate::store::{AdjustOutcome, KeyClaim};

impl Inventory {
    /// Applies `adjustment` as `caller`. `fingerprint` identifies the request a key was used
    /// with: a repeat with the same key and request returns the original stock, with another
    /// request it is INVALID_ARGUMENT.
    pub async fn adjust_stock(
        &self,
        caller: &Caller,
        adjustment: Adjustment,
        fingerprint: &str,
    ) -> Result<Stock> {
        // Keys are the caller's: one principal's key never answers for another's request.
        let scope = format!("inventory.AdjustStock:{}", caller.actor);
        let key = adjustment.idempotency_key.as_deref().map(|key| KeyClaim {
            scope: &scope,
            key,
            fingerprint,
        });
        let id = domain::new_id();
        let outcome = self
            .store
            .adjust_stock(
                &id,
                &adjustment,
                &caller.actor,
                key,
                domain::now(),
                events::stock_adjusted,
            )
            .await?;
        match outcome {
            AdjustOutcome::Adjusted(entry) | AdjustOutcome::Repeat(entry) => Ok(entry.stock),
            AdjustOutcome::KeyMismatch => Err(InventoryError::invalid(
                "idempotency_key",
                "already used for a different request",
            )),
            AdjustOutcome::NoSuchProduct => Err(InventoryError::NotFound("product")),
            AdjustOutcome::Refused(stock) => {
                let after = stock.on_hand.saturating_add(adjustment.delta);
                let (kind, description) = if after < stock.reserved {
                    (
                        "STOCK_BELOW_RESERVED",
                        format!(
                            "on_hand {} + delta {} would be below reserved {}",
                            stock.on_hand, adjustment.delta, stock.reserved
                        ),
                    )
                } else {
                    ("STOCK_LIMIT", format!("on_hand would exceed {MAX_ON_HAND}"))
                };
                Err(InventoryError::precondition(
                    "the adjustment would leave on_hand out of range",
                    vec![Problem {
                        kind,
                        subject: stock.sku,
                        description,
                    }],
                ))
            }
        }
    }

    pub async fn stock(&self, product_id: &str) -> Result<Stock> {
        domain::require_id("product_id", product_id)?;
        self.store
            .stock(product_id)
            .await?
            .ok_or(InventoryError::NotFound("product"))
    }
}
