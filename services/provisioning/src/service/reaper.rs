//! The reaper of [`Queue`]: requests whose lease lapsed are requeued (the attempt counted at
//! claim) or, with their attempts spent, dead-lettered; old dead letters and webhook receipts
//! (a day: far longer than a signature's tolerance) are purged.

use std::time::Duration;

use ironmesh_runtime::storage::now;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::jobs::{decide, transition_events};
use super::{FailureReport, Queue, REAP_BATCH, now_ms};
use crate::domain::{Failure, PROVISIONING_SERVICE};

impl Queue {
    /// One reaper pass: every lapsed lease ends LAPSED and its request is requeued (the
    /// attempt counted at claim) or, with its attempts spent, dead-lettered.
    pub async fn reap(&self) -> Result<usize, Failure> {
        let at = now_ms();
        let mut reaped = 0;
        for job in self.store.lapsed(at, REAP_BATCH).await? {
            let report = FailureReport {
                error: format!("the lease of attempt {} lapsed", job.attempt),
                retryable: true,
                retry_after: None,
            };
            let settings = self.settings.clone();
            if self
                .store
                .reap(
                    &job,
                    at,
                    |r| decide(&settings, r, report, at),
                    |r, dead| transition_events(r, dead, PROVISIONING_SERVICE),
                )
                .await?
            {
                reaped += 1;
            }
        }
        if reaped > 0 {
            self.queued.notify_waiters();
        }
        Ok(reaped)
    }

    /// The reaper and the dead letters' retention, every `reap_interval` until cancelled.
    pub async fn run_reaper(self, token: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.reap_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purged_at = Instant::now();
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(err) = self.reap().await {
                tracing::warn!(error = ?err, "reaping lapsed leases failed; retrying next tick");
            }
            if purged_at.elapsed() >= Duration::from_secs(3600) {
                purged_at = Instant::now();
                let retention = chrono::Duration::from_std(self.settings.dead_letter_retention())
                    .unwrap_or_default();
                if let Err(err) = self.store.purge_dead_letters(now() - retention).await {
                    tracing::warn!(error = %err, "purging old dead letters failed");
                }
                if let Err(err) = self
                    .store
                    .purge_receipts(now() - chrono::Duration::days(1))
                    .await
                {
                    tracing::warn!(error = %err, "purging old webhook receipts failed");
                }
            }
        }
    }
}
