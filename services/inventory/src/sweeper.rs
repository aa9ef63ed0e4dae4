//! The reservation sweeper: every `inventory.sweep_interval_ms`, HELD reservations past their
//! expiry become EXPIRED with their units given back and `inventory.reservation.expired`
//! written ([`Inventory::sweep`]). Every replica runs one; each reservation is expired by a
//! conditional update (`WHERE status = 'HELD'`), so units come back exactly once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::Inventory;

/// Sweeps every `interval` until `token` is cancelled.
pub async fn run(inventory: Inventory, interval: Duration, token: CancellationToken) {
    loop {
        match inventory.sweep().await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired lapsed reservations"),
            Err(err) => tracing::warn!(
                error = %ironmesh_interceptors::grpc::error_chain(&err),
                "reservation sweep failed; trying again next round"
            ),
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
