//! The operations of the onboarding queue, below gRPC ([`Queue`]): customers submit, read,
//! list, locate and cancel requests (operators see all); workers claim jobs (long-polling,
//! woken at once by work queued in this process), heartbeat, complete and fail them; operators
//! list and replay dead letters; and the reaper ([`Queue::reap`]) requeues or dead-letters
//! requests whose lease lapsed. Errors are [`Failure`]s, mapped to status in `grpc`.
//!
//! - this file: callers, positions, submit, read, list, cancel;
//! - `jobs`: the workers' side (claim, heartbeat, complete, fail), dead letters and replay,
//!   and how a failure is decided;
//! - `reaper`: lapsed leases and dead-letter retention;
//! - `board`: the position board WatchQueuePosition streams share;
//! - `inbound`: ReceiveWebhook — verified reports from external backends;
//! - `credentials`: SubmitCredentials, GetJobCredentials and the background rewrap.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ironmesh_runtime::storage::{new_id, now};
use ironmesh_runtime::validation::{Violations, check_uuid};
use tokio::sync::Notify;

use ironmesh_sealing::Keyring;

use crate::credentials::CredentialKeys;
use crate::domain::{Failure, NewRequest, Request, State, Tier};
use crate::events::{self, Transition};
use crate::metrics;
use crate::settings::ProvisioningConfig;
use crate::store::{Inserted, ListFilter, Store};

/// Claims counted for the wait estimate: those of the last ten minutes.
pub(super) const THROUGHPUT_WINDOW: Duration = Duration::from_secs(600);
/// Lapsed leases handled per reaper pass.
pub(super) const REAP_BATCH: i64 = 100;

/// Who is calling, as the stack authenticated them.
#[derive(Clone, Debug)]
pub struct Caller {
    pub subject: String,
    /// ROLE_OPERATOR or ROLE_ADMIN: sees and acts on everyone's requests.
    pub operator: bool,
}

impl Caller {
    fn sees(&self, owner: &str) -> bool {
        self.operator || self.subject == owner
    }
}

/// Where a request stands at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub request_id: String,
    pub state: State,
    /// 1-based; 0 unless QUEUED.
    pub position: i64,
    pub queue_length: i64,
    pub estimated_wait: Option<Duration>,
    pub observed_at: DateTime<Utc>,
}

