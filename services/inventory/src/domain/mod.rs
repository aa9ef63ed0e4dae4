//! Inventory's domain: products and their input rules ([`product`]), stock levels and the
//! adjustment ledger ([`stock`]), reservations and their lifecycle ([`reservation`]), and
//! [`InventoryError`] — no proto, no SQL.
//!
//! Field names in violations are the proto's (`product.sku`, `lines[2].quantity`), nested with
//! dots, so the gRPC adapter passes them through unchanged.

pub mod product;
pub mod reservation;
pub mod stock;

use ironmesh_runtime::validation::Violations;

pub use product::{NewProduct, Product, ProductChanges, ProductField, ProductFilter};
pub use reservation::{
    LineRequest, ProductRef, Reservation, ReservationLine, ReservationStatus, ReserveRequest,
};
pub use stock::{Adjustment, AdjustmentReason, Stock};

/// Who asks: the principal's subject as events name actors (a user id, or `service:<name>`),
/// and whether they hold an operator role (for the "operators only" fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub actor: String,
    pub operator: bool,
}

impl Caller {
    /// Nobody logged in (public methods).
    pub fn anonymous() -> Self {
        Self {
            actor: ANONYMOUS.to_owned(),
            operator: false,
        }
    }
}

/// The actor of calls without a principal.
pub const ANONYMOUS: &str = "anonymous";
/// The actor of what inventory does on its own (the sweeper's expiries).
pub const INVENTORY_SERVICE: &str = "service:inventory";

/// Why a line of a Reserve could not be held (a `google.rpc.PreconditionFailure` violation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `INSUFFICIENT_STOCK`, `PRODUCT_NOT_FOUND`, `PRODUCT_INACTIVE`, …
    pub kind: &'static str,
    /// The sku (or the id or sku the caller gave, for an unknown product).
    pub subject: String,
    pub description: String,
}

/// What an inventory operation fails with; the gRPC adapter maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// INVALID_ARGUMENT with field violations.
    #[error("invalid request")]
    Invalid(Violations),
    /// NOT_FOUND: `what` names the kind of thing ("product", "reservation").
    #[error("{0} not found")]
    NotFound(&'static str),
    /// ALREADY_EXISTS: the sku is taken.
    #[error("sku already exists")]
    SkuTaken,
    /// FAILED_PRECONDITION with one violation per problem.
    #[error("{message}")]
    Precondition {
        message: String,
        problems: Vec<Problem>,
    },
    /// INTERNAL: logged with the request id, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl InventoryError {
    pub fn invalid(field: &str, description: &str) -> Self {
        Self::Invalid(Violations::one(field, description))
    }

    pub fn precondition(message: impl Into<String>, problems: Vec<Problem>) -> Self {
        Self::Precondition {
            message: message.into(),
            problems,
        }
    }
}

impl From<Violations> for InventoryError {
    fn from(violations: Violations) -> Self {
        Self::Invalid(violations)
    }
}

pub use ironmesh_runtime::storage::{new_id, now};
pub use ironmesh_runtime::validation::{check_uuid as check_id, is_uuid};

/// [`check_id`] for a request with a single id.
pub fn require_id(field: &str, id: &str) -> Result<(), InventoryError> {
    let mut violations = Violations::default();
    check_id(&mut violations, field, id);
    violations.into_result().map_err(InventoryError::Invalid)
}
