//! Storage for provisioning: the schema per backend ([`MIGRATIONS`]) and every query, written
//! once in SQL both SQLite and PostgreSQL accept, run through `with_pool!` — except the claim,
//! which locks with `FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas take different requests
//! without waiting on each other (SQLite has one writer: the same single UPDATE is atomic).
//!
//! **Fencing.** Every claim writes a job row with a fresh `lease_token` and points the request
//! at it (`job_id`). Heartbeat, CompleteJob and FailJob change anything only through ONE
//! conditional UPDATE of that job row — token matching, no outcome yet, lease not lapsed — so a
//! lapsed, reaped or cancelled lease can never finish a request another worker now holds; the
//! job's recorded outcome answers repeats of the same call with the same result.
//!
//! - `requests`: submit (with the idempotency claim), read, list, queue position, cancel.
//! - `jobs`: claim, heartbeat, complete, fail; `reaper`: lapsed leases requeued or
//!   dead-lettered; `dead_letters`: dead letters, replay, retention, webhook receipts.
//!   Every state change writes its event through the outbox in the same transaction.
//! - `credentials`: the sealed credential rows and key-encryption keys, rewrap, and the
//!   deletions when a request can no longer run (succeeded, cancelled, failed for good).

mod credentials;
mod dead_letters;
mod jobs;
mod reaper;
mod requests;

use ironmesh_outbox::{Outbox, OutboxError};
use ironmesh_runtime::storage::{Database, MigrationSet};

use crate::domain::Failure;

pub use credentials::{KeyUse, Put, StoredCredential, StoredKey};
pub use jobs::{Finish, Finished};
pub use reaper::Reaped;
pub use requests::{Inserted, ListFilter, QueueStats};

/// Every migration of this service, for both backends (same versions on each).
pub const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "initial schema", "0001_initial.sql";
    2, "the onboarding queue", "0002_queue.sql";
    3, "outbox", (ironmesh_outbox::schema::OUTBOX);
    4, "idempotency keys", (ironmesh_idempotency::schema::KEYS);
    5, "credentials", "0005_credentials.sql";
];

/// A query failed, or a stored row does not hold what it should; callers see an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("writing an event failed")]
    Event(#[from] OutboxError),
    #[error("a stored row does not hold a valid {0}")]
    Corrupt(&'static str),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Failure::Internal(Box::new(err))
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Provisioning's tables.
#[derive(Clone, Debug)]
pub struct Store {
    db: Database,
    outbox: Outbox,
}

impl Store {
    /// Provisioning's tables in `db`; events go through `outbox`.
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }
}

const REQUEST_COLUMNS: &str = "id, customer_id, plan, tier, state, attempts, max_attempts, \
     last_error, result, idempotency_key, not_before_ms, job_id, progress, credential_kinds, \
     created_at, updated_at, started_at, finished_at";

const JOB_COLUMNS: &str = "id, request_id, attempt, lease_token, worker_id, lease_ms, \
     lease_expires_ms, outcome, dead_letter_id";

const DEAD_LETTER_COLUMNS: &str =
    "id, request_id, attempts, last_error, dead_lettered_at, replayed_at, replayed_by";

/// A request row, read by column name from either backend's row type.
macro_rules! request_row {
    ($row:expr) => {{
        let row = $row;
        let state: String = row.try_get("state")?;
        let tier: i32 = row.try_get("tier")?;
        let result: String = row.try_get("result")?;
        let kinds: String = row.try_get("credential_kinds")?;
        crate::domain::Request {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            plan: row.try_get("plan")?,
            tier: crate::domain::Tier::from_i32(tier)
                .ok_or(crate::store::StoreError::Corrupt("tier"))?,
            state: crate::domain::State::parse(&state)
                .ok_or(crate::store::StoreError::Corrupt("request state"))?,
            attempts: row.try_get("attempts")?,
            max_attempts: row.try_get("max_attempts")?,
            last_error: row.try_get("last_error")?,
            result: serde_json::from_str::<std::collections::BTreeMap<String, String>>(&result)
                .map_err(|_| crate::store::StoreError::Corrupt("result"))?,
            idempotency_key: row.try_get("idempotency_key")?,
            not_before_ms: row.try_get("not_before_ms")?,
            job_id: row.try_get("job_id")?,
            progress: row.try_get("progress")?,
            credential_kinds: kinds
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        }
    }};
}

macro_rules! job_row {
    ($row:expr) => {{
        let row = $row;
        let outcome: Option<String> = row.try_get("outcome")?;
        crate::domain::Job {
            id: row.try_get("id")?,
            request_id: row.try_get("request_id")?,
            attempt: row.try_get("attempt")?,
            lease_token: row.try_get("lease_token")?,
            worker_id: row.try_get("worker_id")?,
            lease_ms: row.try_get("lease_ms")?,
            lease_expires_ms: row.try_get("lease_expires_ms")?,
            outcome: match outcome {
                None => None,
                Some(o) => Some(
                    crate::domain::Outcome::parse(&o)
                        .ok_or(crate::store::StoreError::Corrupt("job outcome"))?,
                ),
            },
            dead_letter_id: row.try_get("dead_letter_id")?,
        }
    }};
}

macro_rules! dead_letter_row {
    ($row:expr) => {{
        let row = $row;
        crate::domain::DeadLetter {
            id: row.try_get("id")?,
            request_id: row.try_get("request_id")?,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
            dead_lettered_at: row.try_get("dead_lettered_at")?,
            replayed_at: row.try_get("replayed_at")?,
            replayed_by: row.try_get("replayed_by")?,
        }
    }};
}

pub(crate) use {dead_letter_row, job_row, request_row};
