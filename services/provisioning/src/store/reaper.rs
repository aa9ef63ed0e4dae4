//! The reaper's queries: live jobs whose lease lapsed, and ending one (outcome LAPSED) with its
//! request requeued or dead-lettered through the same write as a FailJob ([`apply!`]). The
//! transaction locks the request row first, as every transaction of the store does.

use ironmesh_outbox::NewEvent;
use ironmesh_runtime::storage::now;
use ironmesh_runtime::with_pool;
use sqlx::Row as _;

use super::jobs::{Finish, apply};
use super::{JOB_COLUMNS, REQUEST_COLUMNS, Result, Store, job_row, request_row};
use crate::domain::{DeadLetter, Job, Outcome, Request, State};

/// What one reaper pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    pub requeued: usize,
    pub dead_lettered: usize,
}

impl Store {
    /// Live jobs whose lease lapsed before `now_ms` (at most `limit`).
    pub async fn lapsed(&self, now_ms: i64, limit: i64) -> Result<Vec<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM provisioning_jobs WHERE outcome IS NULL \
             AND lease_expires_ms <= $1 ORDER BY lease_expires_ms LIMIT $2"
        );
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql).bind(now_ms).bind(limit).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(job_row!(row));
            }
            Ok(out)
        })
    }

    /// Ends the lapsed `job` (outcome LAPSED) and requeues or dead-letters its request as
    /// `decide` chooses — unless it was finished, extended or cancelled meanwhile (false).
    pub async fn reap(
        &self,
        job: &Job,
        now_ms: i64,
        decide: impl FnOnce(&Request) -> Finish,
        events: impl FnOnce(&Request, Option<&DeadLetter>) -> Vec<NewEvent>,
    ) -> Result<bool> {
        let lock = "UPDATE provisioning_requests SET updated_at = updated_at WHERE id = $1";
        let lapse = "UPDATE provisioning_jobs SET outcome = 'LAPSED', finished_at = $2 \
             WHERE id = $1 AND outcome IS NULL AND lease_expires_ms <= $3";
        let read = format!("SELECT {REQUEST_COLUMNS} FROM provisioning_requests WHERE id = $1");
        let at = now();
        let reaped = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock).bind(&job.request_id).execute(&mut *tx).await?;
            let lapsed = sqlx::query(lapse).bind(&job.id).bind(at).bind(now_ms).execute(&mut *tx).await?;
            if lapsed.rows_affected() == 0 {
                return Ok(false);
            }
            let row = sqlx::query(&read).bind(&job.request_id).fetch_one(&mut *tx).await?;
            let request = request_row!(row);
            if request.state == State::Running && request.job_id.as_deref() == Some(job.id.as_str()) {
                let finish = decide(&request);
                let lapsed = Job { outcome: Some(Outcome::Lapsed), ..job.clone() };
                let (request, dead) = apply!(&mut tx, &request, &lapsed, &finish, at);
                for event in events(&request, dead.as_ref()) {
                self.outbox.write(&mut *tx, event).await?;
            }
            }
            tx.commit().await?;
            true
        });
        self.outbox.wake();
        Ok(reaped)
    }
}
