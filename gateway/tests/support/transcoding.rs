//! A gRPC service behind the test-only `ironmesh.testing.v1.TranscodingTestService` contract,
//! for gateway tests: it echoes what it received (message and metadata), fails with any status
//! on request, streams, and takes and answers raw bodies. [`TestGateway`] puts the real gateway
//! in front of it, routed from the contract's own descriptors.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ironmesh_interceptors::client::ClientBuilder;
use ironmesh_interceptors::policy::PolicyTable;
use ironmesh_proto::google::api::HttpBody;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Generated code of the test contract.
pub mod pb {
    tonic::include_proto!("ironmesh.testing.v1");
}

/// Encoded descriptors of the test contract, with imports.
pub const DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/testing_descriptor.bin"));

/// The service's full name.
pub const SERVICE: &str = "ironmesh.testing.v1.TranscodingTestService";

/// Response metadata every call carries, for the gateway's response header allow-list.
pub const REPLY_HEADER: &str = "x-echo-reply";

struct Echo {
    release: Arc<Notify>,
}

type CountStream = Pin<Box<dyn Stream<Item = Result<pb::CountResponse, Status>> + Send>>;

fn with_reply_header<T>(message: T) -> Response<T> {
    let mut response = Response::new(message);
    response
        .metadata_mut()
        .insert(REPLY_HEADER, "echoed".parse().expect("ascii"));
    response.metadata_mut().insert(
        "x-internal-secret",
        "not-for-clients".parse().expect("ascii"),
    );
    response
}

fn echo(request: Request<pb::EchoRequest>) -> Response<pb::EchoResponse> {
    let metadata = request
        .metadata()
        .iter()
        .filter_map(|entry| match entry {
            tonic::metadata::KeyAndValueRef::Ascii(key, value) => {
                Some((key.to_string(), value.to_str().ok()?.to_owned()))
            }
            tonic::metadata::KeyAndValueRef::Binary(..) => None,
        })
        .collect();
    with_reply_header(pb::EchoResponse {
        request: Some(request.into_inner()),
        metadata,
    })
}

