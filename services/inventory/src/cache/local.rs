//! The product cache in this process: a map of id → (revision, product, expiry) behind a
//! `parking_lot` mutex (held for map operations only, never across an await).
//!
//! A hand-written map rather than a cache crate: what it needs is a versioned conditional fill
//! ("only if absent or older") plus tombstones that remember the revision an invalidation
//! announced, and an epoch that voids fills begun before the cache lost track — a few lines
//! under one lock, where a crate like `moka` would add its own async machinery and a dozen
//! dependencies for a map that holds at most [`MAX_ENTRIES`](super::map::MAX_ENTRIES) products.
//!
//! **Across PostgreSQL replicas.** Each replica LISTENs on [`PRODUCT_CHANNEL`] on one
//! connection named `ironmesh-inventory-cache:<replica id>` (its `application_name`), and uses
//! its map only while that connection is up. An update's transaction NOTIFYs `<id>:<revision>`
//! (delivered at commit); each listener puts a tombstone of that revision in its map (so an
//! older row read before the update cannot be filled back) and then acknowledges on
//! [`ACK_CHANNEL`] with `<id>:<revision>:<replica id>`. The updating replica, after its commit,
//! looks up which listeners exist (`pg_stat_activity`, by that name) and waits — bounded by
//! [`ACK_LIMIT`] — until each has acknowledged. So when UpdateProduct answers, every replica
//! that could have cached the old row has dropped it. What is left: a replica PostgreSQL still
//! lists but that cannot answer (a network partition) is waited for until the limit and then
//! logged; a replica that starts listening in the same moment may not be waited for.
//!
//! When a listening connection is lost (notifications missed), the map is emptied, unused until
//! LISTEN is back, and fills begun before are discarded (the epoch moves on). On SQLite the one
//! process invalidates its own map.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ironmesh_runtime::Database;
use parking_lot::Mutex;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Ticket;
use super::map::State;
use crate::domain::Product;
use crate::store::PRODUCT_CHANNEL;

/// Where listeners acknowledge the product changes they applied.
pub const ACK_CHANNEL: &str = "ironmesh_inventory_product_acks";
/// The `application_name` prefix of listening connections: how an updater finds them.
const LISTENER_NAME: &str = "ironmesh-inventory-cache:";
/// Longest an update waits for the other replicas' acknowledgements.
pub const ACK_LIMIT: Duration = Duration::from_secs(2);
/// Pause before listening again after the connection was lost.
const RELISTEN_AFTER: Duration = Duration::from_millis(500);
/// Acknowledgements older than this are dropped (their updater stopped waiting long ago).
const ACK_KEPT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct LocalCache {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    /// PostgreSQL's pool to listen through; `None` on SQLite.
    listen: Option<PgPool>,
    /// This replica's name among the listeners.
    replica: String,
    state: Mutex<State>,
    /// Bumped whenever an acknowledgement arrives (wakes waiting updates).
    acked_tx: watch::Sender<u64>,
}

impl LocalCache {
    pub fn new(ttl: Duration, db: &Database) -> Self {
        let listen = match db {
            Database::Postgres(pool) => Some(pool.clone()),
            Database::Sqlite(_) => None,
        };
        Self {
            inner: Arc::new(Inner {
                ttl,
                state: Mutex::new(State::new(listen.is_none())),
                listen,
                replica: uuid::Uuid::now_v7().simple().to_string(),
                acked_tx: watch::Sender::new(0),
            }),
        }
    }

    pub fn get(&self, ids: &[String]) -> (Vec<Product>, Ticket) {
        let now = Instant::now();
        let state = self.inner.state.lock();
        let ticket = Ticket(state.epoch);
        if !state.live {
            return (Vec::new(), ticket);
        }
        let found = ids
            .iter()
            .filter_map(|id| state.entries.get(id))
            .filter(|e| e.expires > now)
            .filter_map(|e| e.product.clone())
            .collect();
        (found, ticket)
    }

    pub fn fill(&self, ticket: Ticket, products: &[Product]) {
        let now = Instant::now();
        let mut state = self.inner.state.lock();
        if !state.live || state.epoch != ticket.0 {
            return;
        }
        for product in products {
            state.offer(product, self.inner.ttl, now);
        }
    }

