//! A scriptable gRPC server behind the real server stack, on 127.0.0.1:0, for the interceptor
//! tests. It serves `grpc.health.v1.Health/Check`; each test decides what Check does.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ironmesh_interceptors::client::{ClientBuilder, GrpcChannel};
use ironmesh_interceptors::policy::{Access, PolicyTable};
use ironmesh_interceptors::server::{ServerStack, ServerStackConfig};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

pub const CHECK: &str = "/grpc.health.v1.Health/Check";

/// What Check answers for one call (given the request's metadata).
pub type Script =
    Arc<dyn Fn(u32, &tonic::metadata::MetadataMap) -> Result<(), Status> + Send + Sync>;

/// A Health service whose Check follows a script; counts calls.
#[derive(Clone)]
pub struct Scripted {
    pub calls: Arc<AtomicU32>,
    script: Script,
}

impl Scripted {
    pub fn new(
        script: impl Fn(u32, &tonic::metadata::MetadataMap) -> Result<(), Status>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            calls: Arc::new(AtomicU32::new(0)),
            script: Arc::new(script),
        }
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[tonic::async_trait]
impl Health for Scripted {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        (self.script)(n, request.metadata())?;
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not used in these tests"))
    }
}

/// A running test server; dropping `stop` shuts it down.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Shuts the server down and waits until its listener is closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

pub fn stack_config(concurrency_limit: usize) -> ServerStackConfig {
    ServerStackConfig {
        service: "test",
        policy: PolicyTable::default().with(CHECK, true, Access::Public),
        concurrency_limit,
        default_deadline: Duration::from_secs(30),
        max_deadline: Duration::from_secs(60),
        authenticator: None,
    }
}

/// Serves `health` behind the server stack configured by `config`.
pub async fn serve<H: Health>(health: H, config: ServerStackConfig) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(ServerStack::new(config))
            .add_service(HealthServer::new(health))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
    });
    TestServer {
        addr,
        stop: Some(stop),
        task,
    }
}

/// A client through the shared client stack; `idempotent` decides whether Check is retried.
pub fn client(
    target: &str,
    idempotent: bool,
    adjust: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> HealthClient<GrpcChannel> {
    client_of("test-upstream", target, idempotent, adjust)
}

/// Like [`client`], for the logical upstream `upstream`. Tests that read an upstream's series
/// from the process-wide metrics registry give it a name of its own, so tests running in one
/// process (plain `cargo test`) never read each other's values.
#[allow(dead_code)] // each test binary compiles this module; not all of them call this
pub fn client_of(
    upstream: &str,
    target: &str,
    idempotent: bool,
    adjust: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> HealthClient<GrpcChannel> {
    let builder = ClientBuilder::new("test", upstream, target).policy(PolicyTable::default().with(
        CHECK,
        idempotent,
        Access::Public,
    ));
    HealthClient::new(adjust(builder).build().unwrap())
}

pub fn check_request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}
