//! Stock levels and the adjustment ledger. An adjustment is one transaction: the idempotency
//! claim (when the caller sent a key), ONE conditional UPDATE of on_hand, the ledger row and
//! the event.

use chrono::{DateTime, Utc};
use ironmesh_idempotency::Claim;
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::with_pool;

use super::{Result, Store, StoreError};
use crate::domain::stock::{LedgerEntry, MAX_ON_HAND};
use crate::domain::{Adjustment, AdjustmentReason, Stock};

/// A stock row joined with its product's sku.
type StockRow = (String, String, i64, i64, DateTime<Utc>);

const STOCK: &str = "SELECT s.product_id, p.sku, s.on_hand, s.reserved, s.updated_at \
     FROM stock s JOIN products p ON p.id = s.product_id WHERE s.product_id = $1";

fn stock(row: StockRow) -> Stock {
    Stock {
        product_id: row.0,
        sku: row.1,
        on_hand: row.2,
        reserved: row.3,
        updated_at: row.4,
    }
}

/// A ledger row joined with its product's sku, as [`LEDGER`] selects it.
type LedgerRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    DateTime<Utc>,
    i64,
    i64,
);

const LEDGER: &str = "SELECT a.id, a.product_id, p.sku, a.delta, a.reason, a.note, a.actor, a.adjusted_at, \
     a.on_hand_after, a.reserved_after FROM stock_adjustments a JOIN products p ON p.id = a.product_id \
     WHERE a.id = $1";

fn ledger(row: LedgerRow) -> Result<LedgerEntry> {
    Ok(LedgerEntry {
        id: row.0,
        product_id: row.1.clone(),
        delta: row.3,
        reason: AdjustmentReason::parse(&row.4).ok_or(StoreError::Corrupt("adjustment reason"))?,
        note: row.5,
        actor: row.6,
        at: row.7,
        stock: Stock {
            product_id: row.1,
            sku: row.2,
            on_hand: row.8,
            reserved: row.9,
            updated_at: row.7,
        },
    })
}

/// What an adjustment came to.
#[derive(Debug)]
pub enum AdjustOutcome {
    /// Applied now.
    Adjusted(LedgerEntry),
    /// The key was used before with the same request: that adjustment, not applied again.
    Repeat(LedgerEntry),
    /// The key was used before with another request.
    KeyMismatch,
    NoSuchProduct,
    /// on_hand would drop below reserved (or the levels it would leave are out of range);
    /// nothing changed.
    Refused(Stock),
}

/// The idempotency claim of an adjustment: scope, key and the request's fingerprint.
pub struct KeyClaim<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
}

impl Store {
    pub async fn stock(&self, product_id: &str) -> Result<Option<Stock>> {
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, StockRow>(STOCK)
            .bind(product_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(stock))
    }

    /// Applies `adjustment` as `actor` with ledger id `id` (claiming `key` first, when given)
    /// and writes the event `event` builds from the ledger entry.
    pub async fn adjust_stock(
        &self,
        id: &str,
        adjustment: &Adjustment,
        actor: &str,
        key: Option<KeyClaim<'_>>,
        now: DateTime<Utc>,
        event: impl FnOnce(&LedgerEntry) -> NewEvent,
    ) -> Result<AdjustOutcome> {
        // Never below reserved, never past the ceiling — and so never an overflow in SQL,
        // since |delta| is far smaller than what is left below i64::MAX.
        let update = "UPDATE stock SET on_hand = on_hand + $1, updated_at = $2 \
             WHERE product_id = $3 AND on_hand + $1 >= reserved AND on_hand + $1 <= $4 \
             RETURNING on_hand, reserved";
        let insert = "INSERT INTO stock_adjustments (id, product_id, delta, reason, note, actor, adjusted_at, \
             on_hand_after, reserved_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let outcome = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            if let Some(key) = key {
                match ironmesh_idempotency::claim(&mut *tx, key.scope, key.key, key.fingerprint, id).await? {
                    Claim::Fresh => {}
                    Claim::Mismatch => return Ok(AdjustOutcome::KeyMismatch),
                    Claim::Repeat { resource } => {
                        let row = sqlx::query_as::<_, LedgerRow>(LEDGER)
                            .bind(&resource)
                            .fetch_optional(&mut *tx)
                            .await?
                            .ok_or(StoreError::Corrupt("idempotency key's adjustment"))?;
                        return Ok(AdjustOutcome::Repeat(ledger(row)?));
                    }
                }
            }
            let levels: Option<(i64, i64)> = sqlx::query_as(update)
                .bind(adjustment.delta)
                .bind(now)
                .bind(&adjustment.product_id)
                .bind(MAX_ON_HAND)
                .fetch_optional(&mut *tx)
                .await?;
            let current = sqlx::query_as::<_, StockRow>(STOCK)
                .bind(&adjustment.product_id)
                .fetch_optional(&mut *tx)
                .await?;
            let (on_hand, reserved, current) = match (levels, current) {
                (Some((on_hand, reserved)), Some(current)) => (on_hand, reserved, current),
                (_, None) => return Ok(AdjustOutcome::NoSuchProduct),
                (None, Some(current)) => return Ok(AdjustOutcome::Refused(stock(current))),
            };
            sqlx::query(insert)
                .bind(id)
                .bind(&adjustment.product_id)
                .bind(adjustment.delta)
                .bind(adjustment.reason.as_str())
                .bind(&adjustment.note)
                .bind(actor)
                .bind(now)
                .bind(on_hand)
                .bind(reserved)
                .execute(&mut *tx)
                .await?;
            let entry = LedgerEntry {
                id: id.to_owned(),
                product_id: adjustment.product_id.clone(),
                delta: adjustment.delta,
                reason: adjustment.reason,
                note: adjustment.note.clone(),
                actor: actor.to_owned(),
                at: now,
                stock: stock(current),
            };
            self.write_event(&mut *tx, event(&entry)).await?;
            tx.commit().await?;
            AdjustOutcome::Adjusted(entry)
        });
        self.committed();
        Ok(outcome)
    }
}
