//! The job queries: claim the next claimable request with a new lease, extend it, finish it
//! (complete, fail: requeue with a backoff or dead-letter) — and [`apply!`], the write of a
//! finish that the reaper (`reaper.rs`) shares. A transaction that reads before it writes starts with a write to the request row
//! (a no-op UPDATE): on SQLite that takes the write lock first (no busy snapshot), on
//! PostgreSQL it locks the request row first — the order every transaction here locks in.

use ironmesh_outbox::NewEvent;
use ironmesh_runtime::storage::{Backend, now};
use ironmesh_runtime::with_pool;
use sqlx::Row as _;

use super::{
    DEAD_LETTER_COLUMNS, JOB_COLUMNS, REQUEST_COLUMNS, Result, Store, dead_letter_row, job_row,
    request_row,
};
use crate::domain::{DeadLetter, Job, LeaseLoss, Outcome, Request, State};

/// How a Complete or Fail call ended.
#[derive(Debug)]
pub enum Finished {
    /// Applied now, or a repeat of the call that applied it: the request as it now is, and the
    /// dead letter made (failed for good).
    Done(Box<(Request, Option<DeadLetter>)>),
    Lost(LeaseLoss),
}

/// What finishing a job does to its request (decided by the service from the request).
#[derive(Clone, Debug)]
pub enum Finish {
    Succeed {
        result: String,
    },
    Requeue {
        error: String,
        not_before_ms: i64,
    },
    DeadLetter {
        error: String,
        dead_letter_id: String,
    },
}

impl Finish {
    pub(super) fn outcome(&self) -> Outcome {
        match self {
            Self::Succeed { .. } => Outcome::Succeeded,
            Self::Requeue { .. } => Outcome::Requeued,
            Self::DeadLetter { .. } => Outcome::Failed,
        }
    }
}

/// Writes `finish` of `job` for `request` inside the transaction `tx`: the request's new state,
/// the job's outcome (unless the reaper already set LAPSED), the dead letter; evaluates to the
/// request as written and the dead letter. A macro because each backend's transaction has
/// its own type (`with_pool!` runs the same code on either).
macro_rules! apply {
    ($tx:expr, $request:expr, $job:expr, $finish:expr, $at:expr) => {{
        let (tx, request, job, finish, at): (_, &Request, &Job, &Finish, _) =
            ($tx, $request, $job, $finish, $at);
        let update = format!(
            "UPDATE provisioning_requests SET state = $2, last_error = $3, result = $4, \
             not_before_ms = $5, job_id = NULL, updated_at = $6, \
             finished_at = CASE WHEN $2 IN ('SUCCEEDED', 'FAILED') THEN $6 ELSE finished_at END \
             WHERE id = $1 RETURNING {REQUEST_COLUMNS}"
        );
        let (state, error, result, not_before, dead_id) = match finish {
            Finish::Succeed { result } => (
                State::Succeeded,
                request.last_error.as_str(),
                result.as_str(),
                0,
                None,
            ),
            Finish::Requeue {
                error,
                not_before_ms,
            } => (State::Queued, error.as_str(), "{}", *not_before_ms, None),
            Finish::DeadLetter {
                error,
                dead_letter_id,
            } => (
                State::Failed,
                error.as_str(),
                "{}",
                0,
                Some(dead_letter_id.as_str()),
            ),
        };
        let row = sqlx::query(&update)
            .bind(&request.id)
            .bind(state.as_str())
            .bind(error)
            .bind(result)
            .bind(not_before)
            .bind(at)
            .fetch_one(&mut **tx)
            .await?;
        let mut written = request_row!(row);
        if state == State::Succeeded {
            super::credentials::forget!(&mut *tx, &request.id);
            written.credential_kinds.clear();
        }
        sqlx::query(
            "UPDATE provisioning_jobs SET outcome = $2, dead_letter_id = $3, finished_at = $4 \
             WHERE id = $1 AND (outcome IS NULL OR outcome = 'LAPSED')",
        )
        .bind(&job.id)
        .bind(if job.outcome.is_some() {
            Outcome::Lapsed.as_str()
        } else {
            finish.outcome().as_str()
        })
        .bind(dead_id)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        let dead = match dead_id {
            Some(id) => {
                let dead = DeadLetter {
                    id: id.to_owned(),
                    request_id: request.id.clone(),
                    attempts: written.attempts,
                    last_error: written.last_error.clone(),
                    dead_lettered_at: at,
                    replayed_at: None,
                    replayed_by: String::new(),
                };
                sqlx::query(
                    "INSERT INTO provisioning_dead_letters (id, request_id, attempts, last_error, \
                     dead_lettered_at, replayed_by) VALUES ($1, $2, $3, $4, $5, '')",
                )
                .bind(&dead.id)
                .bind(&dead.request_id)
                .bind(dead.attempts)
                .bind(&dead.last_error)
                .bind(dead.dead_lettered_at)
                .execute(&mut **tx)
                .await?;
                Some(dead)
            }
            None => None,
        };
        (written, dead)
    }};
}

