//! Stock levels and the adjustment ledger. Invariant at every instant, enforced by the database
//! (a CHECK, and conditional updates): `0 <= reserved <= on_hand`; `available = on_hand -
//! reserved`.

use chrono::{DateTime, Utc};
use ironmesh_runtime::validation::Violations;

/// One product's stock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stock {
    pub product_id: String,
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub updated_at: DateTime<Utc>,
}

impl Stock {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// Why stock was adjusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdjustmentReason {
    Restock,
    Return,
    Shrinkage,
    Correction,
}

impl AdjustmentReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AdjustmentReason::Restock => "RESTOCK",
            AdjustmentReason::Return => "RETURN",
            AdjustmentReason::Shrinkage => "SHRINKAGE",
            AdjustmentReason::Correction => "CORRECTION",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "RESTOCK" => AdjustmentReason::Restock,
            "RETURN" => AdjustmentReason::Return,
            "SHRINKAGE" => AdjustmentReason::Shrinkage,
            "CORRECTION" => AdjustmentReason::Correction,
            _ => return None,
        })
    }
}

/// Largest |delta| one adjustment may carry.
pub const MAX_DELTA: i64 = 1_000_000_000;
/// Most units one product may have on hand: far below `i64::MAX`, so `on_hand + delta` can
/// never overflow in SQL (SQLite would silently turn it into a float).
pub const MAX_ON_HAND: i64 = 1_000_000_000_000_000;
/// Longest note an adjustment may carry.
pub const MAX_NOTE_CHARS: usize = 500;

/// An AdjustStock request, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjustment {
    pub product_id: String,
    pub delta: i64,
    pub reason: AdjustmentReason,
    pub note: String,
    /// The client's UUID, if it sent one.
    pub idempotency_key: Option<String>,
}

impl Adjustment {
    /// The request's fields checked against the contract. `reason` is `None` when it was
    /// unspecified or unknown.
    pub fn new(
        product_id: &str,
        delta: i64,
        reason: Option<AdjustmentReason>,
        note: &str,
        idempotency_key: &str,
    ) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        super::check_id(&mut violations, "product_id", product_id);
        if delta == 0 {
            violations.add("delta", "must not be zero");
        } else if delta.unsigned_abs() > MAX_DELTA.unsigned_abs() {
            violations.add("delta", "|delta| must be at most 1000000000");
        }
        if reason.is_none() {
            violations.add(
                "reason",
                "required: RESTOCK, RETURN, SHRINKAGE or CORRECTION",
            );
        }
        if note.chars().count() > MAX_NOTE_CHARS {
            violations.add("note", "at most 500 characters");
        }
        if !idempotency_key.is_empty() && !super::is_uuid(idempotency_key) {
            violations.add("idempotency_key", "must be a UUID");
        }
        violations.into_result()?;
        Ok(Self {
            product_id: product_id.to_owned(),
            delta,
            reason: reason.expect("checked above"),
            note: note.to_owned(),
            idempotency_key: (!idempotency_key.is_empty()).then(|| idempotency_key.to_owned()),
        })
    }
}

/// The ledger row of one adjustment, with the levels it left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: String,
    pub product_id: String,
    pub delta: i64,
    pub reason: AdjustmentReason,
    pub note: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub stock: Stock,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjustment_rules() {
        let id = uuid::Uuid::now_v7().to_string();
        let ok = Adjustment::new(&id, -5, Some(AdjustmentReason::Shrinkage), "", "").unwrap();
        assert_eq!(ok.idempotency_key, None);
        let err = Adjustment::new("x", 0, None, &"n".repeat(501), "nope").unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.clone()).collect();
        assert_eq!(
            fields,
            ["product_id", "delta", "reason", "note", "idempotency_key"]
        );
        let too_big = Adjustment::new(&id, -MAX_DELTA - 1, Some(AdjustmentReason::Restock), "", "");
        assert!(too_big.is_err());
        assert!(Adjustment::new(&id, MAX_DELTA, Some(AdjustmentReason::Restock), "", "").is_ok());
        assert!(Adjustment::new(&id, i64::MIN, Some(AdjustmentReason::Restock), "", "").is_err());
    }
}
