//! One logical client over several replicas.

mod common;

use common::{Scripted, check_request, client, serve, stack_config};
use ironmesh_interceptors::client::RetryConfig;

/// Two replicas behind one balanced client both receive traffic; after one is stopped, every
/// idempotent call still succeeds (the refused attempt is retried on the other replica).
#[tokio::test]
async fn calls_spread_over_replicas_and_survive_losing_one() {
    let a = Scripted::new(|_, _| Ok(()));
    let b = Scripted::new(|_, _| Ok(()));
    let server_a = serve(a.clone(), stack_config(64)).await;
    let server_b = serve(b.clone(), stack_config(64)).await;
    let target = format!("http://{},http://{}", server_a.addr, server_b.addr);
    let mut client = client(&target, true, |builder| {
        builder.retry(RetryConfig {
            max_attempts: 3,
            ..RetryConfig::default()
        })
    });

    for _ in 0..20 {
        client
            .check(check_request())
            .await
            .expect("both replicas up");
    }
    assert!(
        a.calls() > 0 && b.calls() > 0,
        "a={} b={}",
        a.calls(),
        b.calls()
    );

    server_a.stop().await;
    let before = b.calls();
    for i in 0..20 {
        client
            .check(check_request())
            .await
            .unwrap_or_else(|s| panic!("call {i} failed after losing a replica: {s:?}"));
    }
    assert_eq!(
        b.calls() - before,
        20,
        "the surviving replica served every call"
    );
    server_b.stop().await;
}

/// A DNS name is resolved (and re-resolved) into endpoints: `localhost` reaches a server bound
/// on 127.0.0.1, whatever other addresses the name also has (e.g. ::1, refused and skipped).
#[tokio::test]
async fn dns_target_resolves_to_the_live_endpoints() {
    let health = Scripted::new(|_, _| Ok(()));
    let server = serve(health.clone(), stack_config(64)).await;
    let target = format!("http://localhost:{}", server.addr.port());
    let mut client = client(&target, true, |builder| {
        builder.resolve_every(std::time::Duration::from_millis(50))
    });
    // The first call waits for the first lookup instead of failing.
    for i in 0..20 {
        client
            .check(check_request())
            .await
            .unwrap_or_else(|s| panic!("call {i} through a DNS target: {s:?}"));
    }
    assert_eq!(health.calls(), 20);
    server.stop().await;
}

/// With its only endpoint down, a call fails UNAVAILABLE naming the logical upstream and
/// nothing else: no address, no port, no URI (the message may reach a REST caller).
#[tokio::test]
async fn an_unreachable_upstream_is_named_without_its_address() {
    let server = serve(Scripted::new(|_, _| Ok(())), stack_config(64)).await;
    let addr = server.addr;
    server.stop().await;
    let mut client = client(&format!("http://{addr}"), false, |builder| builder);
    let status = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.check(check_request()),
    )
    .await
    .expect("bounded")
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "test-upstream is unavailable");
}
