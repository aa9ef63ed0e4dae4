//! The circuit breaker, per upstream, against a real server whose health we switch.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Scripted, check_request, client_of, serve, stack_config};
use ironmesh_interceptors::client::BreakerConfig;
use ironmesh_interceptors::metrics::Metrics;
use tonic::{Code, Status};

const COOL_DOWN: Duration = Duration::from_millis(300);

fn breaker() -> BreakerConfig {
    BreakerConfig {
        failure_ratio: 0.5,
        min_requests: 4,
        window: Duration::from_secs(30),
        cool_down: COOL_DOWN,
        probes: 2,
    }
}

/// Each test's own upstream name: the breaker-state gauge lives in the process-wide registry.
const TRIP: &str = "breaker-trip";
const CALLER_ERRORS: &str = "breaker-caller-errors";

fn state(upstream: &str) -> i64 {
    Metrics::global()
        .breaker_state
        .with_label_values(&["test", upstream])
        .get()
}

/// Closed → open after the failure threshold (calls then fail fast without reaching the server,
/// naming the logical upstream, no address) → half-open after the cool-down → closed once the probes succeed →
/// open again when failures return; a failed probe reopens at once.
#[tokio::test]
async fn breaker_opens_fails_fast_half_opens_closes_and_reopens() {
    let healthy = Arc::new(AtomicBool::new(false));
    let switch = healthy.clone();
    let health = Scripted::new(move |_, _| {
        if switch.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Status::unavailable("sick"))
        }
    });
    let server = serve(health.clone(), stack_config(64)).await;
    // Not idempotent: one attempt per call, so server counts are exact.
    let mut client = client_of(TRIP, &format!("http://{}", server.addr), false, |b| {
        b.breaker(breaker())
    });

    for _ in 0..4 {
        assert_eq!(
            client.check(check_request()).await.unwrap_err().code(),
            Code::Unavailable
        );
    }
    assert_eq!(health.calls(), 4);
    assert_eq!(state(TRIP), 2, "open");

    for _ in 0..5 {
        let status = client.check(check_request()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status
                .message()
                .contains("breaker-trip is unavailable (circuit breaker open)"),
            "{status:?}"
        );
    }
    assert_eq!(health.calls(), 4, "no call reached the server while open");

    // A probe that fails reopens the breaker immediately.
    tokio::time::sleep(COOL_DOWN).await;
    assert_eq!(
        client.check(check_request()).await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(health.calls(), 5, "one probe went through");
    assert_eq!(state(TRIP), 2, "open again after the failed probe");
    let refused = client.check(check_request()).await.unwrap_err();
    assert!(
        refused.message().contains("circuit breaker open"),
        "{refused:?}"
    );
    assert_eq!(health.calls(), 5);

    // The upstream recovers: after the cool-down, two successful probes close the breaker.
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(COOL_DOWN).await;
    client.check(check_request()).await.expect("probe 1");
    assert_eq!(state(TRIP), 1, "half-open while probing");
    client.check(check_request()).await.expect("probe 2");
    assert_eq!(state(TRIP), 0, "closed");
    for _ in 0..10 {
        client
            .check(check_request())
            .await
            .expect("closed breaker passes calls");
    }

    // Failures come back: it opens again.
    healthy.store(false, Ordering::SeqCst);
    for _ in 0..20 {
        let _ = client.check(check_request()).await;
        if state(TRIP) == 2 {
            break;
        }
    }
    assert_eq!(state(TRIP), 2, "reopened on renewed failures");
    server.stop().await;
}

/// Callers' own errors (INVALID_ARGUMENT, NOT_FOUND) say nothing about the upstream's health and
/// never open the breaker.
#[tokio::test]
async fn caller_errors_do_not_open_the_breaker() {
    let health = Scripted::new(|_, _| Err(Status::not_found("no such thing")));
    let server = serve(health.clone(), stack_config(64)).await;
    let mut client = client_of(
        CALLER_ERRORS,
        &format!("http://{}", server.addr),
        false,
        |b| b.breaker(breaker()),
    );
    for _ in 0..20 {
        assert_eq!(
            client.check(check_request()).await.unwrap_err().code(),
            Code::NotFound
        );
    }
    assert_eq!(health.calls(), 20);
    assert_eq!(state(CALLER_ERRORS), 0);
    server.stop().await;
}