    /// After `product`'s update committed: replaced here, and (PostgreSQL) dropped by every
    /// other listening replica before this returns (see the module docs).
    pub async fn updated(&self, product: &Product) {
        let mut acked = self.inner.acked_tx.subscribe();
        {
            let now = Instant::now();
            let mut state = self.inner.state.lock();
            state.invalidate(&product.id, product.revision, self.inner.ttl, now);
            state.offer(product, self.inner.ttl, now);
        }
        let Some(pool) = &self.inner.listen else {
            return;
        };
        let others = match self.listeners(pool).await {
            Ok(others) => others,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list the product cache's listeners; not waiting for them");
                return;
            }
        };
        if others.is_empty() {
            return;
        }
        let key = format!("{}:{}", product.id, product.revision);
        let missing = || -> Vec<String> {
            let state = self.inner.state.lock();
            let acked = state.acks.get(&key).map(|(_, replicas)| replicas);
            others
                .iter()
                .filter(|r| !acked.is_some_and(|a| a.contains(*r)))
                .cloned()
                .collect()
        };
        let waited = tokio::time::timeout(ACK_LIMIT, async {
            while !missing().is_empty() {
                if acked.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!(
                product_id = %product.id,
                replicas = ?missing(),
                "replicas did not confirm dropping the old product from their caches in time"
            );
        }
        self.inner.state.lock().acks.remove(&key);
    }

    /// The other replicas listening now.
    async fn listeners(&self, pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT application_name FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name LIKE $1",
        )
        .bind(format!("{LISTENER_NAME}%"))
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(name,)| Some(name.strip_prefix(LISTENER_NAME)?.to_owned()))
            .filter(|replica| *replica != self.inner.replica)
            .collect())
    }

    /// A product change heard (`<id>:<revision>`): dropped here. Returns what to acknowledge.
    fn changed(&self, payload: &str) -> Option<String> {
        let Some((id, revision)) = payload
            .rsplit_once(':')
            .and_then(|(id, r)| Some((id, r.parse::<i64>().ok()?)))
        else {
            tracing::warn!(payload, "unreadable product change notification");
            return None;
        };
        self.inner
            .state
            .lock()
            .invalidate(id, revision, self.inner.ttl, Instant::now());
        Some(format!("{payload}:{}", self.inner.replica))
    }

    /// An acknowledgement heard: `<id>:<revision>:<replica>`.
    fn acknowledged(&self, payload: &str) {
        let Some((key, replica)) = payload.rsplit_once(':') else {
            return;
        };
        let now = Instant::now();
        {
            let mut state = self.inner.state.lock();
            if state.acks.len() >= 1000 {
                state
                    .acks
                    .retain(|_, (at, _)| now.duration_since(*at) < ACK_KEPT);
            }
            state
                .acks
                .entry(key.to_owned())
                .or_insert_with(|| (now, HashSet::new()))
                .1
                .insert(replica.to_owned());
        }
        self.inner.acked_tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Marks the map usable (listening) or not (connection lost: emptied).
    fn set_live(&self, live: bool) {
        let mut state = self.inner.state.lock();
        state.live = live;
        state.empty();
    }

    /// Opens the named listening connection on both channels.
    async fn listener(&self, pool: &PgPool) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        sqlx::query("SELECT set_config('application_name', $1, false)")
            .bind(format!("{LISTENER_NAME}{}", self.inner.replica))
            .execute(&mut listener)
            .await?;
        listener.listen_all([PRODUCT_CHANNEL, ACK_CHANNEL]).await?;
        Ok(listener)
    }

    /// Listens on PostgreSQL until `token` is cancelled, listening again after a loss. On
    /// SQLite there is nothing to listen to.
    pub async fn run(self, token: CancellationToken) {
        let Some(pool) = self.inner.listen.clone() else {
            return token.cancelled().await;
        };
        let mut quiet = false;
        loop {
            let mut listener = tokio::select! {
                () = token.cancelled() => return,
                listener = self.listener(&pool) => match listener {
                    Ok(listener) => listener,
                    Err(err) => {
                        if !quiet {
                            tracing::warn!(error = %err, "cannot LISTEN for product changes; the product cache is off until it can");
                            quiet = true;
                        }
                        tokio::select! {
                            () = token.cancelled() => return,
                            () = tokio::time::sleep(RELISTEN_AFTER) => continue,
                        }
                    }
                },
            };
            quiet = false;
            self.set_live(true);
            let lost = loop {
                let received = tokio::select! {
                    () = token.cancelled() => return,
                    received = listener.try_recv() => received,
                };
                let notification = match received {
                    Ok(Some(notification)) => notification,
                    Ok(None) => break None,
                    Err(err) => break Some(err),
                };
                if notification.channel() == ACK_CHANNEL {
                    self.acknowledged(notification.payload());
                    continue;
                }
                let Some(ack) = self.changed(notification.payload()) else {
                    continue;
                };
                // On the listening connection itself: only after the map has dropped the row.
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(ACK_CHANNEL)
                    .bind(ack)
                    .execute(&mut listener)
                    .await;
                if let Err(err) = sent {
                    break Some(err);
                }
            };
            match lost {
                Some(err) => {
                    tracing::warn!(error = %err, "lost the product change listener; the product cache is off until it is back")
                }
                None => tracing::warn!(
                    "lost the product change listener; the product cache is off until it is back"
                ),
            }
            self.set_live(false);
            drop(listener);
        }
    }
}
