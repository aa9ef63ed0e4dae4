//! Brute-force protection: failed logins are counted per account and per client address; past a
//! threshold within the window the key is locked for `base`, doubling with each further failure
//! up to `max`. A successful login clears its account's count.
//!
//! [`Lockout`] is the rule as logins use it (an account key and an address key, each with its
//! [`Policy`]); [`Throttle`] is the counter store underneath.
//!
//! With Redis configured every replica shares the counters (one atomic Lua script per failure),
//! so an attacker cannot spread guesses over replicas; without it they live in this process.
//! If Redis cannot be reached the in-process counters take over (logged) rather than letting
//! every login fail — or every guess through. Keys are SHA-256 hashes, so Redis never holds
//! email addresses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::domain::Email;

/// The brute-force lockout of logins: counters per account and per client address, each with
/// its own rule (an address is shared by many users behind one NAT, so its threshold is higher).
#[derive(Clone)]
pub struct Lockout {
    pub throttle: Throttle,
    pub account: Policy,
    pub address: Policy,
}

fn account_key(email: &Email) -> String {
    format!("account:{}", email.as_str())
}

fn address_key(ip: &str) -> String {
    format!("address:{ip}")
}

impl Lockout {
    /// How much longer a login for `email` from `ip` must wait, if the account or the address is
    /// locked out (the longer of the two).
    pub async fn wait(&self, email: &Email, ip: Option<&str>) -> Option<Duration> {
        let mut wait = self.throttle.locked_for(&account_key(email)).await;
        if let Some(ip) = ip
            && let Some(address) = self.throttle.locked_for(&address_key(ip)).await
        {
            wait = Some(wait.map_or(address, |w| w.max(address)));
        }
        wait
    }

    /// Counts a failed login against the account and the address.
    pub async fn count_failure(&self, email: &Email, ip: Option<&str>) {
        if self
            .throttle
            .fail(&account_key(email), &self.account)
            .await
            .is_some()
        {
            tracing::warn!("account locked out after repeated failed logins");
        }
        if let Some(ip) = ip
            && self
                .throttle
                .fail(&address_key(ip), &self.address)
                .await
                .is_some()
        {
            tracing::warn!(client_ip = %ip, "address locked out after repeated failed logins");
        }
    }

    /// Clears the account's failures (a successful login, or an administrator's unlock).
    pub async fn clear_account(&self, email: &Email) {
        self.throttle.reset(&account_key(email)).await;
    }
}

/// One lockout rule.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub threshold: u32,
    pub window: Duration,
    pub base: Duration,
    pub max: Duration,
}

impl Policy {
    /// How long `failures` failures lock the key for, if at all.
    pub fn lock_for(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.threshold)?;
        let factor = 2u32.saturating_pow(over.min(31));
        Some(self.base.saturating_mul(factor).min(self.max))
    }
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    window_ends: Instant,
    locked_until: Option<Instant>,
}

/// In-process counters (bounded: expired entries are dropped as the map grows).
#[derive(Clone, Default)]
struct Memory {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

const MEMORY_LIMIT: usize = 100_000;

impl Memory {
    fn locked_for(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.entries.lock();
        let until = entries.get(key)?.locked_until?;
        (until > now).then(|| until - now)
    }

    fn fail(&self, key: &str, policy: &Policy) -> Option<Duration> {
        let now = Instant::now();
        let mut entries = self.entries.lock();
        if entries.len() >= MEMORY_LIMIT {
            entries.retain(|_, e| e.window_ends > now || e.locked_until.is_some_and(|u| u > now));
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            window_ends: now + policy.window,
            locked_until: None,
        });
        if entry.window_ends <= now && entry.locked_until.is_none_or(|u| u <= now) {
            *entry = Entry {
                failures: 0,
                window_ends: now + policy.window,
                locked_until: None,
            };
        }
        entry.failures += 1;
        let lock = policy.lock_for(entry.failures);
        if let Some(lock) = lock {
            entry.locked_until = Some(now + lock);
            entry.window_ends = entry.window_ends.max(now + lock + policy.window);
        }
        lock
    }

    fn reset(&self, key: &str) {
        self.entries.lock().remove(key);
    }
}

/// Counts a failure; returns the lock in milliseconds (0: none). Atomic in Redis.
const FAIL_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local threshold = tonumber(ARGV[2])
if n >= threshold then
  local lock = math.floor(math.min(tonumber(ARGV[3]) * (2 ^ (n - threshold)), tonumber(ARGV[4])))
  redis.call('SET', KEYS[2], n, 'PX', lock)
  if redis.call('PTTL', KEYS[1]) < lock + tonumber(ARGV[1]) then
    redis.call('PEXPIRE', KEYS[1], lock + tonumber(ARGV[1]))
  end
  return lock
end
return 0
";