pub(super) use apply;

impl Store {
    /// Leases the next claimable request (highest tier, then oldest; `not_before` passed) to
    /// `job`, writing the job row and the event `event` makes — one transaction. `None`: nothing
    /// claimable.
    pub async fn claim(
        &self,
        job: &Job,
        now_ms: i64,
        event: impl FnOnce(&Request) -> NewEvent,
    ) -> Result<Option<(Request, Job)>> {
        let lock = match self.db.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let claim = format!(
            "UPDATE provisioning_requests SET state = 'RUNNING', attempts = attempts + 1, \
             job_id = $1, progress = '', not_before_ms = 0, started_at = $2, updated_at = $2 \
             WHERE id = (SELECT id FROM provisioning_requests WHERE state = 'QUEUED' \
               AND not_before_ms <= $3 ORDER BY tier DESC, id LIMIT 1 {lock}) \
             AND state = 'QUEUED' RETURNING {REQUEST_COLUMNS}"
        );
        let insert = "INSERT INTO provisioning_jobs (id, request_id, attempt, lease_token, \
             worker_id, lease_ms, lease_expires_ms, claimed_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let at = now();
        let claimed = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(&claim)
                .bind(&job.id)
                .bind(at)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let request = request_row!(row);
            let job = Job {
                request_id: request.id.clone(),
                attempt: request.attempts,
                ..job.clone()
            };
            sqlx::query(insert)
                .bind(&job.id)
                .bind(&job.request_id)
                .bind(job.attempt)
                .bind(&job.lease_token)
                .bind(&job.worker_id)
                .bind(job.lease_ms)
                .bind(job.lease_expires_ms)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            self.outbox.write(&mut *tx, event(&request)).await?;
            tx.commit().await?;
            (request, job)
        });
        self.outbox.wake();
        Ok(Some(claimed))
    }

    pub async fn job(&self, id: &str) -> Result<Option<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM provisioning_jobs WHERE id = $1");
        with_pool!(&self.db, pool => {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(job_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Extends the live lease `(job_id, token)` to `lease_ms` from `now_ms` (0: the length last
    /// used) and records `progress` (if any) on its request; the new expiry, or why not.
    pub async fn heartbeat(
        &self,
        job_id: &str,
        token: &str,
        lease_ms: i64,
        progress: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<i64, LeaseLoss>> {
        let extend = "UPDATE provisioning_jobs SET \
             lease_ms = CASE WHEN $3 > 0 THEN $3 ELSE lease_ms END, \
             lease_expires_ms = $4 + CASE WHEN $3 > 0 THEN $3 ELSE lease_ms END \
             WHERE id = $1 AND lease_token = $2 AND outcome IS NULL AND lease_expires_ms > $4 \
             RETURNING lease_expires_ms";
        let expires: Option<i64> = with_pool!(&self.db, pool => {
            sqlx::query_scalar(extend)
                .bind(job_id)
                .bind(token)
                .bind(lease_ms)
                .bind(now_ms)
                .fetch_optional(pool)
                .await?
        });
        let Some(expires) = expires else {
            return Ok(Err(self.loss(job_id, token).await?));
        };
        if !progress.is_empty() {
            with_pool!(&self.db, pool => {
                sqlx::query(
                    "UPDATE provisioning_requests SET progress = $2 WHERE job_id = $1 \
                     AND state = 'RUNNING'",
                )
                .bind(job_id)
                .bind(progress)
                .execute(pool)
                .await?;
            });
        }
        Ok(Ok(expires))
    }

    /// Why `(job_id, token)` no longer holds its lease.
    pub(super) async fn loss(&self, job_id: &str, token: &str) -> Result<LeaseLoss> {
        Ok(match self.job(job_id).await? {
            Some(job) if job.lease_token == token && job.outcome == Some(Outcome::Cancelled) => {
                LeaseLoss::Cancelled
            }
            _ => LeaseLoss::Lost,
        })
    }

    /// Finishes the live lease `(job_id, token)` as `decide` chooses from its request (which
    /// it receives still RUNNING under that lease), writing the job's outcome, the request, a
    /// dead letter if any and the event — one transaction. A repeat of a call already applied
    /// with this token (the same kind: completed, or failed) answers what it made.
    pub async fn finish(
        &self,
        job_id: &str,
        token: &str,
        failing: bool,
        now_ms: i64,
        decide: impl FnOnce(&Request) -> Finish,
        events: impl FnOnce(&Request, Option<&DeadLetter>) -> Vec<NewEvent>,
    ) -> Result<Finished> {
        // Locks and reads the request in one statement (a no-op UPDATE, see the module docs).
        let lock = format!(
            "UPDATE provisioning_requests SET updated_at = updated_at \
             WHERE id = (SELECT request_id FROM provisioning_jobs WHERE id = $1) \
             RETURNING {REQUEST_COLUMNS}"
        );
        let read_job = format!("SELECT {JOB_COLUMNS} FROM provisioning_jobs WHERE id = $1");
        let at = now();
        let finished = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(&lock).bind(job_id).fetch_optional(&mut *tx).await? else {
                return Ok(Finished::Lost(LeaseLoss::Lost));
            };
            let request = request_row!(row);
            let Some(row) = sqlx::query(&read_job).bind(job_id).fetch_optional(&mut *tx).await? else {
                return Ok(Finished::Lost(LeaseLoss::Lost));
            };
            let job = job_row!(row);
            if job.lease_token != token {
                return Ok(Finished::Lost(LeaseLoss::Lost));
            }
            match job.outcome {
                Some(Outcome::Cancelled) => return Ok(Finished::Lost(LeaseLoss::Cancelled)),
                Some(Outcome::Succeeded) if !failing => {
                    return Ok(Finished::Done(Box::new((request, None))));
                }
                Some(Outcome::Requeued | Outcome::Failed) if failing => {
                    let dead = match &job.dead_letter_id {
                        Some(id) => {
                            let sql = format!("SELECT {DEAD_LETTER_COLUMNS} FROM provisioning_dead_letters WHERE id = $1");
                            let row = sqlx::query(&sql).bind(id).fetch_one(&mut *tx).await?;
                            Some(dead_letter_row!(row))
                        }
                        None => None,
                    };
                    return Ok(Finished::Done(Box::new((request, dead))));
                }
                Some(_) => return Ok(Finished::Lost(LeaseLoss::Lost)),
                None if job.lease_expires_ms <= now_ms
                    || request.state != State::Running
                    || request.job_id.as_deref() != Some(job_id) =>
                {
                    return Ok(Finished::Lost(LeaseLoss::Lost));
                }
                None => {}
            }
            let finish = decide(&request);
            let (request, dead) = apply!(&mut tx, &request, &job, &finish, at);
            for event in events(&request, dead.as_ref()) {
                self.outbox.write(&mut *tx, event).await?;
            }
            tx.commit().await?;
            Finished::Done(Box::new((request, dead)))
        });
        self.outbox.wake();
        Ok(finished)
    }
}
