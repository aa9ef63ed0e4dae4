//! An upstream that refuses a request's metadata as too large judges that request, not its own
//! health: neither the balancer (ejection) nor the circuit breaker may count it as the endpoint
//! failing, and the caller's error names no address.

mod common;

use std::time::Duration;

use common::{Scripted, check_request, serve, stack_config};
use ironmesh_interceptors::client::BreakerConfig;
use ironmesh_interceptors::metrics::Metrics;
use tonic::Code;

const CALL_LIMIT: Duration = Duration::from_secs(10);

fn breaker_state(upstream: &str) -> i64 {
    Metrics::global()
        .breaker_state
        .with_label_values(&["test", upstream])
        .get()
}

/// Metadata over the server's header-list limit (hyper's h2 default is 16 KiB), a little over
/// and far over (beyond one h2 frame): every call is refused with RESOURCE_EXHAUSTED naming no
/// address; after more refusals than the breaker's threshold it is still closed, and a normal
/// call goes straight through (no ejected endpoint, no open breaker).
#[tokio::test]
async fn refused_metadata_is_not_an_endpoint_failure() {
    const UPSTREAM: &str = "oversized-metadata-upstream";
    let health = Scripted::new(|_, _| Ok(()));
    let server = serve(health.clone(), stack_config(64)).await;
    let target = format!("http://{}", server.addr);
    let channel = ironmesh_interceptors::client::ClientBuilder::new("test", UPSTREAM, &target)
        .policy(ironmesh_interceptors::policy::PolicyTable::default().with(
            common::CHECK,
            true,
            ironmesh_interceptors::policy::Access::Public,
        ))
        .breaker(BreakerConfig {
            failure_ratio: 0.5,
            min_requests: 4,
            window: Duration::from_secs(30),
            cool_down: Duration::from_secs(30),
            probes: 1,
        })
        .build()
        .unwrap();
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    for size in [20_000, 70_000] {
        for _ in 0..6 {
            let mut request = tonic::Request::new(check_request());
            request
                .metadata_mut()
                .insert("x-big", "a".repeat(size).parse().unwrap());
            let status = tokio::time::timeout(CALL_LIMIT, client.check(request))
                .await
                .expect("bounded")
                .unwrap_err();
            assert_eq!(status.code(), Code::ResourceExhausted, "{size}: {status:?}");
            assert!(
                !status.message().contains("127.0.0.1")
                    && !status.message().contains(&server.addr.port().to_string()),
                "{status:?}"
            );
        }
    }
    assert_eq!(breaker_state(UPSTREAM), 0, "the breaker stayed closed");
    tokio::time::timeout(CALL_LIMIT, client.check(check_request()))
        .await
        .expect("bounded")
        .expect("a normal call still goes through");
    assert_eq!(
        health.calls(),
        1,
        "only the normal call reached the service"
    );
    server.stop().await;
}
