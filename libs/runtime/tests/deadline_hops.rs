//! Deadline propagation across three hops of real servers.

mod common;

use std::time::Duration;

use common::{Last, client, start};
use tokio::time::Instant;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;

/// Every wait is bounded by this; the hops' own default deadlines are 30 s each.
const LIMIT: Duration = Duration::from_secs(10);

/// A 300 ms deadline across three hops: each hop sees a smaller budget than the one before, the
/// last hop's handler is cancelled when the deadline passes, and the caller gets
/// DEADLINE_EXCEEDED after about 300 ms — not after the sum of per-hop timeouts (90 s).
#[tokio::test]
async fn deadline_shrinks_across_hops_and_cancels_the_last() {
    let mut hops = start(3, Last::Park).await;
    let mut caller = client("caller", hops.first);

    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = tokio::time::timeout(LIMIT, caller.check(request))
        .await
        .expect("the caller got an answer")
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        elapsed >= Duration::from_millis(250),
        "not before the deadline: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "not the sum of hop timeouts: {elapsed:?}"
    );

    let mut budgets = Vec::new();
    for _ in 0..3 {
        let seen = tokio::time::timeout(LIMIT, hops.seen.recv())
            .await
            .unwrap()
            .unwrap();
        budgets.push((seen.hop, seen.budget.expect("every hop has a deadline")));
    }
    budgets.sort_by_key(|(hop, _)| *hop);
    assert!(budgets[0].1 <= Duration::from_millis(300), "{budgets:?}");
    assert!(
        budgets[1].1 < budgets[0].1,
        "hop 2 sees less than hop 1: {budgets:?}"
    );
    assert!(
        budgets[2].1 < budgets[1].1,
        "hop 3 sees less than hop 2: {budgets:?}"
    );

    let cancelled = tokio::time::timeout(LIMIT, hops.cancelled.recv())
        .await
        .expect("the last hop's handler was cancelled")
        .unwrap();
    assert_eq!(cancelled, 3);
    hops.stop();
}

/// An inbound budget already spent fails the outgoing call at once, without a network call.
#[tokio::test]
async fn spent_budget_fails_fast_without_calling() {
    let mut hops = start(1, Last::Answer).await;
    let mut caller = client("caller", hops.first);
    let context = ironmesh_interceptors::context::CallContext {
        deadline: Some(Instant::now()),
        ..Default::default()
    };
    let status = context
        .scope(caller.check(HealthCheckRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(hops.seen.try_recv().is_err(), "no hop was called");
    hops.stop();
}
