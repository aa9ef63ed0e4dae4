//! The product cache in this process: a map of id → (revision, product, expiry) behind a
//! `parking_lot` mutex (held for map operations only, never across an await).
//!
//! A hand-written map rather than a cache crate: what it needs is a versioned conditional fill
//! ("only if absent or older") plus tombstones that remember the revision an invalidation
//! announced, and an epoch that voids fills begun before the cache lost track — a few lines
//! under one lock, where a crate like `moka` would add its own async machinery and a dozen
//! dependencies for a map that holds at most [`MAX_ENTRIES`] products.
//!
//! On PostgreSQL the map is only used while this replica LISTENs on [`PRODUCT_CHANNEL`]: an
//! update's transaction NOTIFYs `<id>:<revision>`, and every listening replica puts a tombstone
//! of that revision in (so an older row read before the update cannot be filled back). When
//! the listening connection is lost (notifications missed), the map is emptied, unused until
//! LISTEN is back, and fills begun before are discarded (the epoch moves on). The replica that
//! updated waits, bounded by [`ECHO_LIMIT`], until its own listener has heard the notification:
//! PostgreSQL signals every listener at commit, so when UpdateProduct answers, the others have
//! been told too. On SQLite the single process invalidates its own map.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ironmesh_runtime::Database;
use parking_lot::Mutex;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Ticket;
use crate::domain::Product;
use crate::store::PRODUCT_CHANNEL;

/// Most products the map holds; past it the map is emptied (and the epoch moves on).
pub const MAX_ENTRIES: usize = 50_000;
/// Longest an update waits for its own notification to come back.
const ECHO_LIMIT: Duration = Duration::from_secs(1);
/// Pause before listening again after the connection was lost.
const RELISTEN_AFTER: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct LocalCache {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    /// PostgreSQL's pool to listen through; `None` on SQLite.
    listen: Option<PgPool>,
    state: Mutex<State>,
    /// Bumped whenever the listener hears a notification (wakes waiting updates).
    heard_tx: watch::Sender<u64>,
}

struct State {
    /// Whether the map may be used (always on SQLite; on PostgreSQL while listening).
    live: bool,
    /// Moves on whenever the map is emptied or (re)starts being used.
    epoch: u64,
    entries: HashMap<String, Entry>,
    /// The highest revision the listener has heard of, per product.
    heard: HashMap<String, i64>,
}

struct Entry {
    revision: i64,
    /// `None`: a tombstone — the product changed to `revision`, nothing cached yet.
    product: Option<Product>,
    expires: Instant,
}

impl State {
    /// Puts `product` in unless an entry of a newer revision (or the same, holding a live
    /// product) is there.
    fn offer(&mut self, product: &Product, ttl: Duration, now: Instant) {
        if let Some(entry) = self.entries.get(&product.id) {
            let older = entry.revision < product.revision;
            let fills_tombstone = entry.revision == product.revision
                && (entry.product.is_none() || entry.expires <= now);
            if !older && !fills_tombstone {
                return;
            }
        }
        self.make_room(now);
        self.entries.insert(
            product.id.clone(),
            Entry {
                revision: product.revision,
                product: Some(product.clone()),
                expires: now + ttl,
            },
        );
    }

    /// Drops anything older than `revision` of product `id`, leaving a tombstone.
    fn invalidate(&mut self, id: &str, revision: i64, ttl: Duration, now: Instant) {
        if self.entries.get(id).is_some_and(|e| e.revision >= revision) {
            return;
        }
        self.make_room(now);
        self.entries.insert(
            id.to_owned(),
            Entry {
                revision,
                product: None,
                expires: now + ttl,
            },
        );
    }