/// The status of `code`, with the error details a service would attach to it.
fn failure(code: i32, message: &str) -> Status {
    use ironmesh_proto::google::rpc;
    let code = tonic::Code::from_i32(code);
    let detail = match code {
        tonic::Code::InvalidArgument => Some(prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.BadRequest".into(),
            value: rpc::BadRequest {
                field_violations: vec![rpc::bad_request::FieldViolation {
                    field: "code".into(),
                    description: "asked to fail".into(),
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        }),
        tonic::Code::ResourceExhausted => Some(prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: rpc::RetryInfo {
                retry_delay: Some(prost_types::Duration {
                    seconds: 7,
                    nanos: 0,
                }),
            }
            .encode_to_vec(),
        }),
        _ => None,
    };
    match detail {
        Some(detail) => {
            let status = rpc::Status {
                code: code as i32,
                message: message.to_owned(),
                details: vec![detail],
            };
            Status::with_details(code, message, status.encode_to_vec().into())
        }
        None => Status::new(code, message),
    }
}

/// Count's items, one at a time, holding after the first until released when asked to.
fn async_stream(
    request: pb::CountRequest,
    release: Arc<Notify>,
) -> impl Stream<Item = Result<pb::CountResponse, Status>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for index in 1..=request.count {
            if tx.send(Ok(pb::CountResponse { index })).await.is_err() {
                return;
            }
            if index == 1 && request.hold_after_first {
                release.notified().await;
            }
        }
        if request.fail_code != 0 {
            let _ = tx
                .send(Err(failure(request.fail_code, "stream failed on purpose")))
                .await;
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[tonic::async_trait]
impl pb::transcoding_test_service_server::TranscodingTestService for Echo {
    async fn echo(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(echo(request))
    }

    async fn update_item(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(echo(request))
    }

    async fn create_item(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(echo(request))
    }

    async fn delete_item(&self, _: Request<pb::DeleteItemRequest>) -> Result<Response<()>, Status> {
        Ok(with_reply_header(()))
    }

    async fn fail(&self, request: Request<pb::FailRequest>) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        Err(failure(request.code, &request.message))
    }

    type CountStream = CountStream;

    async fn count(
        &self,
        request: Request<pb::CountRequest>,
    ) -> Result<Response<Self::CountStream>, Status> {
        let request = request.into_inner();
        if request.count < 0 {
            return Err(failure(3, "count must not be negative"));
        }
        let release = self.release.clone();
        let stream = async_stream(request, release);
        Ok(with_reply_header(Box::pin(stream)))
    }

    async fn upload(
        &self,
        request: Request<pb::UploadRequest>,
    ) -> Result<Response<pb::UploadResponse>, Status> {
        let request = request.into_inner();
        let body = request.http_body.unwrap_or_default();
        Ok(with_reply_header(pb::UploadResponse {
            name: request.name,
            content_type: body.content_type,
            data: body.data,
        }))
    }

    async fn download(
        &self,
        request: Request<pb::DownloadRequest>,
    ) -> Result<Response<HttpBody>, Status> {
        Ok(with_reply_header(HttpBody {
            content_type: "text/csv".into(),
            data: format!("name\n{}\n", request.into_inner().name).into_bytes(),
            extensions: Vec::new(),
        }))
    }

    async fn purge(&self, _: Request<pb::DeleteItemRequest>) -> Result<Response<()>, Status> {
        Ok(with_reply_header(()))
    }

    async fn sleep(&self, request: Request<pb::SleepRequest>) -> Result<Response<()>, Status> {
        let millis = u64::try_from(request.into_inner().millis).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(with_reply_header(()))
    }
}

/// The test service and a gateway in front of it, on loopback ephemeral ports.
pub struct TestGateway {
    /// The gateway's REST address.
    pub rest: SocketAddr,
    /// The gateway's admin address.
    pub admin: SocketAddr,
    release: Arc<Notify>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    /// Starts both with the default configuration, changed by `adjust`.
    pub async fn start(adjust: impl FnOnce(&mut ironmesh_runtime::Config)) -> Self {
        let stop = CancellationToken::new();
        let release = Arc::new(Notify::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
        let grpc = listener.local_addr().expect("address");
        let server = tonic::transport::Server::builder()
            .add_service(
                pb::transcoding_test_service_server::TranscodingTestServiceServer::new(Echo {
                    release: release.clone(),
                }),
            )
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stop.clone().cancelled_owned(),
            );
        let mut tasks = vec![tokio::spawn(async move {
            server.await.expect("test service");
        })];

        let mut config = ironmesh_runtime::Config::default().on_loopback_any_port();
        ironmesh_gateway::GatewayConfig::any_port(&mut config).expect("valid gateway section");
        adjust(&mut config);
        let policy = PolicyTable::from_descriptor_sets(&[DESCRIPTOR_SET]).expect("policy");
        let channel = ClientBuilder::new("gateway", "testing", &format!("http://{grpc}"))
            .policy(policy)
            .credentials(ironmesh_interceptors::client::Credentials::ForwardCaller)
            .build()
            .expect("channel");
        let pool = prost_reflect::DescriptorPool::decode(DESCRIPTOR_SET).expect("descriptors");
        let api = ironmesh_gateway::Api::new(pool).route(SERVICE, channel);
        let gateway = config.section().expect("valid gateway section");
        let listeners = ironmesh_gateway::GatewayListeners::bind(&config, &gateway)
            .await
            .expect("bind gateway");
        let rest = listeners.http.local_addr().expect("address");
        let admin = listeners.admin.local_addr().expect("address");
        let shutdown = stop.clone().cancelled_owned();
        tasks.push(tokio::spawn(async move {
            ironmesh_gateway::run_with(config, listeners, api, shutdown)
                .await
                .expect("gateway");
        }));
        Self {
            rest,
            admin,
            release,
            stop,
            tasks,
        }
    }

    /// Lets a `Count` stream held after its first item go on.
    pub fn release_stream(&self) {
        self.release.notify_one();
    }

    /// The REST base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.rest)
    }

    /// Stops both and waits for them.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
