//! A new order: the request's checks ([`NewOrder::new`]) and its pricing from the catalogue
//! ([`NewOrder::price`]) — every line's product found and active, one currency, a total that
//! fits.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use ironmesh_runtime::validation::{Violations, check_uuid};

use super::order::millis;
use super::{Order, OrderLine, OrderStatus, OrdersError, Problem};

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 10_000;
pub const MAX_KEY_CHARS: usize = 64;

/// How a request names a product.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProductRef {
    Id(String),
    Sku(String),
}

impl ProductRef {
    fn subject(&self) -> &str {
        match self {
            ProductRef::Id(id) | ProductRef::Sku(id) => id,
        }
    }

    fn names(&self, product: &CatalogueProduct) -> bool {
        match self {
            ProductRef::Id(id) => &product.id == id,
            ProductRef::Sku(sku) => &product.sku == sku,
        }
    }
}

/// One requested line, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRequest {
    pub product: ProductRef,
    pub quantity: i64,
}

/// A requested line as it arrives: product id and sku (exactly one set), quantity.
pub struct RawLine<'a> {
    pub product_id: &'a str,
    pub sku: &'a str,
    pub quantity: i64,
}

/// A CreateOrder request, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub idempotency_key: String,
    pub lines: Vec<LineRequest>,
}

/// A product as inventory's catalogue has it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueProduct {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub price_minor: i64,
    pub currency: String,
    pub active: bool,
}

impl NewOrder {
    pub fn new(idempotency_key: &str, lines: &[RawLine<'_>]) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        let key_chars = idempotency_key.chars().count();
        if idempotency_key.is_empty() {
            violations.add("idempotency_key", "required");
        } else if key_chars > MAX_KEY_CHARS {
            violations.add("idempotency_key", "at most 64 characters");
        } else if !idempotency_key
            .chars()
            .all(|c| c.is_ascii_graphic() || c == ' ')
        {
            violations.add("idempotency_key", "printable ASCII characters only");
        }
        if lines.is_empty() {
            violations.add("lines", "at least one line is required");
        } else if lines.len() > MAX_LINES {
            violations.add("lines", "at most 100 lines");
        }
        let mut checked = Vec::with_capacity(lines.len().min(MAX_LINES));
        let mut seen = HashSet::new();
        for (i, line) in lines.iter().enumerate().take(MAX_LINES) {
            let product = match (line.product_id.is_empty(), line.sku.is_empty()) {
                (false, true) => {
                    let field = format!("lines[{i}].product_id");
                    check_uuid(&mut violations, &field, line.product_id);
                    Some(ProductRef::Id(line.product_id.to_owned()))
                }
                (true, false) => {
                    if !valid_sku(line.sku) {
                        violations.add(
                            format!("lines[{i}].sku"),
                            "1–64 characters of A-Z, 0-9, '.', '_' and '-'",
                        );
                    }
                    Some(ProductRef::Sku(line.sku.to_owned()))
                }
                (true, true) => {
                    violations.add(format!("lines[{i}]"), "set product_id or sku");
                    None
                }
                (false, false) => {
                    violations.add(format!("lines[{i}]"), "set product_id or sku, not both");
                    None
                }
            };
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                violations.add(
                    format!("lines[{i}].quantity"),
                    "must be between 1 and 10000",
                );
            }
            if let Some(product) = product {
                if !seen.insert(product.clone()) {
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
        violations.into_result()?;
        Ok(Self {
            idempotency_key: idempotency_key.to_owned(),
            lines: checked,
        })
    }

    /// The product ids and skus to look up in the catalogue.
    pub fn lookups(&self) -> (Vec<String>, Vec<String>) {
        let (mut ids, mut skus) = (Vec::new(), Vec::new());
        for line in &self.lines {
            match &line.product {
                ProductRef::Id(id) => ids.push(id.clone()),
                ProductRef::Sku(sku) => skus.push(sku.clone()),
            }
        }
        (ids, skus)
    }

    /// The PENDING order `id` for `customer`, priced from `catalogue` (what inventory returned
    /// for [`Self::lookups`]). Unknown or inactive products and mixed currencies are
    /// FAILED_PRECONDITION with a violation per line; a product named twice (once by id, once
    /// by sku) is INVALID_ARGUMENT.
    pub fn price(
        self,
        id: String,
        customer: &str,
        catalogue: &[CatalogueProduct],
        now: DateTime<Utc>,
    ) -> Result<Order, OrdersError> {
        let mut problems = Vec::new();
        let mut lines: Vec<OrderLine> = Vec::with_capacity(self.lines.len());
        let mut currency: Option<&str> = None;
        let mut seen = HashSet::new();
        for (i, line) in self.lines.iter().enumerate() {
            let Some(product) = catalogue.iter().find(|p| line.product.names(p)) else {
                problems.push(Problem::new(
                    "PRODUCT_NOT_FOUND",
                    line.product.subject(),
                    format!("lines[{i}]: no such product"),
                ));
                continue;
            };
            if !seen.insert(product.id.as_str()) {
                return Err(OrdersError::invalid(
                    &format!("lines[{i}]"),
                    "a product may appear in at most one line",
                ));
            }
            if !product.active {
                problems.push(Problem::new(
                    "PRODUCT_INACTIVE",
                    &product.sku,
                    format!("lines[{i}]: the product is not for sale"),
                ));
            }
            match currency {
                None => currency = Some(&product.currency),
                Some(first) if first != product.currency => problems.push(Problem::new(
                    "CURRENCY_MISMATCH",
                    &product.sku,
                    format!(
                        "lines[{i}]: priced in {}, the order in {first}; orders never mix currencies",
                        product.currency
                    ),
                )),
                Some(_) => {}
            }
            lines.push(OrderLine {
                product_id: product.id.clone(),
                sku: product.sku.clone(),
                product_name: product.name.clone(),
                quantity: line.quantity,
                unit_price_minor: product.price_minor,
            });
        }
        if !problems.is_empty() {
            return Err(OrdersError::precondition(
                "the order cannot be priced",
                problems,
            ));
        }
        let total = lines.iter().try_fold(0i64, |sum, line| {
            line.unit_price_minor
                .checked_mul(line.quantity)
                .and_then(|t| sum.checked_add(t))
        });
        let Some(total_minor) = total else {
            return Err(OrdersError::precondition(
                "the order total is out of range",
                vec![Problem::new(
                    "TOTAL_OUT_OF_RANGE",
                    "total_minor",
                    "the lines' total does not fit in 64 bits",
                )],
            ));
        };
        Ok(Order {
            id,
            customer_id: customer.to_owned(),
            status: OrderStatus::Pending,
            lines,
            total_minor,
            currency: currency.unwrap_or_default().to_owned(),
            idempotency_key: self.idempotency_key,
            reservation_id: String::new(),
            reservation_expires_at: None,
            payment_reference: String::new(),
            shipment_reference: String::new(),
            status_reason: String::new(),
            short_skus: Vec::new(),
            created_at: now,
            updated_at: now,
            paid_at: None,
            fulfilled_at: None,
            cancelled_at: None,
            refunded_at: None,
            release_pending: false,
            next_attempt_ms: millis(now),
            version: 1,
        })
    }
}

/// The contract's sku rule: 1–64 characters of `[A-Z0-9._-]`.
fn valid_sku(sku: &str) -> bool {
    (1..=64).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(product_id: &'static str, sku: &'static str, quantity: i64) -> RawLine<'static> {
        RawLine {
            product_id,
            sku,
            quantity,
        }
    }

    fn product(id: &str, sku: &str, price: i64, currency: &str, active: bool) -> CatalogueProduct {
        CatalogueProduct {
            id: id.into(),
            sku: sku.into(),
            name: format!("Product {sku}"),
            price_minor: price,
            currency: currency.into(),
            active,
        }
    }

    const ID: &str = "0190f5a3-7c1e-7b0a-9c4e-2f1d3b5a6c7d";

    #[test]
    fn every_bad_field_is_named() {
        let err = NewOrder::new(
            "",
            &[
                raw("", "", 1),
                raw(ID, "MUG", 1),
                raw("not-a-uuid", "", 0),
                raw("", "lower", 10_001),
                raw("", "MUG", 1),
                raw("", "MUG", 2),
            ],
        )
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "idempotency_key",
                "lines[0]",
                "lines[1]",
                "lines[2].product_id",
                "lines[2].quantity",
                "lines[3].sku",
                "lines[3].quantity",
                "lines[5]",
            ]
        );
        assert!(NewOrder::new(&"k".repeat(65), &[raw("", "MUG", 1)]).is_err());
        assert!(NewOrder::new("k", &[]).is_err());
    }