/// How FailJob's caller described the failure.
#[derive(Clone, Debug)]
pub struct FailureReport {
    pub error: String,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

/// The onboarding queue's operations.
#[derive(Clone)]
pub struct Queue {
    store: Store,
    settings: Arc<ProvisioningConfig>,
    /// Notified when this process queues work (a submit, a requeue, a replay).
    queued: Arc<Notify>,
    /// Every QUEUED request's position, shared by this process's watchers.
    board: Arc<board::Board>,
    /// The key-encryption keys of customer credentials.
    keys: CredentialKeys,
}

pub(super) fn now_ms() -> i64 {
    now().timestamp_millis()
}

pub(super) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Queue {
    /// The queue on `store`; credentials' key-encryption keys are sealed by `master`.
    pub fn new(store: Store, settings: ProvisioningConfig, master: Keyring) -> Self {
        Self {
            keys: CredentialKeys::new(store.clone(), master),
            store,
            settings: Arc::new(settings),
            queued: Arc::new(Notify::new()),
            board: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &ProvisioningConfig {
        &self.settings
    }

    /// Queues `new` for the caller (or, for operators, the customer it names); a repeat of a
    /// key answers the original.
    pub async fn submit(
        &self,
        caller: &Caller,
        new: NewRequest,
        fingerprint: &str,
    ) -> Result<(Request, Position), Failure> {
        if new.tier == Tier::Critical && !caller.operator {
            return Err(Failure::Denied(
                "only operators may submit CRITICAL requests",
            ));
        }
        if !new.customer_id.is_empty() && new.customer_id != caller.subject && !caller.operator {
            return Err(Failure::Denied(
                "only operators may submit for another customer",
            ));
        }
        let customer_id = if new.customer_id.is_empty() {
            caller.subject.clone()
        } else {
            new.customer_id
        };
        let at = now();
        let request = Request {
            id: new_id(),
            customer_id,
            plan: new.plan,
            tier: new.tier,
            state: State::Queued,
            attempts: 0,
            max_attempts: self.settings.max_attempts,
            last_error: String::new(),
            result: BTreeMap::new(),
            idempotency_key: new.idempotency_key,
            not_before_ms: 0,
            job_id: None,
            progress: String::new(),
            credential_kinds: Vec::new(),
            created_at: at,
            updated_at: at,
            started_at: None,
            finished_at: None,
        };
        let event = events::request(Transition::Submitted, &caller.subject, &request);
        let request = match self.store.insert(&request, fingerprint, event).await? {
            Inserted::Created => {
                self.queued.notify_waiters();
                request
            }
            Inserted::Repeat(id) => self
                .store
                .request(&id)
                .await?
                .ok_or(Failure::NotFound("request"))?,
            Inserted::Mismatch => {
                return Err(Failure::Invalid(Violations::one(
                    "idempotency_key",
                    "already used for a different request",
                )));
            }
        };
        let position = self.position_of(&request).await?;
        Ok((request, position))
    }

    /// One request, if the caller may see it (another customer's is NOT_FOUND).
    pub async fn request(&self, caller: &Caller, id: &str) -> Result<Request, Failure> {
        check_id("request_id", id)?;
        match self.store.request(id).await? {
            Some(r) if caller.sees(&r.customer_id) => Ok(r),
            _ => Err(Failure::NotFound("request")),
        }
    }

    /// Requests the caller may see matching `filter`, newest first.
    pub async fn requests(
        &self,
        caller: &Caller,
        mut filter: ListFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Request>, Failure> {
        if !caller.operator {
            filter.customer_id = Some(caller.subject.clone());
        }
        Ok(self.store.requests(&filter, before, limit).await?)
    }

    /// Where the caller's request stands now.
    pub async fn position(&self, caller: &Caller, id: &str) -> Result<Position, Failure> {
        let request = self.request(caller, id).await?;
        self.position_of(&request).await
    }

    async fn position_of(&self, request: &Request) -> Result<Position, Failure> {
        let since = now_ms() - duration_ms(THROUGHPUT_WINDOW);
        metrics::position_query("single");
        let stats = self.store.queue_stats(request, since).await?;
        let queued = request.state == State::Queued;
        let position = if queued { stats.ahead + 1 } else { 0 };
        Ok(Position {
            request_id: request.id.clone(),
            state: request.state,
            position,
            queue_length: stats.length,
            estimated_wait: if queued {
                wait_estimate(position, stats.recent_claims)
            } else {
                None
            },
            observed_at: now(),
        })
    }

    /// Cancels a QUEUED or RUNNING request (its lease stops working); a CANCELLED one is
    /// returned as it is; a SUCCEEDED or FAILED one is FAILED_PRECONDITION.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> Result<Request, Failure> {
        loop {
            let request = self.request(caller, id).await?;
            match request.state {
                State::Cancelled => return Ok(request),
                State::Succeeded | State::Failed => {
                    return Err(Failure::Precondition(
                        "REQUEST_STATE",
                        format!("provisioning/requests/{id}"),
                        format!("a {} request cannot be cancelled", request.state.as_str()),
                    ));
                }
                State::Queued | State::Running => {}
            }
            let actor = caller.subject.clone();
            let cancelled = self
                .store
                .cancel(&request, |r| {
                    events::request(Transition::Cancelled, &actor, r)
                })
                .await?;
            if let Some(cancelled) = cancelled {
                return Ok(cancelled);
            }
            // It changed between the read and the write (claimed, finished): decide again.
        }
    }
}

mod board;
mod credentials;
mod inbound;
mod jobs;
mod reaper;

pub use inbound::{Received, WebhookFailure};

/// How long until `position` is claimed, at the pace of `recent_claims` in the last
/// [`THROUGHPUT_WINDOW`]; unknown without recent claims.
pub(super) fn wait_estimate(position: i64, recent_claims: i64) -> Option<Duration> {
    (recent_claims > 0 && position > 0).then(|| {
        let per_claim = THROUGHPUT_WINDOW.as_secs_f64() / recent_claims as f64;
        Duration::from_secs_f64(per_claim * position as f64)
    })
}

pub(super) fn check_id(field: &str, id: &str) -> Result<(), Failure> {
    let mut v = Violations::default();
    check_uuid(&mut v, field, id);
    v.into_result().map_err(Failure::Invalid)
}
