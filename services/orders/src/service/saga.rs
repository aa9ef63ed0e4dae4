//! The saga's steps, each safe to run again and by several replicas at once (inventory's calls
//! are idempotent, every save is conditional): reserve a PENDING order's stock, finish a
//! payment, release what a cancelled or rejected order may still hold. CreateOrder and
//! PayOrder run them inline; recovery runs them for whatever a crash or an unreachable
//! inventory left half done.

use ironmesh_interceptors::context::CallContext;

use super::Orders;
use crate::domain::lifecycle;
use crate::domain::{Order, OrdersError, Problem};
use crate::upstream::{Committed, Reserved, Unreachable};

/// Where a step left the order.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a return value that lives for one match: boxing buys nothing
pub enum Step {
    /// As far as it goes now: the order as saved.
    Done(Order),
    /// Inventory gave no definite answer; the order is as it was (recovery tries again).
    Later(Unreachable),
}

/// How rejected lines are kept on the order: `KIND:sku`.
fn shortage(problem: &Problem) -> String {
    format!("{}:{}", problem.kind, problem.subject)
}

/// The violations a REJECTED order was refused with (what a repeat of its CreateOrder shows).
pub fn rejection(order: &Order) -> OrdersError {
    let problems = order
        .short_skus
        .iter()
        .map(|entry| {
            let (kind, sku) = entry
                .split_once(':')
                .unwrap_or(("INSUFFICIENT_STOCK", entry));
            Problem::new(kind, sku, "could not be reserved")
        })
        .collect();
    OrdersError::precondition(
        format!("order {} was rejected: {}", order.id, order.status_reason),
        problems,
    )
}

/// Runs `future` in a task of its own, with the current call's request id and trace but not
/// its deadline or credentials: a caller that goes away does not stop a saga step half way.
pub async fn detached<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T, OrdersError> {
    let task = match CallContext::current() {
        Some(ctx) => {
            let ctx = CallContext {
                deadline: None,
                authorization: None,
                ..ctx
            };
            tokio::spawn(ctx.scope(future))
        }
        None => tokio::spawn(future),
    };
    task.await
        .map_err(|err| OrdersError::Internal(Box::new(err)))
}

impl Orders {
    fn lines(order: &Order) -> Vec<(String, i64)> {
        order
            .lines
            .iter()
            .map(|l| (l.product_id.clone(), l.quantity))
            .collect()
    }

    /// Reserves a PENDING order's stock: RESERVED, or REJECTED with the lines inventory
    /// refused. A reservation made for an order cancelled meanwhile is released.
    pub async fn reserve_stock(&self, order: &Order, actor: &str) -> Result<Step, OrdersError> {
        let ttl = self.settings.reservation_ttl();
        let answer = match self
            .inventory
            .reserve(&order.id, &Self::lines(order), ttl)
            .await
        {
            Ok(answer) => answer,
            Err(unreachable) => return Ok(Step::Later(unreachable)),
        };
        let saved = match answer {
            Reserved::Held {
                reservation_id,
                expires_at,
            } => {
                self.update_known(order, actor, |o, now| {
                    lifecycle::reserved(o, &reservation_id, expires_at, now)
                })
                .await?
            }
            Reserved::Refused(problems) => {
                let short: Vec<String> = problems.iter().map(shortage).collect();
                let skus: Vec<&str> = problems.iter().map(|p| p.subject.as_str()).collect();
                let reason = format!("stock could not be reserved for {}", skus.join(", "));
                self.update_known(order, actor, |o, now| {
                    lifecycle::rejected(o, &reason, &short, now)
                })
                .await?
            }
        };
        if saved.release_pending {
            return self.release(&saved, actor).await;
        }
        Ok(Step::Done(saved))
    }

    /// A PENDING order inventory did not answer for within the pending timeout: REJECTED, and
    /// whatever a Reserve that did get through may hold is released.
    pub async fn give_up(&self, order: &Order, actor: &str) -> Result<Step, OrdersError> {
        let reason = "inventory did not answer within the pending timeout";
        let saved = self
            .update_known(order, actor, |o, now| {
                lifecycle::rejected(o, reason, &[], now)
            })
            .await?;
        self.release(&saved, actor).await
    }

    /// Commits the stock of a RESERVED order locked for a payment: PAID, or CANCELLED when the
    /// reservation lapsed first.
    pub async fn finish_payment(&self, order: &Order, actor: &str) -> Result<Step, OrdersError> {
        let reference = order.payment_reference.clone();
        let committed = match self.inventory.commit(&order.reservation_id).await {
            Ok(committed) => committed,
            Err(unreachable) => return Ok(Step::Later(unreachable)),
        };
        let saved = self
            .update_known(order, actor, |o, now| match committed {
                Committed::Yes => lifecycle::paid(o, &reference, now),
                Committed::Lapsed => lifecycle::payment_refused(o, &reference, now),
            })
            .await?;
        Ok(Step::Done(saved))
    }

    /// A RESERVED order whose hold lapsed before payment began: CANCELLED, units released.
    pub async fn expire(&self, order: &Order, actor: &str) -> Result<Step, OrdersError> {
        let saved = self.update_known(order, actor, lifecycle::expire).await?;
        self.release(&saved, actor).await
    }

    /// Releases what a CANCELLED or REJECTED order may still hold. With no reservation known
    /// (cancelled or timed out while PENDING, a Reserve perhaps in flight), it asks inventory
    /// for the order's reservation — Reserve is idempotent per order, so this returns the one
    /// that exists or makes one — and releases that: afterwards no Reserve for this order can
    /// hold anything, since every later one returns the released reservation.
    pub async fn release(&self, order: &Order, actor: &str) -> Result<Step, OrdersError> {
        if !order.release_pending {
            return Ok(Step::Done(order.clone()));
        }
        let mut order = order.clone();
        if order.reservation_id.is_empty() {
            let ttl = self.settings.reservation_ttl();
            match self
                .inventory
                .reserve(&order.id, &Self::lines(&order), ttl)
                .await
            {
                Ok(Reserved::Held {
                    reservation_id,
                    expires_at,
                }) => {
                    order = self
                        .update_known(&order, actor, |o, now| {
                            lifecycle::reserved(o, &reservation_id, expires_at, now)
                        })
                        .await?;
                }
                // Nothing could be held for it, so nothing is.
                Ok(Reserved::Refused(_)) => {}
                Err(unreachable) => return Ok(Step::Later(unreachable)),
            }
        }
        if !order.reservation_id.is_empty() {
            let reason = format!("order {}", order.status.as_str().to_lowercase());
            if let Err(unreachable) = self.inventory.release(&order.reservation_id, &reason).await {
                return Ok(Step::Later(unreachable));
            }
        }
        let saved = self
            .update_known(&order, actor, |o, _| lifecycle::released(o))
            .await?;
        Ok(Step::Done(saved))
    }
}
