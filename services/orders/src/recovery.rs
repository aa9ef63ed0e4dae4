//! Recovery: finishes what a crash, a caller that went away or an unreachable inventory left
//! half done, on every replica at once. Each pass takes the orders that are due
//! (`next_attempt_ms` passed) one by one with a conditional claim (so two replicas never work
//! on one order together) and runs the saga step its state calls for:
//!
//! - PENDING: Reserve again (idempotent per order); past `orders.pending_timeout` without an
//!   answer → REJECTED, and whatever may be held released.
//! - RESERVED with a payment being recorded: commit → PAID, or CANCELLED if the hold lapsed.
//! - RESERVED past its reservation's expiry, unpaid: CANCELLED with a reason, units released.
//! - CANCELLED / REJECTED with a release pending: release it.
//!
//! A step inventory does not answer is tried again when the claim runs out.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::order::millis;
use crate::domain::{ORDERS_SERVICE, Order, OrderStatus, OrdersError};
use crate::service::Orders;
use crate::service::saga::Step;

/// Orders taken per pass.
const BATCH: i64 = 100;

/// Runs passes every `orders.recovery_interval` until `token` is cancelled.
pub async fn run(orders: Orders, token: CancellationToken) {
    let interval = orders.settings().recovery_interval();
    loop {
        if let Err(err) = pass(&orders).await {
            tracing::warn!(error = %ironmesh_interceptors::grpc::error_chain(&err), "order recovery pass failed");
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// How long a claim keeps other replicas off an order: the wait before a step that did not
/// finish is tried again.
fn lease(orders: &Orders) -> Duration {
    (orders.settings().recovery_interval() * 5).max(Duration::from_millis(500))
}

/// One pass: every due order, as far as it goes now. Returns how many were worked on.
pub async fn pass(orders: &Orders) -> Result<usize, OrdersError> {
    let now = ironmesh_runtime::storage::now();
    let due = orders.store().due(millis(now), BATCH).await?;
    let until = millis(now) + i64::try_from(lease(orders).as_millis()).unwrap_or(i64::MAX);
    let mut worked = 0;
    for id in due {
        if !orders.store().claim(&id, millis(now), until).await? {
            continue;
        }
        let Some(order) = orders.store().get(&id).await? else {
            continue;
        };
        worked += 1;
        if let Step::Later(unreachable) = recover(orders, &order).await? {
            tracing::info!(order_id = %id, error = %unreachable, "inventory did not answer; recovery tries again");
        }
    }
    Ok(worked)
}

async fn recover(orders: &Orders, order: &Order) -> Result<Step, OrdersError> {
    let (kind, step) = step(orders, order).await?;
    crate::metrics::recovery_step(kind, matches!(step, Step::Done(_)));
    Ok(step)
}

/// Runs the step `order`'s state calls for; its kind (a [`crate::metrics::STEPS`] label) and
/// where it left the order.
async fn step(orders: &Orders, order: &Order) -> Result<(&'static str, Step), OrdersError> {
    let now = ironmesh_runtime::storage::now();
    let actor = ORDERS_SERVICE;
    if order.release_pending {
        return Ok(("release", orders.release(order, actor).await?));
    }
    let step = match order.status {
        OrderStatus::Pending => match orders.reserve_stock(order, actor).await? {
            Step::Later(unreachable) => {
                let timeout = chrono::Duration::from_std(orders.settings().pending_timeout())
                    .unwrap_or(chrono::Duration::MAX);
                if order.created_at + timeout <= now {
                    tracing::warn!(order_id = %order.id, error = %unreachable, "order rejected: inventory did not answer in time");
                    orders.give_up(order, actor).await?
                } else {
                    Step::Later(unreachable)
                }
            }
            done => done,
        },
        OrderStatus::Reserved if order.paying() => {
            return Ok(("payment", orders.finish_payment(order, actor).await?));
        }
        OrderStatus::Reserved if order.lapsed(now) => {
            return Ok(("expiry", orders.expire(order, actor).await?));
        }
        // Due at its expiry, which the clock has not quite reached.
        _ => return Ok(("expiry", Step::Done(order.clone()))),
    };
    Ok(("reserve", step))
}