/// The counters, shared by clones.
#[derive(Clone)]
pub struct Throttle {
    redis: Option<ConnectionManager>,
    memory: Memory,
    script: Arc<redis::Script>,
}

impl Throttle {
    /// In-process counters only.
    pub fn in_memory() -> Self {
        Self {
            redis: None,
            memory: Memory::default(),
            script: Arc::new(redis::Script::new(FAIL_SCRIPT)),
        }
    }

    /// Counters in the Redis at `url`. The connection is made lazily and re-made on failure.
    pub async fn redis(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        // The manager retries with backoff; start-up waits for it only briefly.
        let manager = tokio::time::timeout(Duration::from_secs(2), ConnectionManager::new(client))
            .await
            .map_err(|_| {
                redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
            })??;
        Ok(Self {
            redis: Some(manager),
            ..Self::in_memory()
        })
    }

    fn keys(key: &str) -> (String, String) {
        let digest: String = Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (
            format!("ironmesh:auth:failures:{digest}"),
            format!("ironmesh:auth:lock:{digest}"),
        )
    }

    fn fallback(err: &redis::RedisError) {
        tracing::warn!(error = %err, "Redis unavailable; using in-process login counters");
    }

    /// How much longer `key` is locked, if it is.
    pub async fn locked_for(&self, key: &str) -> Option<Duration> {
        if let Some(mut redis) = self.redis.clone() {
            let (_, lock) = Self::keys(key);
            match redis::cmd("PTTL")
                .arg(&lock)
                .query_async::<i64>(&mut redis)
                .await
            {
                Ok(ms) if ms > 0 => return Some(Duration::from_millis(ms as u64)),
                Ok(_) => return None,
                Err(err) => Self::fallback(&err),
            }
        }
        self.memory.locked_for(key)
    }

    /// Counts a failed attempt for `key`; returns the lock it caused, if any.
    pub async fn fail(&self, key: &str, policy: &Policy) -> Option<Duration> {
        if let Some(mut redis) = self.redis.clone() {
            let (count, lock) = Self::keys(key);
            let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            let result = self
                .script
                .key(&count)
                .key(&lock)
                .arg(ms(policy.window))
                .arg(policy.threshold)
                .arg(ms(policy.base))
                .arg(ms(policy.max))
                .invoke_async::<u64>(&mut redis)
                .await;
            match result {
                Ok(0) => return None,
                Ok(lock) => return Some(Duration::from_millis(lock)),
                Err(err) => Self::fallback(&err),
            }
        }
        self.memory.fail(key, policy)
    }

    /// Forgets `key`'s failures and lock.
    pub async fn reset(&self, key: &str) {
        if let Some(mut redis) = self.redis.clone() {
            let (count, lock) = Self::keys(key);
            if let Err(err) = redis::cmd("DEL")
                .arg(&count)
                .arg(&lock)
                .query_async::<i64>(&mut redis)
                .await
            {
                Self::fallback(&err);
            }
        }
        self.memory.reset(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        threshold: 3,
        window: Duration::from_secs(60),
        base: Duration::from_secs(10),
        max: Duration::from_secs(35),
    };

    #[test]
    fn locks_grow_exponentially_up_to_the_cap() {
        assert_eq!(POLICY.lock_for(2), None);
        assert_eq!(POLICY.lock_for(3), Some(Duration::from_secs(10)));
        assert_eq!(POLICY.lock_for(4), Some(Duration::from_secs(20)));
        assert_eq!(POLICY.lock_for(5), Some(Duration::from_secs(35)));
        assert_eq!(POLICY.lock_for(500), Some(Duration::from_secs(35)));
    }

    /// In memory, on tokio's paused clock: the lock engages at the threshold, releases when it
    /// runs out, and a reset clears everything.
    #[tokio::test(start_paused = true)]
    async fn memory_lock_engages_and_releases() {
        let throttle = Throttle::in_memory();
        assert_eq!(throttle.fail("acct:a", &POLICY).await, None);
        assert_eq!(throttle.fail("acct:a", &POLICY).await, None);
        assert_eq!(throttle.locked_for("acct:a").await, None);
        assert_eq!(
            throttle.fail("acct:a", &POLICY).await,
            Some(Duration::from_secs(10))
        );
        assert!(throttle.locked_for("acct:a").await.is_some());
        assert_eq!(
            throttle.locked_for("acct:b").await,
            None,
            "keys are independent"
        );

        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            throttle.locked_for("acct:a").await,
            None,
            "the lock ran out"
        );
        assert_eq!(
            throttle.fail("acct:a", &POLICY).await,
            Some(Duration::from_secs(20)),
            "failing again soon after doubles the lock"
        );
        throttle.reset("acct:a").await;
        assert_eq!(throttle.locked_for("acct:a").await, None);
        assert_eq!(
            throttle.fail("acct:a", &POLICY).await,
            None,
            "counting starts over"
        );
    }
}
