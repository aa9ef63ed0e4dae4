//! The server stack's own promises: load shedding, panic containment, request ids.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{CHECK, Scripted, check_request, serve, stack_config};
use ironmesh_interceptors::policy::{Access, PolicyTable};
use ironmesh_interceptors::server::ServerStackConfig;
use tokio::sync::{Notify, mpsc};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

const LIMIT: Duration = Duration::from_secs(10);

async fn plain_client(addr: std::net::SocketAddr) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

/// A Check that parks until released, reporting when it has started.
#[derive(Clone)]
struct Parking {
    started: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

#[tonic::async_trait]
impl Health for Parking {
    async fn check(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        let _ = self.started.send(());
        self.release.notified().await;
        Ok(tonic::Response::new(HealthCheckResponse { status: 1 }))
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, tonic::Status>>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("unused"))
    }
}

/// With a concurrency limit of 1 and one call in progress, the next call is refused at once with
/// RESOURCE_EXHAUSTED; once the first finishes, calls are served again.
#[tokio::test]
async fn load_shedding_refuses_calls_above_the_limit() {
    let (started, mut started_rx) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let server = serve(
        Parking {
            started,
            release: release.clone(),
        },
        stack_config(1),
    )
    .await;
    let mut first = plain_client(server.addr).await;
    let in_progress = tokio::spawn(async move { first.check(check_request()).await });
    tokio::time::timeout(LIMIT, started_rx.recv())
        .await
        .expect("first call reached the handler");

    let mut second = plain_client(server.addr).await;
    let refused = tokio::time::timeout(LIMIT, second.check(check_request()))
        .await
        .expect("refused without waiting")
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");

    release.notify_one();
    in_progress
        .await
        .unwrap()
        .expect("the first call completes");
    let next = tokio::spawn(async move { second.check(check_request()).await });
    tokio::time::timeout(LIMIT, started_rx.recv())
        .await
        .expect("served again");
    release.notify_one();
    next.await.unwrap().expect("served after the load dropped");
    server.stop().await;
}

/// A panicking handler answers INTERNAL carrying the request id (and not the panic text); the
/// server keeps serving the next call.
#[tokio::test]
async fn panicking_handler_returns_internal_and_the_server_lives_on() {
    let health = Scripted::new(|n, _| {
        if n == 1 {
            panic!("secret panic detail");
        }
        Ok(())
    });
    let server = serve(health.clone(), stack_config(16)).await;
    let mut client = plain_client(server.addr).await;

    let mut request = tonic::Request::new(check_request());
    request
        .metadata_mut()
        .insert("x-request-id", "req-panic-1".parse().unwrap());
    let status = client.check(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(status.message().contains("req-panic-1"), "{status:?}");
    assert!(!status.message().contains("secret"), "{status:?}");

    client
        .check(check_request())
        .await
        .expect("next call is served");
    assert_eq!(health.calls(), 2);
    server.stop().await;
}

/// The caller's `x-request-id` comes back in the response metadata; without one, a UUIDv7 is
/// minted and returned.
#[tokio::test]
async fn request_id_is_echoed_or_minted() {
    let server = serve(Scripted::new(|_, _| Ok(())), stack_config(16)).await;
    let mut client = plain_client(server.addr).await;

    let mut request = tonic::Request::new(check_request());
    request
        .metadata_mut()
        .insert("x-request-id", "abc-123".parse().unwrap());
    let response = client.check(request).await.unwrap();
    assert_eq!(response.metadata().get("x-request-id").unwrap(), "abc-123");

    let response = client.check(check_request()).await.unwrap();
    let minted = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    let uuid = uuid::Uuid::parse_str(minted).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 7);
    server.stop().await;
}

/// A caller's `grpc-timeout` is capped at the configured maximum, and a slow handler is cut off
/// with DEADLINE_EXCEEDED (not tonic's CANCELLED).
#[tokio::test]
async fn slow_handler_gets_deadline_exceeded() {
    let (started, _started_rx) = mpsc::unbounded_channel();
    let config = ServerStackConfig {
        max_deadline: Duration::from_millis(200),
        policy: PolicyTable::default().with(CHECK, true, Access::Public),
        ..stack_config(16)
    };
    let server = serve(
        Parking {
            started,
            release: Arc::new(Notify::new()),
        },
        config,
    )
    .await;
    let mut client = plain_client(server.addr).await;
    let mut request = tonic::Request::new(check_request());
    request.set_timeout(Duration::from_secs(30));
    let status = tokio::time::timeout(LIMIT, client.check(request))
        .await
        .expect("answered well before the caller's 30 s")
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    server.stop().await;
}
