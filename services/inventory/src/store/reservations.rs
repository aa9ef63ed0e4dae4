//! Reservations: Reserve (all-or-nothing, idempotent per order), Commit, Release and expiry —
//! each one transaction of single conditional statements (see the module docs of `store` for
//! why that is enough across replicas).

use chrono::{DateTime, Utc};
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::with_pool;

use super::{Result, Store, StoreError};
use crate::domain::{
    Problem, ProductRef, Reservation, ReservationLine, ReservationStatus, ReserveRequest,
};

/// A reservations row: id, order id, status, expiry, created, updated.
type Row = (
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
);

const BY_ID: &str = "SELECT id, order_id, status, expires_at, created_at, updated_at FROM reservations WHERE id = $1";
const BY_ORDER: &str = "SELECT id, order_id, status, expires_at, created_at, updated_at FROM reservations WHERE order_id = $1";
const LINES: &str = "SELECT product_id, sku, quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY line_no";
/// Gives a line's units back to available stock (release, expiry).
const GIVE_BACK: &str =
    "UPDATE stock SET reserved = reserved - $1, updated_at = $2 WHERE product_id = $3";
/// Takes a line's units out of stock for good (commit).
const TAKE_OUT: &str = "UPDATE stock SET on_hand = on_hand - $1, reserved = reserved - $1, updated_at = $2 \
     WHERE product_id = $3";
/// Expires one reservation if it is still HELD and past its expiry: only one caller ever wins.
const EXPIRE: &str = "UPDATE reservations SET status = 'EXPIRED', updated_at = $1 \
     WHERE id = $2 AND status = 'HELD' AND expires_at <= $1";

fn reservation(row: Row, lines: Vec<(String, String, i64)>) -> Result<Reservation> {
    Ok(Reservation {
        id: row.0,
        order_id: row.1,
        status: ReservationStatus::parse(&row.2)
            .ok_or(StoreError::Corrupt("reservation status"))?,
        expires_at: row.3,
        created_at: row.4,
        updated_at: row.5,
        lines: lines
            .into_iter()
            .map(|(product_id, sku, quantity)| ReservationLine {
                product_id,
                sku,
                quantity,
            })
            .collect(),
    })
}

/// The reservation `$sql` selects by `$key` on `$conn`, with its lines.
macro_rules! load {
    ($conn:expr, $sql:expr, $key:expr) => {{
        match sqlx::query_as::<_, Row>($sql)
            .bind($key)
            .fetch_optional(&mut *$conn)
            .await?
        {
            None => None,
            Some(row) => {
                let lines: Vec<(String, String, i64)> = sqlx::query_as(LINES)
                    .bind(&row.0)
                    .fetch_all(&mut *$conn)
                    .await?;
                Some(reservation(row, lines)?)
            }
        }
    }};
}

/// Runs `$sql` (`$1` quantity, `$2` now, `$3` product) for every line of `$reservation`, in
/// product-id order like every other transaction that locks stock rows.
macro_rules! per_line {
    ($conn:expr, $sql:expr, $reservation:expr, $now:expr) => {{
        let mut lines: Vec<&ReservationLine> = $reservation.lines.iter().collect();
        lines.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        for line in lines {
            sqlx::query($sql)
                .bind(line.quantity)
                .bind($now)
                .bind(&line.product_id)
                .execute(&mut *$conn)
                .await?;
        }
    }};
}

/// Inside `$tx`: expires `$id` if still HELD and past its expiry, gives its units back and
/// writes `$event`'s event; the expired reservation, or `None` when the conditional UPDATE
/// matched nothing. The caller commits.
macro_rules! expire_held {
    ($store:expr, $tx:expr, $id:expr, $now:expr, $event:expr) => {{
        let won = sqlx::query(EXPIRE)
            .bind($now)
            .bind($id)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            == 1;
        if won {
            let expired =
                load!($tx, BY_ID, $id).ok_or(StoreError::Corrupt("expired reservation"))?;
            per_line!($tx, GIVE_BACK, expired, $now);
            $store.write_event(&mut *$tx, ($event)(&expired)).await?;
            Some(expired)
        } else {
            None
        }
    }};
}

