//! Three hops of real servers built like production ones (`runtime::server::grpc_server`), each
//! calling the next through the shared client builder. Every hop reports what it saw.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use ironmesh_interceptors::client::{ClientBuilder, GrpcChannel};
use ironmesh_interceptors::context::CallContext;
use ironmesh_runtime::Config;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// What one hop observed.
#[derive(Debug)]
pub struct Seen {
    pub hop: usize,
    pub budget: Option<Duration>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub authorization: Option<String>,
}

/// What the last hop does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Last {
    Answer,
    /// Wait forever; report on the channel when the handler is dropped (cancelled).
    Park,
}

#[derive(Clone)]
struct Hop {
    index: usize,
    next: Option<HealthClient<GrpcChannel>>,
    last: Last,
    seen: mpsc::UnboundedSender<Seen>,
    cancelled: mpsc::UnboundedSender<usize>,
}

/// Sends the hop index when dropped: proof the handler's future was dropped.
struct DropSignal(usize, mpsc::UnboundedSender<usize>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
    }
}

#[tonic::async_trait]
impl Health for Hop {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let context = CallContext::current().expect("handlers run inside the call context");
        let _ = self.seen.send(Seen {
            hop: self.index,
            budget: context
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now())),
            request_id: context.request_id.map(|id| id.to_string()),
            trace_id: context.trace.map(|t| t.trace_id_hex()),
            authorization: context
                .authorization
                .and_then(|v| v.to_str().ok().map(str::to_owned)),
        });
        match &self.next {
            Some(next) => next.clone().check(request.into_inner()).await,
            None if self.last == Last::Park => {
                let _signal = DropSignal(self.index, self.cancelled.clone());
                std::future::pending().await
            }
            None => Ok(Response::new(HealthCheckResponse { status: 1 })),
        }
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("unused"))
    }
}

pub struct Hops {
    pub first: SocketAddr,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    pub cancelled: mpsc::UnboundedReceiver<usize>,
    stops: Vec<oneshot::Sender<()>>,
}

impl Hops {
    pub fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
    }
}

pub fn client(caller: &'static str, addr: SocketAddr) -> HealthClient<GrpcChannel> {
    client_with(
        caller,
        addr,
        ironmesh_interceptors::client::Credentials::ForwardCaller,
    )
}

/// A client to `addr` whose calls carry `credentials`.
pub fn client_with(
    caller: &'static str,
    addr: SocketAddr,
    credentials: ironmesh_interceptors::client::Credentials,
) -> HealthClient<GrpcChannel> {
    let channel = ClientBuilder::new(caller, "next-hop", &format!("http://{addr}"))
        .policy(ironmesh_runtime::policy().clone())
        .credentials(credentials)
        .build()
        .expect("client");
    HealthClient::new(channel)
}

/// Starts `count` hops, the last doing `last`; returns the first hop's address.
pub async fn start(count: usize, last: Last) -> Hops {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (cancelled_tx, cancelled) = mpsc::unbounded_channel();
    let mut next: Option<SocketAddr> = None;
    let mut stops = Vec::new();
    for index in (1..=count).rev() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hop = Hop {
            index,
            next: next.map(|addr| client("hop", addr)),
            last,
            seen: seen_tx.clone(),
            cancelled: cancelled_tx.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        let server = ironmesh_runtime::server::grpc_server(
            &Config::default(),
            "hop",
            ironmesh_runtime::policy().clone(),
            None,
        )
        .expect("server builder")
        .add_service(HealthServer::new(hop));
        tokio::spawn(async move {
            let _ = server
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        next = Some(addr);
    }
    Hops {
        first: next.expect("at least one hop"),
        seen,
        cancelled,
        stops,
    }
}
