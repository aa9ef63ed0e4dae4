//! The delivery queue. A replica claims due PENDING rows by setting `lease_until_ms` (one
//! statement; `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas take different rows without
//! waiting on each other); the lease value is the claim's fencing token: an attempt's result is
//! written only while the row still holds it (not redelivered, abandoned or re-claimed after
//! the lease lapsed). A replica that dies mid-attempt leaves a lease that lapses, and the row
//! is claimed again — at-least-once, the same `webhook-id` every time.

use chrono::{DateTime, Utc};
use ironmesh_runtime::storage::Backend;
use ironmesh_runtime::with_pool;

use super::{Result, Store, StoreError};
use crate::domain::{Delivery, DeliveryState};
use crate::preferences::Channel;

/// Which deliveries a list returns.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    /// Only this recipient's; empty = anyone's (operators).
    pub recipient_id: String,
    pub endpoint_id: String,
    pub notification_id: String,
    pub state: Option<DeliveryState>,
}

/// How an attempt ended, as the row records it.
#[derive(Clone, Debug)]
pub struct Attempted {
    pub state: DeliveryState,
    pub status_code: i32,
    pub error: String,
    /// When PENDING: the next attempt.
    pub next_attempt_ms: Option<i64>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, notification_id, recipient_id, channel, endpoint_id, event_type, \
     state, attempts, last_status_code, last_error, next_attempt_ms, delivered_at, created_at";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<i64>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

pub(super) fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::InApp => "IN_APP",
        Channel::Email => "EMAIL",
        Channel::Webhook => "WEBHOOK",
    }
}

fn delivery(row: Row) -> Result<Delivery> {
    let (
        id,
        notification_id,
        recipient_id,
        channel,
        endpoint_id,
        event_type,
        state,
        attempts,
        status,
        last_error,
        next_attempt_ms,
        delivered_at,
        created_at,
    ) = row;
    let channel = match channel.as_str() {
        "EMAIL" => Channel::Email,
        "WEBHOOK" => Channel::Webhook,
        _ => return Err(StoreError::Corrupt("delivery channel")),
    };
    Ok(Delivery {
        id,
        notification_id,
        recipient_id,
        channel,
        endpoint_id,
        event_type,
        state: DeliveryState::parse(&state).ok_or(StoreError::Corrupt("delivery state"))?,
        attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
        last_status_code: i32::try_from(status).unwrap_or(0),
        last_error,
        next_attempt_ms,
        delivered_at,
        created_at,
    })
}

