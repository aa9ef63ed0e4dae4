//! Rate limiting at the edge: GCRA (the generic cell rate algorithm) per client address and per
//! credential, `rate_limit_per_sec` with bursts of `rate_limit_burst`. With Redis configured all
//! gateway replicas share one budget (one atomic script per check, using Redis's clock); without
//! it, or while Redis cannot be reached, budgets are kept in this process (logged and counted)
//! rather than failing all traffic. (Request *rates*; message *sizes* are `ironmesh_runtime::limits`.)
//!
//! The algorithm is written here rather than taken from `governor` because the Redis and the
//! in-process store must make the same decisions and report the same `RateLimit-*` figures; with
//! two implementations of one formula side by side, that is easy to see.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::GatewayConfig;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ironmesh_interceptors::metrics::Metrics;
use parking_lot::Mutex;
use redis::aio::ConnectionManager;

use crate::error::{ApiError, retry_seconds};

mod subject;
pub use subject::Subject;

/// GCRA over Redis. Returns `{allowed, remaining, wait_ms}`.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - tolerance > now then
  return {0, 0, tat - tolerance - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + interval)
return {1, math.floor((tolerance + interval - (new_tat - now)) / interval), 0}
";

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u64 },
    Limited { wait: Duration },
}

/// The client's address as the rate limiter saw it, for the handler (it goes upstream as
/// `x-forwarded-for`).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub std::net::IpAddr);

/// One budget: a rate and a burst, for the paths under `prefix`.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Its place among the limiter's budgets: the in-process store's keys carry it.
    id: usize,
    name: Arc<str>,
    prefix: String,
    interval: Duration,
    burst: u32,
    /// `RateLimit-Policy`, made once.
    policy: HeaderValue,
    /// `RateLimit-Limit`, rendered once.
    limit: HeaderValue,
}

impl Budget {
    fn new(id: usize, name: &str, prefix: &str, per_sec: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_sec.max(1);
        let burst = burst.max(1);
        // IETF httpapi RateLimit-Policy: the burst over the window it refills in, and the name.
        let window = (interval * burst).as_secs().max(1);
        let policy = HeaderValue::from_str(&format!("{burst};w={window};name=\"{name}\""))
            .unwrap_or_else(|_| HeaderValue::from(burst));
        Self {
            id,
            name: name.into(),
            prefix: prefix.to_owned(),
            interval,
            burst,
            policy,
            limit: HeaderValue::from(burst),
        }
    }

    fn tolerance(&self) -> Duration {
        self.interval * (self.burst - 1)
    }

    /// The group's name (`default` for paths in no group).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }
}

/// The shared limits.
#[derive(Clone)]
pub struct Limiter {
    default: Budget,
    /// Longest prefix first, so the first match is the most specific group.
    groups: Arc<[Budget]>,
    redis: Option<ConnectionManager>,
    script: Arc<redis::Script>,
    memory: Arc<Mutex<HashMap<(usize, Subject), Instant>>>,
    trusted_proxies: Arc<[std::net::IpAddr]>,
}

const MEMORY_LIMIT: usize = 100_000;
/// How long start-up waits for Redis before deciding in process.
const REDIS_CONNECT: Duration = Duration::from_secs(2);

impl Limiter {
    /// The gateway's limits (`rate_limit_*` and `route_limits`), kept in Redis when `redis_url`
    /// is given and reachable.
    pub async fn new(config: &GatewayConfig, redis_url: Option<&str>) -> Self {
        let redis = match redis_url {
            Some(url) => match redis::Client::open(url) {
                // The manager retries with backoff; start-up waits for it only briefly.
                Ok(client) => {
                    match tokio::time::timeout(REDIS_CONNECT, ConnectionManager::new(client)).await
                    {
                        Ok(Ok(manager)) => Some(manager),
                        Ok(Err(err)) => {
                            tracing::warn!(error = %err, "Redis unreachable at start; rate limits stay in this process");
                            None
                        }
                        Err(_) => {
                            tracing::warn!(
                                "Redis did not answer at start; rate limits stay in this process"
                            );
                            None
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "bad Redis URL; rate limits stay in this process");
                    None
                }
            },
            None => None,
        };
        let mut groups: Vec<Budget> = config
            .route_limits
            .iter()
            .enumerate()
            .map(|(id, g)| Budget::new(id, &g.name, &g.prefix, g.per_sec, g.burst))
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.prefix.len()));
        Self {
            default: Budget::new(
                groups.len(),
                "default",
                "/",
                config.rate_limit_per_sec,
                config.rate_limit_burst,
            ),
            groups: groups.into(),
            redis,
            script: Arc::new(redis::Script::new(GCRA_SCRIPT)),
            memory: Arc::new(Mutex::new(HashMap::new())),
            trusted_proxies: config.trusted_proxies.as_slice().into(),
        }
    }

    /// The budget that governs `path`: the longest matching group prefix, else the default.
    pub fn budget(&self, path: &str) -> &Budget {
        self.groups
            .iter()
            .find(|g| path.starts_with(&g.prefix))
            .unwrap_or(&self.default)
    }

    /// Spends one request of `key`'s share of `budget`, if there is one.
    pub async fn check(&self, budget: &Budget, subject: Subject) -> Decision {
        if let Some(mut redis) = self.redis.clone() {
            let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            let result = self
                .script
                .key(format!("ironmesh:ratelimit:{}:{subject}", budget.name))
                .arg(ms(budget.interval).max(1))
                .arg(ms(budget.tolerance()))
                .invoke_async::<(u64, u64, u64)>(&mut redis)
                .await;
            match result {
                Ok((1, remaining, _)) => return Decision::Allowed { remaining },
                Ok((_, _, wait)) => {
                    return Decision::Limited {
                        wait: Duration::from_millis(wait),
                    };
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Redis unavailable; rate limit decided in process");
                    Metrics::global()
                        .rate_limit_fallbacks
                        .with_label_values(&["gateway"])
                        .inc();
                }
            }
        }
        self.check_memory(budget, (budget.id, subject))
    }

    fn check_memory(&self, budget: &Budget, key: (usize, Subject)) -> Decision {
        let now = Instant::now();
        let tolerance = budget.tolerance();
        let mut memory = self.memory.lock();
        if memory.len() >= MEMORY_LIMIT {
            memory.retain(|_, tat| *tat > now);
        }
        let tat = memory.get(&key).copied().unwrap_or(now).max(now);
        if tat.saturating_duration_since(now) > tolerance {
            return Decision::Limited {
                wait: tat - tolerance - now,
            };
        }
        let next = tat + budget.interval;
        memory.insert(key, next);
        // Requests still allowed right now: (tolerance + interval − (new TAT − now)) / interval.
        let used = next.saturating_duration_since(now);
        let left = (tolerance + budget.interval)
            .saturating_sub(used)
            .as_nanos()
            / budget.interval.as_nanos().max(1);
        Decision::Allowed {
            remaining: u64::try_from(left).unwrap_or(0),
        }
    }
}

