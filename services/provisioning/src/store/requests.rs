//! The request queries: submit (claiming the idempotency key in the same transaction), read,
//! list newest first, where a request stands in the queue, and cancel.

use ironmesh_idempotency::Claim;
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::with_pool;
use sqlx::Row as _;

use super::{REQUEST_COLUMNS, Result, Store, request_row};
use crate::domain::{Request, State, Tier};

/// What submitting came to.
#[derive(Debug)]
pub enum Inserted {
    Created,
    /// The key was used before with the same request: that request's id.
    Repeat(String),
    /// The key was used before with another request.
    Mismatch,
}

/// Which requests a list returns.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only this customer's (always set for customers).
    pub customer_id: Option<String>,
    pub state: Option<State>,
    pub tier: Option<Tier>,
}

/// Where one request stands: QUEUED requests ahead of it, all QUEUED requests, and claims in
/// the recent window (for the wait estimate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStats {
    pub ahead: i64,
    pub length: i64,
    pub recent_claims: i64,
}

/// The idempotency scope of a customer's keys.
pub fn key_scope(customer_id: &str) -> String {
    format!("provisioning:{customer_id}")
}

impl Store {
    /// Writes the QUEUED `request` and its event, claiming its key (if any) for the request
    /// whose fingerprint is `fingerprint` — one transaction.
    pub async fn insert(
        &self,
        request: &Request,
        fingerprint: &str,
        event: NewEvent,
    ) -> Result<Inserted> {
        let sql = "INSERT INTO provisioning_requests (id, customer_id, plan, tier, state, \
             attempts, max_attempts, last_error, result, idempotency_key, not_before_ms, \
             progress, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, '', '{}', $7, 0, '', $8, $8)";
        let scope = key_scope(&request.customer_id);
        let outcome = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            if !request.idempotency_key.is_empty() {
                match ironmesh_idempotency::claim(&mut *tx, &scope, &request.idempotency_key, fingerprint, &request.id).await? {
                    Claim::Fresh => {}
                    Claim::Repeat { resource } => return Ok(Inserted::Repeat(resource)),
                    Claim::Mismatch => return Ok(Inserted::Mismatch),
                }
            }
            sqlx::query(sql)
                .bind(&request.id)
                .bind(&request.customer_id)
                .bind(&request.plan)
                .bind(request.tier.as_i32())
                .bind(request.state.as_str())
                .bind(request.max_attempts)
                .bind(&request.idempotency_key)
                .bind(request.created_at)
                .execute(&mut *tx)
                .await?;
            self.outbox.write(&mut *tx, event).await?;
            tx.commit().await?;
            Inserted::Created
        });
        self.outbox.wake();
        Ok(outcome)
    }

    pub async fn request(&self, id: &str) -> Result<Option<Request>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM provisioning_requests WHERE id = $1");
        with_pool!(&self.db, pool => {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(request_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Requests matching `filter`, newest first, after the id `before` (a page cursor).
    pub async fn requests(
        &self,
        filter: &ListFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Request>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM provisioning_requests \
             WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR state = $2) \
             AND ($3 = 0 OR tier = $3) AND ($4 = '' OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let customer = filter.customer_id.as_deref().unwrap_or("");
        let state = filter.state.map_or("", State::as_str);
        let tier = filter.tier.map_or(0, Tier::as_i32);
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql)
                .bind(customer)
                .bind(state)
                .bind(tier)
                .bind(before.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(request_row!(row));
            }
            Ok(out)
        })
    }

    /// The queue around `request` (QUEUED): how many are served before it — every QUEUED
    /// request of a higher tier, and of its tier submitted earlier — the queue's length, and
    /// the claims made since `since_ms`.
    pub async fn queue_stats(&self, request: &Request, since_ms: i64) -> Result<QueueStats> {
        let sql = "SELECT \
             (SELECT COUNT(*) FROM provisioning_requests WHERE state = 'QUEUED' \
               AND (tier > $1 OR (tier = $1 AND id < $2))) AS ahead, \
             (SELECT COUNT(*) FROM provisioning_requests WHERE state = 'QUEUED') AS length, \
             (SELECT COUNT(*) FROM provisioning_jobs WHERE claimed_ms > $3) AS recent";
        with_pool!(&self.db, pool => {
            let row = sqlx::query(sql)
                .bind(request.tier.as_i32())
                .bind(&request.id)
                .bind(since_ms)
                .fetch_one(pool)
                .await?;
            Ok(QueueStats {
                ahead: row.try_get("ahead")?,
                length: row.try_get("length")?,
                recent_claims: row.try_get("recent")?,
            })
        })
    }

    /// Every QUEUED request's id in claim order (tier, then submission), and the claims made
    /// since `since_ms`: the position board's one query.
    pub async fn queued_order(&self, since_ms: i64) -> Result<(Vec<String>, i64)> {
        let ids = "SELECT id FROM provisioning_requests WHERE state = 'QUEUED' \
             ORDER BY tier DESC, id";
        let recent = "SELECT COUNT(*) FROM provisioning_jobs WHERE claimed_ms > $1";
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let ids: Vec<String> = sqlx::query_scalar(ids).fetch_all(&mut *tx).await?;
            let recent: i64 = sqlx::query_scalar(recent).bind(since_ms).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok((ids, recent))
        })
    }

    /// Cancels `request` if it is still as read (state and job): the request CANCELLED, a live
    /// job's outcome CANCELLED (its token stops working), the event — one transaction. `None`
    /// if it changed meanwhile (the caller reads it again).
    pub async fn cancel(
        &self,
        request: &Request,
        event: impl FnOnce(&Request) -> NewEvent,
    ) -> Result<Option<Request>> {
        let now = ironmesh_runtime::storage::now();
        let update = format!(
            "UPDATE provisioning_requests SET state = 'CANCELLED', job_id = NULL, \
             updated_at = $3, finished_at = $3 \
             WHERE id = $1 AND state = $2 AND COALESCE(job_id, '') = $4 \
             RETURNING {REQUEST_COLUMNS}"
        );
        let job = request.job_id.clone().unwrap_or_default();
        let done = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(&update)
                .bind(&request.id)
                .bind(request.state.as_str())
                .bind(now)
                .bind(&job)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let mut cancelled = request_row!(row);
            super::credentials::forget!(&mut tx, &cancelled.id);
            cancelled.credential_kinds.clear();
            if !job.is_empty() {
                sqlx::query(
                    "UPDATE provisioning_jobs SET outcome = 'CANCELLED', finished_at = $2 \
                     WHERE id = $1 AND outcome IS NULL",
                )
                .bind(&job)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            self.outbox.write(&mut *tx, event(&cancelled)).await?;
            tx.commit().await?;
            cancelled
        });
        self.outbox.wake();
        Ok(Some(done))
    }
}
