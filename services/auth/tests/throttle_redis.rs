//! Login counters in a real Redis are shared: two replicas (two `Throttle`s) add up to one
//! count and see one lock. Needs TEST_REDIS_URL; in CI (CI=true) its absence is a failure.

use std::time::Duration;

use ironmesh_auth::throttle::{Policy, Throttle};

fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("TEST_REDIS_URL is not set but CI=true: Redis tests must run in CI")
        }
        _ => None,
    }
}

#[tokio::test]
async fn replicas_share_failure_counts_and_locks_through_redis() {
    let Some(url) = redis_url() else {
        eprintln!("note: TEST_REDIS_URL is not set; skipping");
        return;
    };
    let policy = Policy {
        threshold: 4,
        window: Duration::from_secs(60),
        base: Duration::from_secs(30),
        max: Duration::from_secs(120),
    };
    let first = Throttle::redis(&url).await.unwrap();
    let second = Throttle::redis(&url).await.unwrap();
    let key = format!("account:{}@example.com", uuid::Uuid::now_v7().simple());

    assert_eq!(first.fail(&key, &policy).await, None);
    assert_eq!(second.fail(&key, &policy).await, None);
    assert_eq!(first.fail(&key, &policy).await, None);
    let lock = second
        .fail(&key, &policy)
        .await
        .expect("the fourth failure, on any replica, locks");
    assert_eq!(lock, Duration::from_secs(30));
    let seen = first
        .locked_for(&key)
        .await
        .expect("the other replica sees the lock");
    assert!(seen <= lock && seen > Duration::from_secs(25), "{seen:?}");
    assert_eq!(
        first.fail(&key, &policy).await,
        Some(Duration::from_secs(60)),
        "the next failure doubles the lock"
    );
    second.reset(&key).await;
    assert_eq!(
        first.locked_for(&key).await,
        None,
        "a reset on one replica clears both"
    );
}