    #[test]
    fn priced_from_the_catalogue_with_one_currency() {
        let new = NewOrder::new("k", &[raw("", "MUG", 2), raw(ID, "", 3)]).unwrap();
        let catalogue = [
            product("p-mug", "MUG", 1250, "EUR", true),
            product(ID, "TEE", 2000, "EUR", true),
        ];
        let order = new
            .clone()
            .price("o1".into(), "alice", &catalogue, Utc::now())
            .unwrap();
        assert_eq!(order.total_minor, 2 * 1250 + 3 * 2000);
        assert_eq!(order.currency, "EUR");
        assert_eq!(order.lines[1].sku, "TEE");
        assert_eq!(order.status, OrderStatus::Pending);

        let catalogue = [
            product("p-mug", "MUG", 1250, "EUR", false),
            product(ID, "TEE", 2000, "USD", true),
        ];
        let Err(OrdersError::Precondition { problems, .. }) =
            new.clone()
                .price("o2".into(), "alice", &catalogue, Utc::now())
        else {
            panic!("inactive and mixed currencies are refused");
        };
        let kinds: Vec<_> = problems.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(kinds, ["PRODUCT_INACTIVE", "CURRENCY_MISMATCH"]);

        let Err(OrdersError::Precondition { problems, .. }) =
            new.price("o3".into(), "alice", &catalogue[1..], Utc::now())
        else {
            panic!("unknown products are refused");
        };
        assert_eq!(problems[0].kind, "PRODUCT_NOT_FOUND");
        assert_eq!(problems[0].subject, "MUG");
    }

    #[test]
    fn one_product_twice_by_id_and_sku_is_invalid() {
        let new = NewOrder::new("k", &[raw("", "TEE", 1), raw(ID, "", 1)]).unwrap();
        let catalogue = [product(ID, "TEE", 1, "EUR", true)];
        assert!(matches!(
            new.price("o".into(), "a", &catalogue, Utc::now()),
            Err(OrdersError::Invalid(_))
        ));
    }

    #[test]
    fn a_total_past_64_bits_is_refused() {
        let new = NewOrder::new("k", &[raw("", "GOLD", 10_000)]).unwrap();
        let catalogue = [product("g", "GOLD", i64::MAX / 2, "EUR", true)];
        assert!(matches!(
            new.price("o".into(), "a", &catalogue, Utc::now()),
            Err(OrdersError::Precondition { .. })
        ));
    }
}
