//! Retries with gRPC A6 semantics:
//! - only methods the policy table marks idempotent (from the proto's `idempotency_level`);
//! - only on retryable codes (UNAVAILABLE by default), and only while the response is not
//!   committed — a response that started streaming (no `grpc-status` in its headers) is final;
//! - full-jitter exponential backoff, at most `max_attempts` (≤ 5) attempts, all inside the one
//!   deadline set further out;
//! - a retry budget (tower's `TpsBudget`: a share of recent requests plus a floor per second), so
//!   retries cannot multiply load on an upstream that is already failing;
//! - the server's `grpc-retry-pushback-ms` replaces the backoff; a negative one stops retrying;
//! - attempts after the first carry `grpc-previous-rpc-attempts`.
//!
//! A refusal by an open circuit breaker is never retried.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use rand::Rng;
use tokio::time::Instant;
use tonic::Code;
use tower::retry::budget::{Budget, TpsBudget};
use tower::{Layer, Service, ServiceExt};

use super::breaker::BreakerOpen;
use crate::context::Deadline;
use crate::grpc::{code_name, error_code, observe, status_code};
use crate::metrics::Metrics;
use crate::policy::PolicyTable;
use crate::{BoxError, BoxFuture, Request, Response};

/// Retry settings.
#[derive(Clone, Debug)]
pub struct RetryConfig {
    /// Attempts in all, first try included; capped at 5.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    /// Codes worth another attempt.
    pub retryable: Vec<Code>,
    /// Retries allowed as a share of recent requests …
    pub budget_ratio: f32,
    /// … plus this many per second regardless.
    pub budget_min_per_sec: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            retryable: vec![Code::Unavailable],
            budget_ratio: 0.2,
            budget_min_per_sec: 10,
        }
    }
}

pub struct RetryLayer {
    shared: Arc<Shared>,
}

struct Shared {
    caller: &'static str,
    upstream: Arc<str>,
    policy: PolicyTable,
    config: RetryConfig,
    budget: TpsBudget,
}

impl RetryLayer {
    pub fn new(
        caller: &'static str,
        upstream: Arc<str>,
        policy: PolicyTable,
        mut config: RetryConfig,
    ) -> Self {
        config.max_attempts = config.max_attempts.clamp(1, 5);
        let budget = TpsBudget::new(
            Duration::from_secs(10),
            config.budget_min_per_sec,
            config.budget_ratio,
        );
        Self {
            shared: Arc::new(Shared {
                caller,
                upstream,
                policy,
                config,
                budget,
            }),
        }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Retry<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request> for Retry<S>
where
    S: Service<Request, Response = Response, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let shared = self.shared.clone();
        shared.budget.deposit();
        let (_, method) = shared.policy.labels(request.uri().path());
        if !shared.policy.is_idempotent(request.uri().path()) || shared.config.max_attempts == 1 {
            let future = self.inner.call(request);
            return Box::pin(async move {
                let result = future.await;
                shared.count_attempt(&method, result)
            });
        }
        // Take the service that was made ready; later attempts use fresh clones.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(shared.clone().attempts(inner, request, method))
    }
}

impl Shared {
    /// Counts one attempt under its final code (for a streaming response, when it ends).
    fn count_attempt(
        self: &Arc<Self>,
        method: &Arc<str>,
        result: Result<Response, BoxError>,
    ) -> Result<Response, BoxError> {
        let counter = Metrics::global().client_attempts.clone();
        let labels = [
            self.caller.to_owned(),
            self.upstream.to_string(),
            method.to_string(),
        ];
        let count = move |code: Code| {
            counter
                .with_label_values(&[&labels[0], &labels[1], &labels[2], code_name(code)])
                .inc();
        };
        match result {
            Ok(response) => Ok(observe(response, count)),
            Err(err) => {
                count(error_code(&*err));
                Err(err)
            }
        }
    }

    async fn attempts<S>(
        self: Arc<Self>,
        mut service: S,
        request: Request,
        method: Arc<str>,
    ) -> Result<Response, BoxError>
    where
        S: Service<Request, Response = Response, Error = BoxError> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let deadline = request.extensions().get::<Deadline>().map(|d| d.0);
        let (parts, body) = request.into_parts();
        // Unary requests are small (bounded by the message limit); keep them for replay.
        let body: Bytes = body.collect().await.map_err(BoxError::from)?.to_bytes();
        let mut attempt = 1u32;
        loop {
            let mut request = http::Request::new(tonic::body::Body::new(
                http_body_util::Full::new(body.clone()),
            ));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = parts.headers.clone();
            *request.extensions_mut() = parts.extensions.clone();
            if attempt > 1 {
                request.headers_mut().insert(
                    "grpc-previous-rpc-attempts",
                    http::HeaderValue::from(attempt - 1),
                );
            }
            let result = service.ready().await?.call(request).await;
            let decision = self.decide(&result, attempt, deadline);
            let result = self.count_attempt(&method, result);
            let Some(delay) = decision else {
                return result;
            };
            drop(result);
            Metrics::global()
                .client_retries
                .with_label_values(&[self.caller, &self.upstream, &method])
                .inc();
            tokio::time::sleep(delay).await;
            service = service.clone();
            attempt += 1;
        }
    }

    /// `Some(delay)` when the attempt should be retried after `delay`.
    fn decide(
        &self,
        result: &Result<Response, BoxError>,
        attempt: u32,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        let (code, pushback) = match result {
            Ok(response) => {
                // No status in the headers: the response is committed (streaming or OK).
                let code = status_code(response.headers())?;
                (code, pushback(response.headers()))
            }
            Err(err) if err.is::<BreakerOpen>() => return None,
            Err(err) => (error_code(&**err), None),
        };
        if !self.config.retryable.contains(&code) || attempt >= self.config.max_attempts {
            return None;
        }
        let delay = match pushback {
            Some(Pushback::Stop) => return None,
            Some(Pushback::After(delay)) => delay,
            None => self.backoff(attempt),
        };
        if deadline.is_some_and(|d| Instant::now() + delay >= d) {
            return None;
        }
        if !self.budget.withdraw() {
            Metrics::global()
                .client_retry_budget_exhausted
                .with_label_values(&[self.caller, &self.upstream])
                .inc();
            return None;
        }
        Some(delay)
    }

    /// Full jitter: uniform in [0, min(max, initial × multiplier^(attempt-1))].
    fn backoff(&self, attempt: u32) -> Duration {
        let config = &self.config;
        let exp = config.multiplier.powi(attempt.saturating_sub(1) as i32);
        let ceiling = config.initial_backoff.mul_f64(exp).min(config.max_backoff);
        ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

enum Pushback {
    Stop,
    After(Duration),
}

fn pushback(headers: &http::HeaderMap) -> Option<Pushback> {
    let value = headers.get("grpc-retry-pushback-ms")?.to_str().ok()?;
    match value.trim().parse::<i64>() {
        Ok(ms) if ms >= 0 => Some(Pushback::After(Duration::from_millis(ms as u64))),
        // Negative or malformed: the server says do not retry.
        _ => Some(Pushback::Stop),
    }
}
