//! The order queries: create (with the idempotency claim), read, the conditional save every
//! transition goes through, listing newest first, and what recovery finds due.

use ironmesh_idempotency::Claim;
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::with_pool;
use sqlx::Row as _;

use super::{Result, Store, StoreError};
use crate::domain::{Order, OrderLine, OrderStatus};

const COLUMNS: &str = "id, customer_id, status, currency, total_minor, idempotency_key, \
     reservation_id, reservation_expires_at, payment_reference, shipment_reference, status_reason, \
     short_skus, release_pending, next_attempt_ms, version, created_at, updated_at, paid_at, \
     fulfilled_at, cancelled_at, refunded_at";

/// An order row without its lines, read by column name from either backend's row type.
macro_rules! order_head {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        let short: String = row.try_get("short_skus")?;
        Order {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            status: OrderStatus::parse(&status).ok_or(StoreError::Corrupt("order status"))?,
            lines: Vec::new(),
            total_minor: row.try_get("total_minor")?,
            currency: row.try_get("currency")?,
            idempotency_key: row.try_get("idempotency_key")?,
            reservation_id: row.try_get("reservation_id")?,
            reservation_expires_at: row.try_get("reservation_expires_at")?,
            payment_reference: row.try_get("payment_reference")?,
            shipment_reference: row.try_get("shipment_reference")?,
            status_reason: row.try_get("status_reason")?,
            short_skus: split_skus(&short),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            paid_at: row.try_get("paid_at")?,
            fulfilled_at: row.try_get("fulfilled_at")?,
            cancelled_at: row.try_get("cancelled_at")?,
            refunded_at: row.try_get("refunded_at")?,
            release_pending: row.try_get("release_pending")?,
            next_attempt_ms: row.try_get("next_attempt_ms")?,
            version: row.try_get("version")?,
        }
    }};
}

fn split_skus(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `(order_id, product_id, sku, product_name, quantity, unit_price_minor)` in line order.
type LineRow = (String, String, String, String, i64, i64);

/// What creating an order came to.
#[derive(Debug)]
pub enum Inserted {
    Created,
    /// The customer's key was used before with the same request: the id of that order.
    Repeat(String),
    /// The customer's key was used before with another request.
    Mismatch,
}

/// Which orders a list returns: one customer's (or all) in one status (or any).
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub customer_id: Option<String>,
    pub status: Option<OrderStatus>,
}

/// The idempotency scope of a customer's keys.
pub fn orders_key_scope(customer_id: &str) -> String {
    format!("customer:{customer_id}")
}

