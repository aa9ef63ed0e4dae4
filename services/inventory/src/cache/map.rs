//! The in-process cache's map: entries with the revision they hold, tombstones, the epoch,
//! and the acknowledgements updates wait for. Plain data under the caller's lock.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::Product;

/// Most products the map holds; past it the map is emptied (and the epoch moves on).
pub const MAX_ENTRIES: usize = 50_000;

pub struct State {
    /// Whether the map may be used (always on SQLite; on PostgreSQL while listening).
    pub live: bool,
    /// Moves on whenever the map is emptied or (re)starts being used.
    pub epoch: u64,
    pub entries: HashMap<String, Entry>,
    /// `<id>:<revision>` → the replicas that acknowledged it, and when it was first seen.
    pub acks: HashMap<String, (Instant, HashSet<String>)>,
}

impl State {
    pub fn new(live: bool) -> Self {
        Self {
            live,
            epoch: 0,
            entries: HashMap::new(),
            acks: HashMap::new(),
        }
    }
}

pub struct Entry {
    pub revision: i64,
    /// `None`: a tombstone — the product changed to `revision`, nothing cached yet.
    pub product: Option<Product>,
    pub expires: Instant,
}

impl State {
    /// Puts `product` in unless an entry of a newer revision (or the same, holding a live
    /// product) is there.
    pub fn offer(&mut self, product: &Product, ttl: Duration, now: Instant) {
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
    pub fn invalidate(&mut self, id: &str, revision: i64, ttl: Duration, now: Instant) {
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

    pub fn empty(&mut self) {
        self.entries.clear();
        self.epoch += 1;
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
        let mut state = State::new(true);
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
