//! Workers' side of [`Queue`]: claim (long-poll), heartbeat, complete and fail; the dead
//! letters and their replay; how a failure is decided (requeue with backoff, or dead letter).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ironmesh_runtime::storage::{new_id, now};
use tokio::time::Instant;

use super::{Caller, FailureReport, Queue, check_id, duration_ms, now_ms};
use crate::domain::{DeadLetter, Failure, Job, Request, State, backoff};
use crate::events::{self, Transition};
use crate::settings::ProvisioningConfig;
use crate::store::{Finish, Finished, StoredCredential};

impl Queue {
    /// Leases the next claimable job to `worker_id` (the principal `actor`) for `lease`,
    /// waiting up to `wait` (never past `deadline`) for one to become claimable; with the
    /// metadata of its request's credentials.
    pub async fn claim(
        &self,
        actor: &str,
        worker_id: &str,
        lease: Duration,
        wait: Duration,
        deadline: Option<Instant>,
    ) -> Result<Option<(Job, Request, Vec<StoredCredential>)>, Failure> {
        let mut until = Instant::now() + wait;
        if let Some(deadline) = deadline {
            until = until.min(
                deadline
                    .checked_sub(Duration::from_millis(50))
                    .unwrap_or(deadline),
            );
        }
        loop {
            // Listen before looking, so a submit between the look and the wait is not missed.
            let queued = self.queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            let at = now_ms();
            let job = Job {
                id: new_id(),
                request_id: String::new(),
                attempt: 0,
                lease_token: new_token(),
                worker_id: worker_id.to_owned(),
                lease_ms: duration_ms(lease),
                lease_expires_ms: at + duration_ms(lease),
                outcome: None,
                dead_letter_id: None,
            };
            if let Some((request, job)) = self
                .store
                .claim(&job, at, |r| events::request(Transition::Claimed, actor, r))
                .await?
            {
                // Only requests with credentials cost the extra read.
                let credentials = if request.credential_kinds.is_empty() {
                    Vec::new()
                } else {
                    self.store.credentials(&request.id).await?
                };
                return Ok(Some((job, request, credentials)));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            tokio::select! {
                () = &mut queued => {}
                () = tokio::time::sleep(left.min(self.settings.claim_poll_interval())) => {}
            }
        }
    }

    /// Extends the lease of `(job_id, token)`; its new expiry.
    pub async fn heartbeat(
        &self,
        job_id: &str,
        token: &str,
        lease: Option<Duration>,
        progress: &str,
    ) -> Result<DateTime<Utc>, Failure> {
        check_id("job_id", job_id)?;
        let lease_ms = lease.map_or(0, duration_ms);
        match self
            .store
            .heartbeat(job_id, token, lease_ms, progress, now_ms())
            .await?
        {
            Ok(expires) => Ok(DateTime::from_timestamp_millis(expires).unwrap_or_else(now)),
            Err(loss) => Err(Failure::Lease(loss)),
        }
    }

    /// CompleteJob: the request SUCCEEDED with `result`.
    pub async fn complete(
        &self,
        actor: &str,
        job_id: &str,
        token: &str,
        result: &BTreeMap<String, String>,
    ) -> Result<Request, Failure> {
        check_id("job_id", job_id)?;
        let result = serde_json::to_string(result).map_err(|e| Failure::Internal(Box::new(e)))?;
        let finished = self
            .store
            .finish(
                job_id,
                token,
                false,
                now_ms(),
                |_| Finish::Succeed { result },
                |r, _| vec![events::request(Transition::Succeeded, actor, r)],
            )
            .await?;
        match finished {
            Finished::Done(done) => Ok(done.0),
            Finished::Lost(loss) => Err(Failure::Lease(loss)),
        }
    }

    /// FailJob: requeued with a backoff while attempts remain and the failure is retryable,
    /// else FAILED with a dead letter.
    pub async fn fail(
        &self,
        actor: &str,
        job_id: &str,
        token: &str,
        report: FailureReport,
    ) -> Result<(Request, Option<DeadLetter>), Failure> {
        check_id("job_id", job_id)?;
        let at = now_ms();
        let settings = self.settings.clone();
        let finished = self
            .store
            .finish(
                job_id,
                token,
                true,
                at,
                |r| decide(&settings, r, report, at),
                |r, dead| transition_events(r, dead, actor),
            )
            .await?;
        match finished {
            Finished::Done(done) => {
                let (request, dead) = *done;
                if request.state == State::Queued {
                    self.queued.notify_waiters();
                }
                Ok((request, dead))
            }
            Finished::Lost(loss) => Err(Failure::Lease(loss)),
        }
    }

    /// Dead letters newest first.
    pub async fn dead_letters(
        &self,
        include_replayed: bool,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, Failure> {
        Ok(self
            .store
            .dead_letters(include_replayed, before, limit)
            .await?)
    }

    /// Queues a dead letter's request again with a fresh attempt budget; replaying a replayed
    /// letter returns it (and its request) unchanged.
    pub async fn replay(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(DeadLetter, Request), Failure> {
        check_id("dead_letter_id", id)?;
        let actor = caller.subject.clone();
        let replayed = self
            .store
            .replay(id, &caller.subject, self.settings.max_attempts, |r| {
                events::request(Transition::Replayed, &actor, r)
            })
            .await?;
        if let Some(done) = replayed {
            self.queued.notify_waiters();
            return Ok(done);
        }
        let letter = self
            .store
            .dead_letter(id)
            .await?
            .ok_or(Failure::NotFound("dead letter"))?;
        let request = self
            .store
            .request(&letter.request_id)
            .await?
            .ok_or(Failure::NotFound("request"))?;
        Ok((letter, request))
    }
}

/// Requeue while attempts remain and the failure is retryable, else dead-letter.
pub(super) fn decide(
    settings: &ProvisioningConfig,
    r: &Request,
    report: FailureReport,
    at: i64,
) -> Finish {
    if report.retryable && r.attempts < r.max_attempts {
        let delay = backoff(
            r.attempts,
            settings.backoff_base(),
            settings.backoff_cap(),
            report.retry_after,
        );
        Finish::Requeue {
            error: report.error,
            not_before_ms: at + duration_ms(delay),
        }
    } else {
        Finish::DeadLetter {
            error: report.error,
            dead_letter_id: new_id(),
        }
    }
}

pub(super) fn transition_events(
    r: &Request,
    dead: Option<&DeadLetter>,
    actor: &str,
) -> Vec<ironmesh_outbox::NewEvent> {
    match dead {
        None => vec![events::request(Transition::Requeued, actor, r)],
        Some(_) => vec![
            events::request(Transition::Failed, actor, r),
            events::request(Transition::DeadLettered, actor, r),
        ],
    }
}

/// A fencing token: 128 random bits, hex.
fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}