impl Store {
    /// Writes the PENDING `order` with its lines and `event`, claiming the customer's key for
    /// the request whose fingerprint is `fingerprint` — one transaction.
    pub async fn insert(
        &self,
        order: &Order,
        fingerprint: &str,
        event: NewEvent,
    ) -> Result<Inserted> {
        let insert = "INSERT INTO orders (id, customer_id, status, currency, total_minor, \
             idempotency_key, next_attempt_ms, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let line = "INSERT INTO order_lines (order_id, line_no, product_id, sku, product_name, \
             quantity, unit_price_minor) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let scope = orders_key_scope(&order.customer_id);
        let outcome = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            match ironmesh_idempotency::claim(&mut *tx, &scope, &order.idempotency_key, fingerprint, &order.id).await? {
                Claim::Fresh => {}
                Claim::Repeat { resource } => return Ok(Inserted::Repeat(resource)),
                Claim::Mismatch => return Ok(Inserted::Mismatch),
            }
            sqlx::query(insert)
                .bind(&order.id)
                .bind(&order.customer_id)
                .bind(order.status.as_str())
                .bind(&order.currency)
                .bind(order.total_minor)
                .bind(&order.idempotency_key)
                .bind(order.next_attempt_ms)
                .bind(order.version)
                .bind(order.created_at)
                .bind(order.updated_at)
                .execute(&mut *tx)
                .await?;
            for (no, l) in order.lines.iter().enumerate() {
                sqlx::query(line)
                    .bind(&order.id)
                    .bind(i64::try_from(no).unwrap_or(i64::MAX))
                    .bind(&l.product_id)
                    .bind(&l.sku)
                    .bind(&l.product_name)
                    .bind(l.quantity)
                    .bind(l.unit_price_minor)
                    .execute(&mut *tx)
                    .await?;
            }
            self.outbox.write(&mut *tx, event).await?;
            tx.commit().await?;
            Inserted::Created
        });
        self.outbox.wake();
        Ok(outcome)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Order>> {
        let sql = format!("SELECT {COLUMNS} FROM orders WHERE id = $1");
        let head = with_pool!(&self.db, pool => {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Some(order_head!(&row)),
                None => None,
            }
        });
        let Some(order) = head else {
            return Ok(None);
        };
        Ok(self.with_lines(vec![order]).await?.pop())
    }

    /// Writes `next` if the order is still at `expected` (the version and status `next` was
    /// decided from), with `event` in the same transaction; `None` when another change came
    /// first. The saved order has the new version.
    pub async fn save(
        &self,
        next: &Order,
        expected: &Order,
        event: Option<NewEvent>,
    ) -> Result<Option<Order>> {
        let sql = "UPDATE orders SET status = $1, reservation_id = $2, reservation_expires_at = $3, \
             payment_reference = $4, shipment_reference = $5, status_reason = $6, short_skus = $7, \
             release_pending = $8, next_attempt_ms = $9, updated_at = $10, paid_at = $11, \
             fulfilled_at = $12, cancelled_at = $13, refunded_at = $14, version = version + 1 \
             WHERE id = $15 AND version = $16 AND status = $17";
        let wrote = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql)
                .bind(next.status.as_str())
                .bind(&next.reservation_id)
                .bind(next.reservation_expires_at)
                .bind(&next.payment_reference)
                .bind(&next.shipment_reference)
                .bind(&next.status_reason)
                .bind(next.short_skus.join(","))
                .bind(next.release_pending)
                .bind(next.next_attempt_ms)
                .bind(next.updated_at)
                .bind(next.paid_at)
                .bind(next.fulfilled_at)
                .bind(next.cancelled_at)
                .bind(next.refunded_at)
                .bind(&expected.id)
                .bind(expected.version)
                .bind(expected.status.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 1 {
                if let Some(event) = event {
                    self.outbox.write(&mut *tx, event).await?;
                }
                tx.commit().await?;
            }
            done == 1
        });
        if !wrote {
            return Ok(None);
        }
        self.outbox.wake();
        let mut saved = next.clone();
        saved.version = expected.version + 1;
        Ok(Some(saved))
    }

    /// Up to `limit` orders matching `filter`, newest first, after the order `before` (the
    /// previous page's last id) when given.
    pub async fn list(
        &self,
        filter: &ListFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Order>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM orders WHERE ($1 = '' OR customer_id = $1) \
             AND ($2 = '' OR status = $2) AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
        );
        let customer = filter.customer_id.as_deref().unwrap_or("");
        let status = filter.status.map(OrderStatus::as_str).unwrap_or("");
        let heads = with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql)
                .bind(customer)
                .bind(status)
                .bind(before.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut heads = Vec::with_capacity(rows.len());
            for row in &rows {
                heads.push(order_head!(row));
            }
            heads
        });
        self.with_lines(heads).await
    }

    /// Ids of unfinished orders (PENDING, RESERVED, or with a release pending) whose next look
    /// is due at `now_ms`, most overdue first.
    pub async fn due(&self, now_ms: i64, limit: i64) -> Result<Vec<String>> {
        let sql = "SELECT id FROM orders \
             WHERE (status IN ('PENDING', 'RESERVED') OR release_pending) AND next_attempt_ms <= $1 \
             ORDER BY next_attempt_ms LIMIT $2";
        let rows: Vec<(String,)> = with_pool!(&self.db, pool => sqlx::query_as(sql)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Takes order `id` for recovery until `until_ms`, if it is still unfinished and due at
    /// `now_ms` — one conditional UPDATE, so of several replicas one gets it.
    pub async fn claim(&self, id: &str, now_ms: i64, until_ms: i64) -> Result<bool> {
        let sql = "UPDATE orders SET next_attempt_ms = $1, version = version + 1 \
             WHERE id = $2 AND next_attempt_ms <= $3 \
             AND (status IN ('PENDING', 'RESERVED') OR release_pending)";
        let done = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(until_ms)
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    async fn with_lines(&self, mut orders: Vec<Order>) -> Result<Vec<Order>> {
        if orders.is_empty() {
            return Ok(orders);
        }
        let list = (1..=orders.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT order_id, product_id, sku, product_name, quantity, unit_price_minor \
             FROM order_lines WHERE order_id IN ({list}) ORDER BY order_id, line_no"
        );
        let rows: Vec<LineRow> = with_pool!(&self.db, pool => {
            let mut query = sqlx::query_as(&sql);
            for order in &orders {
                query = query.bind(&order.id);
            }
            query.fetch_all(pool).await
        })?;
        for (order_id, product_id, sku, product_name, quantity, unit_price_minor) in rows {
            let order = orders
                .iter_mut()
                .find(|o| o.id == order_id)
                .ok_or(StoreError::Corrupt("order line"))?;
            order.lines.push(OrderLine {
                product_id,
                sku,
                product_name,
                quantity,
                unit_price_minor,
            });
        }
        Ok(orders)
    }
}
