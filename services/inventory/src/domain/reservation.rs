//! Reservations: units held for one order. Lifecycle: HELD → COMMITTED (paid: on_hand and
//! reserved both drop), HELD → RELEASED (given back), HELD → EXPIRED (its TTL passed; given
//! back). The three later states are terminal. A HELD reservation past `expires_at` counts as
//! expired: whoever meets it first (a Commit, a Release, the sweeper) expires it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ironmesh_runtime::validation::Violations;

use super::product::check_sku;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReservationStatus {
    Held,
    Committed,
    Released,
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "HELD",
            ReservationStatus::Committed => "COMMITTED",
            ReservationStatus::Released => "RELEASED",
            ReservationStatus::Expired => "EXPIRED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "HELD" => ReservationStatus::Held,
            "COMMITTED" => ReservationStatus::Committed,
            "RELEASED" => ReservationStatus::Released,
            "EXPIRED" => ReservationStatus::Expired,
            _ => return None,
        })
    }
}

/// One reserved line: both product id and sku are known once held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationLine {
    pub product_id: String,
    pub sku: String,
    pub quantity: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub order_id: String,
    /// In request order.
    pub lines: Vec<ReservationLine>,
    pub status: ReservationStatus,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Reservation {
    /// HELD but past its expiry: to be expired before anything else happens to it.
    pub fn lapsed(&self, now: DateTime<Utc>) -> bool {
        self.status == ReservationStatus::Held && self.expires_at <= now
    }
}

/// How a request names a product.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProductRef {
    Id(String),
    Sku(String),
}

impl ProductRef {
    /// What a violation about this product names when it is not known.
    pub fn subject(&self) -> &str {
        match self {
            ProductRef::Id(id) => id,
            ProductRef::Sku(sku) => sku,
        }
    }
}

/// One requested line, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRequest {
    pub product: ProductRef,
    pub quantity: i64,
}

/// A Reserve request, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveRequest {
    pub order_id: String,
    pub lines: Vec<LineRequest>,
    pub ttl: Duration,
}

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 10_000;
pub const MAX_REASON_CHARS: usize = 500;

/// A requested line as it arrives: product id and sku (exactly one set), quantity.
pub struct RawLine<'a> {
    pub product_id: &'a str,
    pub sku: &'a str,
    pub quantity: i64,
}

impl ReserveRequest {
    /// The request checked against the contract. `ttl` is the caller's (`None`: unset, or
    /// `Err(())` when it was not a valid duration), `default_ttl` the configured one.
    pub fn new(
        order_id: &str,
        lines: &[RawLine<'_>],
        ttl: Option<Result<Duration, ()>>,
        default_ttl: Duration,
    ) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        super::check_id(&mut violations, "order_id", order_id);
        if lines.is_empty() {
            violations.add("lines", "at least one line is required");
        } else if lines.len() > MAX_LINES {
            violations.add("lines", "at most 100 lines");
        }
        let mut checked: Vec<LineRequest> = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate().take(MAX_LINES) {
            let product = match (line.product_id.is_empty(), line.sku.is_empty()) {
                (false, true) => {
                    super::check_id(
                        &mut violations,
                        &format!("lines[{i}].product_id"),
                        line.product_id,
                    );
                    Some(ProductRef::Id(line.product_id.to_owned()))
                }
                (true, false) => {
                    check_sku(&mut violations, &format!("lines[{i}].sku"), line.sku);
                    Some(ProductRef::Sku(line.sku.to_owned()))
                }
                _ => {
                    violations.add(
                        format!("lines[{i}]"),
                        "set exactly one of product_id or sku",
                    );
                    None
                }
            };
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                violations.add(format!("lines[{i}].quantity"), "must be 1-10000");
            }
            if let Some(product) = product {
                if checked.iter().any(|c| c.product == product) {
                    violations.add(
                        format!("lines[{i}]"),
                        "a product may appear in at most one line",
                    );
                }
                checked.push(LineRequest {
                    product,
                    quantity: line.quantity,
                });
            }
        }
        let ttl = match ttl {
            None => default_ttl,
            Some(Ok(ttl))
                if (crate::settings::MIN_TTL..=crate::settings::MAX_TTL).contains(&ttl) =>
            {
                ttl
            }
            Some(_) => {
                violations.add("ttl", "must be between 1 minute and 24 hours");
                default_ttl
            }
        };
        violations.into_result()?;
        Ok(Self {
            order_id: order_id.to_owned(),
            lines: checked,
            ttl,
        })
    }
}

/// A ReleaseReservation's reason, checked.
pub fn check_release_reason(reason: &str) -> Result<(), Violations> {
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Violations::one("reason", "at most 500 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(violations: Violations) -> Vec<String> {
        violations.iter().map(|v| v.field.clone()).collect()
    }

    const DEFAULT: Duration = Duration::from_secs(900);

    #[test]
    fn lines_ttl_and_order_are_checked() {
        let order = uuid::Uuid::now_v7().to_string();
        let id = uuid::Uuid::now_v7().to_string();
        let line = |product_id, sku, quantity| RawLine {
            product_id,
            sku,
            quantity,
        };
        let ok = ReserveRequest::new(
            &order,
            &[line(&id, "", 2), line("", "MUG", 1)],
            None,
            DEFAULT,
        )
        .unwrap();
        assert_eq!(ok.ttl, DEFAULT);
        assert_eq!(ok.lines[1].product, ProductRef::Sku("MUG".into()));

        let err = ReserveRequest::new(
            "",
            &[
                line(&id, "MUG", 1),
                line("", "", 1),
                line("", "mug", 0),
                line(&id, "", 10_001),
                line(&id, "", 1),
            ],
            Some(Ok(Duration::from_secs(59))),
            DEFAULT,
        )
        .unwrap_err();
        assert_eq!(
            fields(err),
            [
                "order_id",
                "lines[0]",
                "lines[1]",
                "lines[2].sku",
                "lines[2].quantity",
                "lines[3].quantity",
                "lines[4]",
                "ttl"
            ]
        );
        let none = ReserveRequest::new(&order, &[], Some(Err(())), DEFAULT).unwrap_err();
        assert_eq!(fields(none), ["lines", "ttl"]);
        let many: Vec<_> = (0..101).map(|_| line("", "A", 1)).collect();
        let err = ReserveRequest::new(&order, &many, None, DEFAULT).unwrap_err();
        assert_eq!(fields(err)[0], "lines");
        let day = ReserveRequest::new(
            &order,
            &[line(&id, "", 1)],
            Some(Ok(Duration::from_secs(86_400))),
            DEFAULT,
        );
        assert!(day.is_ok());
    }
}
