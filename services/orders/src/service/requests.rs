//! What callers ask of an existing order: read, list, cancel, pay, fulfil, refund. Each change
//! is one [`lifecycle`] step through [`Orders::update_known`]; cancel and pay then run the saga step
//! they start (release, commit) inline, leaving it to recovery if inventory does not answer.

use ironmesh_runtime::paging;
use ironmesh_runtime::validation::Violations;

use super::Orders;
use super::saga::{Step, detached};
use crate::domain::lifecycle::{self, Payment};
use crate::domain::{Caller, Order, OrderStatus, OrdersError, check_text};
use crate::store::ListFilter;

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 200;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_REFERENCE_CHARS: usize = 128;

/// One page of orders.
#[derive(Debug)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    pub next_page_token: String,
}

/// ListOrders as asked: `status` is `None` for any.
#[derive(Debug, Default)]
pub struct ListRequest {
    pub page_size: i32,
    pub page_token: String,
    pub status: Option<OrderStatus>,
    pub customer_id: String,
}

impl Orders {
    pub async fn order(&self, caller: &Caller, id: &str) -> Result<Order, OrdersError> {
        self.visible(caller, id).await
    }

    pub async fn list_orders(
        &self,
        caller: &Caller,
        request: &ListRequest,
    ) -> Result<OrderPage, OrdersError> {
        let mut violations = Violations::default();
        let limit =
            paging::page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE).unwrap_or_else(|v| {
                violations.extend(v);
                DEFAULT_PAGE
            });
        check_text(
            &mut violations,
            "customer_id",
            &request.customer_id,
            false,
            128,
        );
        let status = request.status.map(OrderStatus::as_str).unwrap_or("");
        let binding = format!("{status}|{}", request.customer_id);
        let after = paging::decode_token(&request.page_token, &binding).unwrap_or_else(|v| {
            violations.extend(v);
            None
        });
        violations.into_result()?;
        let customer = match (caller.operator, request.customer_id.as_str()) {
            (true, "") => None,
            (true, id) => Some(id.to_owned()),
            (false, "") => Some(caller.subject.clone()),
            (false, id) if id == caller.subject => Some(caller.subject.clone()),
            (false, _) => {
                return Err(OrdersError::Denied(
                    "only operators may list another customer's orders",
                ));
            }
        };
        let filter = ListFilter {
            customer_id: customer,
            status: request.status,
        };
        let mut orders = self
            .store
            .list(&filter, after.as_deref(), limit + 1)
            .await?;
        let more = orders.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        orders.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_page_token = match orders.last() {
            Some(last) if more => paging::encode_token(&last.id, &binding),
            _ => String::new(),
        };
        Ok(OrderPage {
            orders,
            next_page_token,
        })
    }

    /// CancelOrder: CANCELLED, and the reservation released (by recovery if inventory does
    /// not answer now).
    pub async fn cancel_order(
        &self,
        caller: &Caller,
        id: &str,
        reason: &str,
    ) -> Result<Order, OrdersError> {
        let mut violations = Violations::default();
        check_text(&mut violations, "reason", reason, false, MAX_REASON_CHARS);
        violations.into_result()?;
        let current = self.visible(caller, id).await?;
        let reason = reason.trim().to_owned();
        let saved = self
            .update_known(&current, &caller.subject, |o, now| {
                lifecycle::cancel(o, &reason, now)
            })
            .await?;
        self.settle(saved, &caller.subject, |this, order, actor| async move {
            this.release(&order, &actor).await
        })
        .await
    }

    /// PayOrder: lock the order for the payment, commit the stock, PAID — or CANCELLED when the
    /// reservation lapsed first, answered with FAILED_PRECONDITION.
    pub async fn pay_order(
        &self,
        caller: &Caller,
        id: &str,
        payment: Payment,
    ) -> Result<Order, OrdersError> {
        let mut violations = Violations::default();
        if payment.amount_minor < 0 {
            violations.add("amount_minor", "must not be negative");
        }
        if !is_currency(&payment.currency) {
            violations.add("currency", "an ISO 4217 code: three upper-case letters");
        }
        check_text(
            &mut violations,
            "payment_reference",
            &payment.reference,
            true,
            MAX_REFERENCE_CHARS,
        );
        violations.into_result()?;
        let current = self.visible(caller, id).await?;
        let actor = caller.subject.clone();
        if current.lapsed(ironmesh_runtime::storage::now()) {
            let this = self.clone();
            let (order, who) = (current.clone(), actor.clone());
            detached(async move { this.expire(&order, &who).await }).await??;
        }
        let locked = self
            .update_known(&current, &actor, |o, now| {
                lifecycle::start_payment(o, &payment, now)
            })
            .await?;
        if !locked.paying() {
            return Ok(locked);
        }
        let this = self.clone();
        let step = detached(async move { this.finish_payment(&locked, &actor).await }).await??;
        match step {
            Step::Done(order) if order.status == OrderStatus::Paid => Ok(order),
            Step::Done(order) => Err(OrdersError::status(
                &order,
                "the reservation expired before the payment was recorded; the order is cancelled",
            )),
            Step::Later(unreachable) => {
                tracing::warn!(order_id = %id, error = %unreachable, "committing stock failed; recovery retries");
                Err(OrdersError::Unavailable(
                    "the payment is being recorded; retry PayOrder with the same payment_reference",
                ))
            }
        }
    }

    /// FulfillOrder: PAID → FULFILLED.
    pub async fn fulfill_order(
        &self,
        caller: &Caller,
        id: &str,
        shipment_reference: &str,
    ) -> Result<Order, OrdersError> {
        let mut violations = Violations::default();
        check_text(
            &mut violations,
            "shipment_reference",
            shipment_reference,
            false,
            MAX_REFERENCE_CHARS,
        );
        violations.into_result()?;
        let current = self.visible(caller, id).await?;
        let reference = shipment_reference.trim().to_owned();
        self.update_known(&current, &caller.subject, |o, now| {
            lifecycle::fulfill(o, &reference, now)
        })
        .await
    }

    /// RefundOrder: PAID or FULFILLED → REFUNDED.
    pub async fn refund_order(
        &self,
        caller: &Caller,
        id: &str,
        reason: &str,
    ) -> Result<Order, OrdersError> {
        let mut violations = Violations::default();
        check_text(&mut violations, "reason", reason, true, MAX_REASON_CHARS);
        violations.into_result()?;
        let current = self.visible(caller, id).await?;
        let reason = reason.trim().to_owned();
        self.update_known(&current, &caller.subject, |o, now| {
            lifecycle::refund(o, &reason, now)
        })
        .await
    }

    /// Runs the saga step `next` for `order` detached from the caller; the order as it ends up
    /// (as saved before the step when inventory did not answer).
    async fn settle<F, Fut>(&self, order: Order, actor: &str, next: F) -> Result<Order, OrdersError>
    where
        F: FnOnce(Orders, Order, String) -> Fut,
        Fut: Future<Output = Result<Step, OrdersError>> + Send + 'static,
    {
        let fallback = order.clone();
        let step = detached(next(self.clone(), order, actor.to_owned())).await??;
        Ok(match step {
            Step::Done(order) => order,
            Step::Later(unreachable) => {
                tracing::warn!(order_id = %fallback.id, error = %unreachable, "releasing stock failed; recovery retries");
                fallback
            }
        })
    }
}

fn is_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}
