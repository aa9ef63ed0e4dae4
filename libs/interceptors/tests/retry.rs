//! Client retries (gRPC A6 semantics) against a real server that fails on purpose.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Scripted, check_request, client, serve, stack_config};
use ironmesh_interceptors::client::{BreakerConfig, RetryConfig};
use parking_lot::Mutex;
use tonic::{Code, Status};

fn retry(max_attempts: u32) -> RetryConfig {
    RetryConfig {
        max_attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..RetryConfig::default()
    }
}

/// A server that fails twice with UNAVAILABLE then succeeds: an idempotent call succeeds on the
/// third attempt, and the retries announce themselves with `grpc-previous-rpc-attempts`.
#[tokio::test]
async fn idempotent_call_succeeds_after_retries() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let health = Scripted::new(move |n, metadata| {
        log.lock().push(
            metadata
                .get("grpc-previous-rpc-attempts")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
        if n <= 2 {
            Err(Status::unavailable("warming up"))
        } else {
            Ok(())
        }
    });
    let server = serve(health.clone(), stack_config(64)).await;
    let mut client = client(&format!("http://{}", server.addr), true, |b| {
        b.retry(retry(3))
    });

    client
        .check(check_request())
        .await
        .expect("third attempt succeeds");
    assert_eq!(health.calls(), 3);
    assert_eq!(
        *seen.lock(),
        vec![None, Some("1".to_owned()), Some("2".to_owned())]
    );
    server.stop().await;
}

/// The same failures on a method not marked idempotent: one attempt, the error is returned.
#[tokio::test]
async fn non_idempotent_call_is_not_retried() {
    let health = Scripted::new(|_, _| Err(Status::unavailable("down")));
    let server = serve(health.clone(), stack_config(64)).await;
    let mut client = client(&format!("http://{}", server.addr), false, |b| {
        b.retry(retry(5))
    });

    let status = client.check(check_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(health.calls(), 1);
    server.stop().await;
}

/// INVALID_ARGUMENT is the caller's problem: never retried, even for an idempotent method.
#[tokio::test]
async fn invalid_argument_is_never_retried() {
    let health = Scripted::new(|_, _| Err(Status::invalid_argument("bad")));
    let server = serve(health.clone(), stack_config(64)).await;
    let mut client = client(&format!("http://{}", server.addr), true, |b| {
        b.retry(retry(5))
    });

    let status = client.check(check_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(health.calls(), 1);
    server.stop().await;
}

/// When every call fails, the retry budget (10% of requests, no floor) caps retries: 50 calls
/// that could make 250 attempts make barely more than 50.
#[tokio::test]
async fn retry_budget_stops_retries_when_most_calls_fail() {
    let health = Scripted::new(|_, _| Err(Status::unavailable("down")));
    let server = serve(health.clone(), stack_config(64)).await;
    let config = RetryConfig {
        budget_ratio: 0.1,
        budget_min_per_sec: 0,
        ..retry(5)
    };
    // The breaker would open after 20 failures; keep it out of this test.
    let breaker = BreakerConfig {
        min_requests: 10_000,
        ..BreakerConfig::default()
    };
    let mut client = client(&format!("http://{}", server.addr), true, |b| {
        b.retry(config).breaker(breaker)
    });

    for _ in 0..50 {
        let status = client.check(check_request()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
    }
    let calls = health.calls();
    assert!(calls >= 50, "every call made its first attempt: {calls}");
    assert!(
        calls <= 50 + 50 / 10 + 1,
        "retries were capped by the budget: {calls}"
    );
    server.stop().await;
}

/// `grpc-retry-pushback-ms` from the server: a negative value stops retries at once; a positive
/// one replaces the backoff (the retry comes no sooner than asked).
#[tokio::test]
async fn pushback_is_honoured() {
    let stop = Scripted::new(|_, _| {
        let mut status = Status::unavailable("go away");
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "-1".parse().unwrap());
        Err(status)
    });
    let server = serve(stop.clone(), stack_config(64)).await;
    let mut client_a = client(&format!("http://{}", server.addr), true, |b| {
        b.retry(retry(5))
    });
    let status = client_a.check(check_request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(stop.calls(), 1, "negative pushback: no retry");
    server.stop().await;

    let times = Arc::new(Mutex::new(Vec::new()));
    let log = times.clone();
    let wait = Scripted::new(move |n, _| {
        log.lock().push(Instant::now());
        if n == 1 {
            let mut status = Status::unavailable("later");
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", "300".parse().unwrap());
            Err(status)
        } else {
            Ok(())
        }
    });
    let server = serve(wait.clone(), stack_config(64)).await;
    let mut client_b = client(&format!("http://{}", server.addr), true, |b| {
        b.retry(retry(3))
    });
    client_b
        .check(check_request())
        .await
        .expect("retried after the pushback");
    let times = times.lock().clone();
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= Duration::from_millis(300),
        "retry waited for the pushback: {:?}",
        times[1] - times[0]
    );
    server.stop().await;
}