impl Store {
    /// Claims up to `limit` deliveries due at `now_ms` until `lease_until_ms`, at most
    /// `per_target` of any one target (an endpoint, or the SMTP relay), skipping the
    /// endpoints in `skip_endpoints` and email when `skip_email` (their circuits are open or
    /// their concurrency is spent), soonest due first. Capping per target here means a backlog
    /// at one endpoint never fills a claim with rows that could not run anyway.
    pub async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
        per_target: i64,
        skip_endpoints: &[String],
        skip_email: bool,
    ) -> Result<Vec<Delivery>> {
        let skip =
            serde_json::to_string(skip_endpoints).map_err(|_| StoreError::Corrupt("skip"))?;
        let due = "state = 'PENDING' AND next_attempt_ms <= $1 AND lease_until_ms <= $1 \
             AND endpoint_id NOT IN (LIST) AND ($4 = 0 OR channel <> 'EMAIL')";
        let rank = "ROW_NUMBER() OVER (PARTITION BY channel, endpoint_id \
             ORDER BY next_attempt_ms, id) AS rn";
        let sql = match self.db.backend() {
            Backend::Sqlite => format!(
                "UPDATE deliveries SET lease_until_ms = $2 WHERE id IN (SELECT id FROM \
                 (SELECT id, next_attempt_ms, {rank} FROM deliveries WHERE {due}) \
                 WHERE rn <= $6 ORDER BY next_attempt_ms LIMIT $5) RETURNING {COLUMNS}",
                due = due.replace("LIST", "SELECT value FROM json_each($3)"),
            ),
            // FOR UPDATE cannot sit beside a window function: lock a window of due rows first
            // (other replicas skip them), rank those, lease the top of each target.
            Backend::Postgres => format!(
                "WITH due AS (SELECT id, channel, endpoint_id, next_attempt_ms FROM deliveries \
                 WHERE {due} ORDER BY next_attempt_ms LIMIT $7 FOR UPDATE SKIP LOCKED), \
                 ranked AS (SELECT id, next_attempt_ms, {rank} FROM due) \
                 UPDATE deliveries SET lease_until_ms = $2 WHERE id IN (SELECT id FROM ranked \
                 WHERE rn <= $6 ORDER BY next_attempt_ms LIMIT $5) RETURNING {COLUMNS}",
                due = due.replace(
                    "LIST",
                    "SELECT jsonb_array_elements_text(CAST($3 AS jsonb))"
                ),
            ),
        };
        // How far the PostgreSQL window looks ahead for other targets' rows.
        let window = limit.saturating_mul(8).min(5_000);
        let rows: Vec<Row> = with_pool!(&self.db, pool => {
            let query = sqlx::query_as(&sql)
                .bind(now_ms)
                .bind(lease_until_ms)
                .bind(&skip)
                .bind(i64::from(skip_email))
                .bind(limit)
                .bind(per_target);
            let query = if matches!(self.db.backend(), Backend::Postgres) { query.bind(window) } else { query };
            query.fetch_all(pool).await
        })?;
        rows.into_iter().map(delivery).collect()
    }

    /// Records an attempt of `id` made under the lease `lease`; false if the row no longer
    /// holds that lease (the result is dropped: someone else owns the row now).
    pub async fn finish_attempt(&self, id: &str, lease: i64, result: &Attempted) -> Result<bool> {
        let sql = "UPDATE deliveries SET state = $3, attempts = attempts + 1, \
             last_status_code = $4, last_error = $5, next_attempt_ms = $6, delivered_at = $7, \
             lease_until_ms = 0 WHERE id = $1 AND lease_until_ms = $2 AND state = 'PENDING'";
        let done = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(id)
            .bind(lease)
            .bind(result.state.as_str())
            .bind(i64::from(result.status_code))
            .bind(&result.error)
            .bind(result.next_attempt_ms)
            .bind(result.delivered_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Puts a claimed delivery back without an attempt (its circuit opened, or its slots
    /// filled, meanwhile), due at `due_ms`; `why` replaces the last error when given.
    pub async fn defer(&self, id: &str, lease: i64, due_ms: i64, why: Option<&str>) -> Result<()> {
        let sql = "UPDATE deliveries SET next_attempt_ms = $3, last_error = COALESCE($4, last_error), \
             lease_until_ms = 0 WHERE id = $1 AND lease_until_ms = $2 AND state = 'PENDING'";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(id)
            .bind(lease)
            .bind(due_ms)
            .bind(why)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// One delivery.
    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1");
        let row: Option<Row> = with_pool!(&self.db, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        row.map(delivery).transpose()
    }

    /// Deliveries matching `filter`, newest first, older than `before` when set.
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deliveries WHERE ($1 = '' OR recipient_id = $1) \
             AND ($2 = '' OR id < $2) AND ($3 = '' OR endpoint_id = $3) \
             AND ($4 = '' OR notification_id = $4) AND ($5 = '' OR state = $5) \
             ORDER BY id DESC LIMIT $6"
        );
        let rows: Vec<Row> = with_pool!(&self.db, pool => sqlx::query_as(&sql)
            .bind(&filter.recipient_id)
            .bind(before.unwrap_or(""))
            .bind(&filter.endpoint_id)
            .bind(&filter.notification_id)
            .bind(filter.state.map_or("", DeliveryState::as_str))
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(delivery).collect()
    }

    /// Makes delivery `id` PENDING and due at `now_ms` unless it already is PENDING; returns it.
    pub async fn redeliver(&self, id: &str, now_ms: i64) -> Result<Option<Delivery>> {
        let sql = "UPDATE deliveries SET state = 'PENDING', next_attempt_ms = $2, \
             lease_until_ms = 0, delivered_at = NULL WHERE id = $1 AND state <> 'PENDING'";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ()))?;
        self.delivery(id).await
    }

    /// PENDING deliveries: how many, and the creation time (ms) of the oldest.
    pub async fn queue_depth(&self) -> Result<(i64, Option<i64>)> {
        let sql = "SELECT COUNT(*), MIN(created_ms) FROM deliveries WHERE state = 'PENDING'";
        let row: (i64, Option<i64>) = with_pool!(&self.db, pool => sqlx::query_as(sql)
            .fetch_one(pool)
            .await)?;
        Ok(row)
    }
}