/// What Reserve came to.
#[derive(Debug)]
pub enum ReserveOutcome {
    /// Held now.
    Held(Reservation),
    /// The order already had this reservation; returned unchanged.
    Existing(Reservation),
    /// Unknown, inactive or short products: nothing was held.
    Refused(Vec<Problem>),
    /// Lines `.0` and `.1` name the same product (once by id, once by sku).
    SameProduct(usize, usize),
}

/// What Commit or Release came to.
#[derive(Debug)]
pub enum Transition {
    /// This call moved it from HELD to the target status.
    Done(Reservation),
    /// It was HELD but past its expiry: this call expired it (units back) instead.
    Expired(Reservation),
    /// It was already in a later state; nothing changed.
    Current(Reservation),
    NotFound,
}

/// The target of [`Store::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Commit,
    Release,
}

impl Store {
    pub async fn reservation(&self, id: &str) -> Result<Option<Reservation>> {
        with_pool!(&self.db, pool => {
            let mut conn = pool.acquire().await?;
            Ok(load!(conn, BY_ID, id))
        })
    }

    /// Holds every line of `request` as reservation `id`, or nothing. `event` builds the
    /// reservation's event.
    pub async fn reserve(
        &self,
        id: &str,
        request: &ReserveRequest,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        event: impl FnOnce(&Reservation) -> NewEvent,
    ) -> Result<ReserveOutcome> {
        let insert = "INSERT INTO reservations (id, order_id, status, expires_at, created_at, updated_at) \
             VALUES ($1, $2, 'HELD', $3, $4, $4) ON CONFLICT (order_id) DO NOTHING";
        let hold = "UPDATE stock SET reserved = reserved + $1, updated_at = $2 \
             WHERE product_id = $3 AND on_hand - reserved >= $1";
        let available = "SELECT on_hand - reserved FROM stock WHERE product_id = $1";
        let line = "INSERT INTO reservation_lines (reservation_id, line_no, product_id, sku, quantity) \
             VALUES ($1, $2, $3, $4, $5)";
        let outcome = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // First: the order's one reservation. If it exists, that is the answer (on
            // PostgreSQL a concurrent first call for the same order makes this wait for its
            // commit or rollback).
            let created = sqlx::query(insert)
                .bind(id)
                .bind(&request.order_id)
                .bind(expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if !created {
                let existing = load!(tx, BY_ORDER, &request.order_id)
                    .ok_or(StoreError::Corrupt("reservation of an order"))?;
                tx.commit().await?;
                return Ok(ReserveOutcome::Existing(existing));
            }
            // The products, each active.
            let mut problems = Vec::new();
            let mut lines = Vec::with_capacity(request.lines.len());
            for requested in &request.lines {
                let (sql, key) = match &requested.product {
                    ProductRef::Id(id) => ("SELECT id, sku, active FROM products WHERE id = $1", id),
                    ProductRef::Sku(sku) => ("SELECT id, sku, active FROM products WHERE sku = $1", sku),
                };
                let found: Option<(String, String, bool)> =
                    sqlx::query_as(sql).bind(key).fetch_optional(&mut *tx).await?;
                match found {
                    None => problems.push(Problem {
                        kind: "PRODUCT_NOT_FOUND",
                        subject: requested.product.subject().to_owned(),
                        description: "no such product".to_owned(),
                    }),
                    Some((_, sku, false)) => problems.push(Problem {
                        kind: "PRODUCT_INACTIVE",
                        subject: sku,
                        description: "the product is not active".to_owned(),
                    }),
                    Some((product_id, sku, true)) => lines.push(ReservationLine {
                        product_id,
                        sku,
                        quantity: requested.quantity,
                    }),
                }
            }
            if !problems.is_empty() {
                return Ok(ReserveOutcome::Refused(problems));
            }
            for (i, a) in lines.iter().enumerate() {
                if let Some(j) = lines[..i].iter().position(|b| b.product_id == a.product_id) {
                    return Ok(ReserveOutcome::SameProduct(j, i));
                }
            }
            for (line_no, held) in lines.iter().enumerate() {
                sqlx::query(line)
                    .bind(id)
                    .bind(i64::try_from(line_no).unwrap_or(i64::MAX))
                    .bind(&held.product_id)
                    .bind(&held.sku)
                    .bind(held.quantity)
                    .execute(&mut *tx)
                    .await?;
            }
            let reservation = Reservation {
                id: id.to_owned(),
                order_id: request.order_id.clone(),
                lines: lines.clone(),
                status: ReservationStatus::Held,
                expires_at,
                created_at: now,
                updated_at: now,
            };
            self.write_event(&mut *tx, event(&reservation)).await?;
            // Last, just before the commit: hold each line with one conditional UPDATE, in
            // product-id order, and note every short one (the transaction — lines and event
            // with it — is rolled back if there is any). Last, because the UPDATE locks the
            // product's stock row until the commit: every Reserve of a popular product queues
            // on that row, so it is held for this statement and the commit only.
            let mut order: Vec<&ReservationLine> = lines.iter().collect();
            order.sort_by(|a, b| a.product_id.cmp(&b.product_id));
            let mut short = Vec::new();
            for line in order {
                let held = sqlx::query(hold)
                    .bind(line.quantity)
                    .bind(now)
                    .bind(&line.product_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if !held {
                    let (left,): (i64,) = sqlx::query_as(available)
                        .bind(&line.product_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    short.push((line, left));
                }
            }
            if !short.is_empty() {
                // Reported in request order.
                let mut problems = Vec::new();
                for requested in &lines {
                    if let Some((line, left)) = short.iter().find(|(l, _)| l.product_id == requested.product_id) {
                        problems.push(Problem {
                            kind: "INSUFFICIENT_STOCK",
                            subject: line.sku.clone(),
                            description: format!(
                                "requested {}, available {}",
                                line.quantity,
                                left.max(&0)
                            ),
                        });
                    }
                }
                return Ok(ReserveOutcome::Refused(problems));
            }
            tx.commit().await?;
            ReserveOutcome::Held(reservation)
        });
        if let ReserveOutcome::Held(_) = outcome {
            self.committed();
        }
        Ok(outcome)
    }

    /// Commits or releases reservation `id` if it is HELD and not past its expiry (writing
    /// `done`'s event); a HELD one past it is expired instead (writing `expired`'s event).
    pub async fn finish(
        &self,
        id: &str,
        finish: Finish,
        release_reason: &str,
        now: DateTime<Utc>,
        done: impl FnOnce(&Reservation) -> NewEvent,
        expired: impl FnOnce(&Reservation) -> NewEvent,
    ) -> Result<Transition> {
        let (status, stock_change) = match finish {
            Finish::Commit => (ReservationStatus::Committed, TAKE_OUT),
            Finish::Release => (ReservationStatus::Released, GIVE_BACK),
        };
        let transition = "UPDATE reservations SET status = $1, updated_at = $2, release_reason = $3 \
             WHERE id = $4 AND status = 'HELD' AND expires_at > $2";
        let outcome = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query(transition)
                .bind(status.as_str())
                .bind(now)
                .bind(release_reason)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            let Some(current) = load!(tx, BY_ID, id) else {
                return Ok(Transition::NotFound);
            };
            if moved {
                per_line!(tx, stock_change, current, now);
                self.write_event(&mut *tx, done(&current)).await?;
                tx.commit().await?;
                Transition::Done(current)
            } else if current.lapsed(now) {
                match expire_held!(self, tx, id, now, expired) {
                    Some(now_expired) => {
                        tx.commit().await?;
                        Transition::Expired(now_expired)
                    }
                    // Another replica expired it a moment ago: its state now.
                    None => Transition::Current(load!(tx, BY_ID, id).unwrap_or(current)),
                }
            } else {
                Transition::Current(current)
            }
        });
        if matches!(outcome, Transition::Done(_) | Transition::Expired(_)) {
            self.committed();
        }
        Ok(outcome)
    }

    /// Ids of up to `limit` HELD reservations whose expiry has passed, soonest first.
    pub async fn lapsed_reservations(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>> {
        let sql = "SELECT id FROM reservations WHERE status = 'HELD' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2";
        let rows: Vec<(String,)> = with_pool!(&self.db, pool => sqlx::query_as(sql)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Expires reservation `id` (units back, `event`'s event) if it is still HELD and past its
    /// expiry; `None` when it was not (another replica got there first, or it moved on).
    pub async fn expire(
        &self,
        id: &str,
        now: DateTime<Utc>,
        event: impl FnOnce(&Reservation) -> NewEvent,
    ) -> Result<Option<Reservation>> {
        let expired = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let expired = expire_held!(self, tx, id, now, event);
            if expired.is_some() {
                tx.commit().await?;
            }
            expired
        });
        if expired.is_some() {
            self.committed();
        }
        Ok(expired)
    }
}
