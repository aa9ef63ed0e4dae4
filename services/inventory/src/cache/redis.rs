//! The product cache in Redis, shared by every replica: key `ironmesh:inventory:product:<id>`,
//! value `<revision>:<encoded Product>`, TTL `cache_ttl_secs`. Writes go through one Lua script
//! that sets the key only when it is absent or holds a lower revision — a fill of a row read
//! before an update can never put the old price back over the update's write.
//!
//! Redis being unreachable never fails a read: every command is bounded (connect and response
//! timeouts, and a hard limit around each call), a failure is a miss, after one Redis is left
//! alone for a second, and the first failure of an outage is logged (the next success logs the
//! recovery). An update's write that fails is
//! retried in the background until it lands or the TTL has passed anyway, so a replica that
//! still reaches Redis does not keep serving the old row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::domain::Product;

const KEY_PREFIX: &str = "ironmesh:inventory:product:";
/// The longest any one Redis call may hold up a read.
const CALL_LIMIT: Duration = Duration::from_secs(1);
/// How often a failed post-update write is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// After a failure, how long reads skip Redis altogether (so an outage costs one bounded wait
/// per this interval, not one per read).
const COOL_OFF: Duration = Duration::from_secs(1);

/// KEYS[1] the product's key; ARGV[1] revision, ARGV[2] encoded product, ARGV[3] TTL in ms.
/// Returns 1 when it wrote, 0 when the key holds that revision or a newer one.
const PUT_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, ':', 1, true)
  if sep and tonumber(string.sub(current, 1, sep - 1)) >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
";

#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    manager: ConnectionManager,
    script: redis::Script,
    ttl: Duration,
    /// True from the first failure of an outage until the next success (log once).
    degraded: AtomicBool,
    /// Until when calls are not even tried, after a failure.
    cool_off: Mutex<Option<Instant>>,
    /// Ends the background retries at shutdown.
    stop: CancellationToken,
}

fn key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

impl RedisCache {
    /// A cache at `url`; nothing is connected until the first call (and reconnected after a
    /// loss by the connection manager).
    pub fn new(url: &str, ttl: Duration) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                script: redis::Script::new(PUT_SCRIPT),
                ttl,
                degraded: AtomicBool::new(false),
                cool_off: Mutex::new(None),
                stop: CancellationToken::new(),
            }),
        })
    }

    /// Runs `call` bounded by [`CALL_LIMIT`]; `None` (logged once per outage) if it failed.
    async fn call<T, F>(&self, call: F) -> Option<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        if self
            .inner
            .cool_off
            .lock()
            .is_some_and(|until| Instant::now() < until)
        {
            return None;
        }
        let outcome = match tokio::time::timeout(CALL_LIMIT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("Redis did not answer in time".to_owned()),
        };
        match outcome {
            Ok(value) => {
                *self.inner.cool_off.lock() = None;
                if self.inner.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis product cache reachable again");
                }
                Some(value)
            }
            Err(error) => {
                *self.inner.cool_off.lock() = Some(Instant::now() + COOL_OFF);
                if !self.inner.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "Redis product cache unavailable; reading the database instead");
                }
                None
            }
        }
    }

    /// The products among `ids` that Redis holds (none if it cannot be reached).
    pub async fn get(&self, ids: &[String]) -> Vec<Product> {
        if ids.is_empty() {
            return Vec::new();
        }
        let keys: Vec<String> = ids.iter().map(|id| key(id)).collect();
        let mut conn = self.inner.manager.clone();
        let values: Option<Vec<Option<Vec<u8>>>> = self
            .call(
                redis::cmd("MGET")
                    .arg(&keys)
                    .query_async::<Vec<Option<Vec<u8>>>>(&mut conn),
            )
            .await;
        values
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .filter_map(|value| {
                let sep = value.iter().position(|b| *b == b':')?;
                let revision = std::str::from_utf8(&value[..sep]).ok()?.parse().ok()?;
                super::decode(&value[sep + 1..], revision)
            })
            .collect()
    }

    /// Writes each product unless Redis holds its revision or a newer one; true when every
    /// write reached Redis.
    async fn try_put(&self, products: &[Product]) -> bool {
        let ttl_ms = u64::try_from(self.inner.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut all = true;
        for product in products {
            let mut conn = self.inner.manager.clone();
            let mut invocation = self.inner.script.key(key(&product.id));
            invocation
                .arg(product.revision)
                .arg(super::encode(product))
                .arg(ttl_ms);
            all &= self
                .call(invocation.invoke_async::<i64>(&mut conn))
                .await
                .is_some();
        }
        all
    }

    /// Fills the cache with rows read after a miss (best effort: a failed fill is just a miss
    /// next time too).
    pub async fn fill(&self, products: &[Product]) {
        self.try_put(products).await;
    }

    /// Replaces the cached rows after an update. A write that did not reach Redis is retried
    /// in the background for as long as an old copy could live there.
    pub async fn replace(&self, products: &[Product]) {
        if self.try_put(products).await {
            return;
        }
        let this = self.clone();
        let products = products.to_vec();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + this.inner.ttl;
            while tokio::time::Instant::now() < deadline {
                tokio::select! {
                    () = this.inner.stop.cancelled() => return,
                    () = tokio::time::sleep(RETRY_EVERY) => {}
                }
                if this.try_put(&products).await {
                    return;
                }
            }
        });
    }

    /// Nothing to maintain (the manager reconnects on its own); stops the retries at shutdown.
    pub async fn run(self, token: CancellationToken) {
        token.cancelled().await;
        self.inner.stop.cancel();
    }
}
