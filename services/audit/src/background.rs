//! What audit runs beside its listeners (`GrpcService::background`): retention, the periodic
//! checkpoint signer, and the inbox's own retention. Each does its work once at start, then
//! every interval, and returns once its token is cancelled (checked between batches, so a long
//! purge does not hold up a drain).

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::service::Audit;
use crate::settings::AuditConfig;

/// Entries one retention transaction removes at most: short transactions, so appends and
/// readers never wait long behind a purge.
pub const PURGE_BATCH: i64 = 1000;
/// How often the inbox's dedupe ids are purged.
const INBOX_RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Purges entries past `audit.retention_days`, in batches, leaving signed anchors.
pub async fn retention(audit: Audit, settings: AuditConfig, token: CancellationToken) {
    let Some(keep) = settings.retention() else {
        return;
    };
    let every = Duration::from_secs(settings.retention_interval_secs);
    loop {
        let cutoff = Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        while !token.is_cancelled() {
            match audit.purge_batch(cutoff, PURGE_BATCH).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %ironmesh_interceptors::grpc::error_chain(&err), "audit retention failed");
                    break;
                }
            }
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Signs the head every `audit.checkpoint_interval_secs` when it moved, so a recent signed
/// checkpoint exists even when nobody asks for one.
pub async fn checkpoints(audit: Audit, settings: AuditConfig, token: CancellationToken) {
    let every = Duration::from_secs(settings.checkpoint_interval_secs);
    loop {
        if let Err(err) = audit.checkpoint().await {
            tracing::warn!(error = %ironmesh_interceptors::grpc::error_chain(&err), "audit checkpoint failed");
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// The inbox's dedupe ids, kept for the outbox library's default (30 days).
pub async fn inbox(audit: Audit, token: CancellationToken) {
    ironmesh_outbox::inbox::run_retention(
        audit.store().database().clone(),
        ironmesh_outbox::inbox::DEFAULT_INBOX_RETENTION,
        INBOX_RETENTION_EVERY,
        token,
    )
    .await;
}
