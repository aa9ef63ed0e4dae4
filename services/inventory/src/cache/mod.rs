//! Cache-aside for product reads (GetProduct, BatchGetProducts by id): look in the cache, on a
//! miss read the database and fill the cache; UpdateProduct puts the new row in (or invalidates
//! it) after its commit, before it answers.
//!
//! - [`redis`](mod@redis): when `redis_url` is set — one cache shared by every replica. A fill
//!   is a Lua script that writes only if the key is absent or holds an older revision, so a
//!   reader that read the row before an update cannot put the old price back; an update writes
//!   the new row the same way. Unreachable Redis never fails a read: it is a miss (logged once
//!   per outage), and the connection is (re)made in the background.
//! - [`local`]: otherwise — a map in this process with a TTL. On PostgreSQL every replica
//!   LISTENs on the product channel (the update's transaction NOTIFYs, so it fires at commit)
//!   and drops what it hears about, then acknowledges; the updating replica waits for every
//!   listener's acknowledgement before UpdateProduct answers. While not listening a replica
//!   serves nothing from its map, and a fill started before a lost connection is discarded. On
//!   SQLite the one process invalidates its own map.
//!
//! Both keep the revision (`products.revision`, +1 per update) with each entry and never let a
//! lower one replace a higher one. The TTL (`inventory.cache_ttl_secs`) is the backstop.
//! Every lookup counts as a hit or a miss in `ironmesh_inventory_cache_requests_total`.

pub mod local;
mod map;
pub mod redis;

use std::sync::LazyLock;
use std::time::Duration;

use ironmesh_interceptors::metrics::Metrics as Shared;
use ironmesh_proto::ironmesh::inventory::v1 as pb;
use ironmesh_runtime::Database;
use prometheus::{IntCounterVec, Opts};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::domain::Product;
use crate::grpc::convert;

/// The product cache of this process.
#[derive(Clone)]
pub enum ProductCache {
    Redis(redis::RedisCache),
    Local(local::LocalCache),
}

/// Proof of when a lookup missed: a fill carrying a ticket from before the cache lost track of
/// invalidations (a dropped LISTEN connection) is discarded.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl ProductCache {
    /// Redis at `url` (connected in the background by [`Self::run`]).
    pub fn redis(url: &str, ttl: Duration) -> Result<Self, ::redis::RedisError> {
        Ok(ProductCache::Redis(redis::RedisCache::new(url, ttl)?))
    }

    /// In this process, invalidated through LISTEN on PostgreSQL.
    pub fn local(ttl: Duration, db: &Database) -> Self {
        ProductCache::Local(local::LocalCache::new(ttl, db))
    }

    /// The cached products among `ids` (each counted as a hit or a miss), and the ticket to
    /// fill the misses with.
    pub async fn lookup(&self, ids: &[String]) -> (Vec<Product>, Ticket) {
        let (found, ticket) = match self {
            ProductCache::Redis(cache) => (cache.get(ids).await, Ticket(0)),
            ProductCache::Local(cache) => cache.get(ids),
        };
        let hits = found.len() as u64;
        let metrics = &*METRICS;
        metrics.with_label_values(&[SERVICE, "hit"]).inc_by(hits);
        metrics
            .with_label_values(&[SERVICE, "miss"])
            .inc_by(ids.len() as u64 - hits);
        (found, ticket)
    }

    /// Puts rows just read from the database in, unless newer ones are there already.
    pub async fn fill(&self, ticket: Ticket, products: &[Product]) {
        match self {
            ProductCache::Redis(cache) => cache.fill(products).await,
            ProductCache::Local(cache) => cache.fill(ticket, products),
        }
    }

    /// After an update committed: no copy older than `product` is served from here on — in
    /// Redis the new row replaces the old; in process it replaces the old here and, on
    /// PostgreSQL, this waits (bounded) until every other listening replica has acknowledged
    /// dropping it (see [`local`]).
    pub async fn updated(&self, product: &Product) {
        match self {
            ProductCache::Redis(cache) => cache.replace(std::slice::from_ref(product)).await,
            ProductCache::Local(cache) => cache.updated(product).await,
        }
    }

    /// What keeps the cache coherent, for `GrpcService::background`: Redis's connection, or the
    /// PostgreSQL listener. Returns when `token` is cancelled.
    pub async fn run(self, token: CancellationToken) {
        match self {
            ProductCache::Redis(cache) => cache.run(token).await,
            ProductCache::Local(cache) => cache.run(token).await,
        }
    }
}

const SERVICE: &str = "inventory";

static METRICS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let counter = IntCounterVec::new(
        Opts::new(
            "ironmesh_inventory_cache_requests_total",
            "Product reads through the product cache, by whether the cache had the product.",
        ),
        &["service", "result"],
    )
    .expect("valid metric");
    Shared::global()
        .register(Box::new(counter.clone()))
        .expect("inventory cache metrics registered once");
    counter
});

/// Registers the counters so `/metrics` shows them from the start (at zero).
pub fn register_metrics() {
    for result in ["hit", "miss"] {
        METRICS.with_label_values(&[SERVICE, result]);
    }
}

/// A product as a cache stores it: the encoded proto (the revision travels beside it).
fn encode(product: &Product) -> Vec<u8> {
    convert::product(product).encode_to_vec()
}

fn decode(bytes: &[u8], revision: i64) -> Option<Product> {
    let message = pb::Product::decode(bytes).ok()?;
    convert::stored_product(message, revision)
}
