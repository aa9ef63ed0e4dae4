//! Orders' domain: the order and its state machine ([`order`], [`lifecycle`]), the checks and
//! pricing of a new order ([`create`]), and [`OrdersError`] — no proto, no SQL.
//!
//! Field names in violations are the proto's (`lines[2].quantity`), so the gRPC adapter passes
//! them through unchanged.

pub mod create;
pub mod lifecycle;
pub mod order;

use ironmesh_runtime::validation::Violations;

pub use create::{CatalogueProduct, LineRequest, NewOrder, ProductRef};
pub use order::{Order, OrderLine, OrderStatus};

/// Who asks: the principal's subject (a user id, or `service:<name>`) — the customer of the
/// orders they create — and whether they hold an operator role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub operator: bool,
}

impl Caller {
    /// Customers see their own orders; operators see all.
    pub fn may_see(&self, order: &Order) -> bool {
        self.operator || order.customer_id == self.subject
    }
}

/// The actor of what orders does on its own (recovery, expiry).
pub const ORDERS_SERVICE: &str = "service:orders";

/// One reason a request cannot be carried out in the state things are in (a
/// `google.rpc.PreconditionFailure` violation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `INSUFFICIENT_STOCK`, `PRODUCT_NOT_FOUND`, `ORDER_STATUS`, `AMOUNT_MISMATCH`, …
    pub kind: String,
    /// What it is about: a sku, a product reference, `order/<id>`.
    pub subject: String,
    pub description: String,
}

impl Problem {
    pub fn new(kind: &str, subject: &str, description: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            description: description.into(),
        }
    }
}

/// What an orders operation fails with; the gRPC adapter maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// INVALID_ARGUMENT with field violations.
    #[error("invalid request")]
    Invalid(Violations),
    /// NOT_FOUND: no such order, or another customer's.
    #[error("order not found")]
    NotFound,
    /// PERMISSION_DENIED: a customer asked for what only operators may.
    #[error("{0}")]
    Denied(&'static str),
    /// FAILED_PRECONDITION with one violation per problem.
    #[error("{message}")]
    Precondition {
        message: String,
        problems: Vec<Problem>,
    },
    /// ABORTED: the first request with this idempotency key is still being processed, or the
    /// order kept changing under the request; retry later.
    #[error("{0}")]
    Aborted(&'static str),
    /// UNAVAILABLE: inventory could not be reached; retrying the same request is safe.
    #[error("{0}")]
    Unavailable(&'static str),
    /// INTERNAL: logged with the request id, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl OrdersError {
    pub fn invalid(field: &str, description: &str) -> Self {
        Self::Invalid(Violations::one(field, description))
    }

    pub fn precondition(message: impl Into<String>, problems: Vec<Problem>) -> Self {
        Self::Precondition {
            message: message.into(),
            problems,
        }
    }

    /// The order is not in a state the request applies to.
    pub fn status(order: &Order, message: impl Into<String>) -> Self {
        let message = message.into();
        let problem = Problem::new(
            "ORDER_STATUS",
            &format!("order/{}", order.id),
            format!("order is {}", order.status.as_str()),
        );
        Self::precondition(message, vec![problem])
    }
}

impl From<Violations> for OrdersError {
    fn from(violations: Violations) -> Self {
        Self::Invalid(violations)
    }
}

/// [`ironmesh_runtime::validation::check_uuid`] for a request with a single id.
pub fn require_id(field: &str, id: &str) -> Result<(), OrdersError> {
    let mut violations = Violations::default();
    ironmesh_runtime::validation::check_uuid(&mut violations, field, id);
    violations.into_result().map_err(OrdersError::Invalid)
}

/// Checks free text: at most `max` characters, and at least one when `required`.
pub fn check_text(
    violations: &mut Violations,
    field: &str,
    text: &str,
    required: bool,
    max: usize,
) {
    let chars = text.chars().count();
    if required && text.trim().is_empty() {
        violations.add(field, "required");
    } else if chars > max {
        violations.add(field, format!("at most {max} characters"));
    } else if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        violations.add(
            field,
            "must not contain control characters other than newline and tab",
        );
    }
}