    fn make_room(&mut self, now: Instant) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, e| e.expires > now);
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.empty();
        }
    }

    fn empty(&mut self) {
        self.entries.clear();
        self.epoch += 1;
    }
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
                state: Mutex::new(State {
                    live: listen.is_none(),
                    epoch: 0,
                    entries: HashMap::new(),
                    heard: HashMap::new(),
                }),
                listen,
                heard_tx: watch::Sender::new(0),
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

    pub async fn updated(&self, product: &Product) {
        let mut heard = self.inner.heard_tx.subscribe();
        {
            let now = Instant::now();
            let mut state = self.inner.state.lock();
            state.invalidate(&product.id, product.revision, self.inner.ttl, now);
            state.offer(product, self.inner.ttl, now);
        }
        if self.inner.listen.is_none() {
            return;
        }
        let echoed = || {
            let state = self.inner.state.lock();
            !state.live
                || state
                    .heard
                    .get(&product.id)
                    .is_some_and(|r| *r >= product.revision)
        };
        let waited = tokio::time::timeout(ECHO_LIMIT, async {
            while !echoed() {
                if heard.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!(
                product_id = %product.id,
                "the product change notification did not come back in time"
            );
        }
    }

    /// What the listener heard: `<id>:<revision>`.
    fn heard(&self, payload: &str) {
        let Some((id, revision)) = payload
            .rsplit_once(':')
            .and_then(|(id, r)| Some((id, r.parse::<i64>().ok()?)))
        else {
            tracing::warn!(payload, "unreadable product change notification");
            return;
        };
        let now = Instant::now();
        {
            let mut state = self.inner.state.lock();
            state.invalidate(id, revision, self.inner.ttl, now);
            if state.heard.len() >= MAX_ENTRIES {
                state.heard.clear();
            }
            let seen = state.heard.entry(id.to_owned()).or_insert(revision);
            *seen = (*seen).max(revision);
        }
        self.inner.heard_tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Marks the map usable (listening) or not (connection lost: emptied).
    fn set_live(&self, live: bool) {
        let mut state = self.inner.state.lock();
        state.live = live;
        state.empty();
        state.heard.clear();
        drop(state);
        // Wake waiting updates: an update cannot be echoed by a lost connection.
        self.inner.heard_tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Listens on PostgreSQL until `token` is cancelled, listening again after a loss. On
    /// SQLite there is nothing to listen to.
    pub async fn run(self, token: CancellationToken) {
        let Some(pool) = self.inner.listen.clone() else {
            return token.cancelled().await;
        };
        let mut quiet = false;
        loop {
            let listener = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(PRODUCT_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                () = token.cancelled() => return,
                listener = listener => match listener {
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
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    received = listener.try_recv() => match received {
                        Ok(Some(notification)) => self.heard(notification.payload()),
                        Ok(None) | Err(_) => {
                            tracing::warn!("lost the product change listener; the product cache is off until it is back");
                            self.set_live(false);
                            break;
                        }
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(revision: i64, price: i64) -> Product {
        let at = chrono::Utc::now();
        Product {
            id: "p".into(),
            sku: "P".into(),
            name: "P".into(),
            description: String::new(),
            price_minor: price,
            currency: "EUR".into(),
            active: true,
            revision,
            created_at: at,
            updated_at: at,
        }
    }

    /// A fill of a row read before an update never replaces what the update announced, and a
    /// fill that began before the map was emptied is discarded.
    #[test]
    fn older_rows_and_stale_tickets_never_win() {
        let ttl = Duration::from_secs(60);
        let now = Instant::now();
        let mut state = State {
            live: true,
            epoch: 0,
            entries: HashMap::new(),
            heard: HashMap::new(),
        };
        state.invalidate("p", 2, ttl, now);
        state.offer(&product(1, 100), ttl, now);
        assert!(state.entries["p"].product.is_none(), "old row refused");
        state.offer(&product(2, 200), ttl, now);
        assert_eq!(
            state.entries["p"].product.as_ref().unwrap().price_minor,
            200
        );
        state.offer(&product(2, 999), ttl, now);
        assert_eq!(
            state.entries["p"].product.as_ref().unwrap().price_minor,
            200
        );
        state.invalidate("p", 2, ttl, now);
        assert!(state.entries["p"].product.is_some(), "same revision kept");
        state.empty();
        assert_eq!(state.epoch, 1);
    }
}