/// The axum middleware: checks the address budget, then the credential budget (if any), of the
/// path's group; the first refusal answers 429 with `Retry-After` and `RateLimit-*`.
pub async fn enforce(
    State(limiter): State<Arc<Limiter>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = ironmesh_interceptors::forwarded::client_address(
        peer.ip(),
        request.headers(),
        &limiter.trusted_proxies,
    );
    request.extensions_mut().insert(ClientAddress(client));
    let budget = limiter.budget(request.uri().path());
    let credential = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(Subject::credential);
    let mut remaining = u64::MAX;
    for subject in std::iter::once(Subject::Address(client)).chain(credential) {
        match limiter.check(budget, subject).await {
            Decision::Allowed { remaining: left } => remaining = remaining.min(left),
            Decision::Limited { wait } => {
                Metrics::global()
                    .rate_limited
                    .with_label_values(&["gateway", subject.kind()])
                    .inc();
                return limited(budget, wait);
            }
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", budget.limit.clone());
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("ratelimit-policy", budget.policy.clone());
    response
}

/// The 429: the one error shape ([`ApiError::RateLimited`], with `Retry-After`) plus this
/// budget's `RateLimit-*` state.
fn limited(budget: &Budget, wait: Duration) -> Response {
    let seconds = retry_seconds(wait);
    let mut response = ApiError::RateLimited { wait }.into_response();
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", budget.limit.clone());
    headers.insert("ratelimit-remaining", HeaderValue::from(0));
    headers.insert("ratelimit-reset", HeaderValue::from(seconds));
    headers.insert("ratelimit-policy", budget.policy.clone());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(per_sec: u32, burst: u32) -> GatewayConfig {
        let mut config = GatewayConfig::default();
        config.rate_limit_per_sec = per_sec;
        config.rate_limit_burst = burst;
        config.route_limits = vec![crate::config::RouteLimit {
            name: "login".to_owned(),
            prefix: "/v1/auth/login".to_owned(),
            per_sec: 1,
            burst: 1,
        }];
        config
    }

    const K: Subject = Subject::Address(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    const OTHER: Subject = Subject::Credential([7; 16]);

    #[test]
    fn subjects_name_their_redis_keys_as_before() {
        assert_eq!(K.to_string(), "address:127.0.0.1");
        let hashed = Subject::credential(&HeaderValue::from_static("Bearer t"));
        let text = hashed.to_string();
        assert!(
            text.starts_with("credential:") && text.len() == 11 + 32,
            "{text}"
        );
        assert!(!text.contains("Bearer"), "{text}");
    }

    #[tokio::test]
    async fn memory_gcra_allows_the_burst_then_paces() {
        let limiter = Limiter::new(&config(10, 3), None).await;
        let budget = limiter.budget("/v1/orders").clone();
        assert_eq!(budget.name(), "default");
        let mut allowed = Vec::new();
        for _ in 0..3 {
            match limiter.check(&budget, K).await {
                Decision::Allowed { remaining } => allowed.push(remaining),
                other => panic!("burst refused: {other:?}"),
            }
        }
        assert_eq!(allowed, vec![2, 1, 0]);
        match limiter.check(&budget, K).await {
            Decision::Limited { wait } => assert!(wait <= Duration::from_millis(100), "{wait:?}"),
            other => panic!("over the burst: {other:?}"),
        }
        assert!(matches!(
            limiter.check(&budget, OTHER).await,
            Decision::Allowed { .. }
        ));
    }

    #[tokio::test]
    async fn route_groups_have_their_own_budgets() {
        let limiter = Limiter::new(&config(10, 3), None).await;
        let login = limiter.budget("/v1/auth/login").clone();
        assert_eq!(login.name(), "login");
        assert_eq!(limiter.budget("/v1/auth/register").name(), "default");
        assert!(matches!(
            limiter.check(&login, K).await,
            Decision::Allowed { .. }
        ));
        assert!(matches!(
            limiter.check(&login, K).await,
            Decision::Limited { .. }
        ));
        let default = limiter.budget("/v1/orders").clone();
        assert!(
            matches!(limiter.check(&default, K).await, Decision::Allowed { .. }),
            "the login group's exhaustion does not spend the default budget"
        );
    }
}
