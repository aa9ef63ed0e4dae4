//! The calls the suite makes: an operator made out of band who submits, watches and lists
//! requests; a worker's service identity (`service:worker-bench`, minted with the mesh's
//! secret, as `ironmesh worker` holds one) that claims and completes jobs; and the
//! [`CHANNELS`] HTTP/2 connections every caller shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ironmesh_interceptors::auth::service::ServiceTokens;
use ironmesh_proto::ironmesh::provisioning::v1::{
    self as pb, PriorityTier, provisioning_service_client::ProvisioningServiceClient,
};
use ironmesh_runtime::Config;
use tonic::transport::Channel;

use crate::calls::{bearer_request, load_channel, operator_token, rpc_failed};
use crate::error::BenchError;
use crate::stores::failed;

pub type Client = ProvisioningServiceClient<Channel>;

/// HTTP/2 connections to provisioning: the watchers are spread over them (100 streams each
/// for 1,000), the workers and submitters take them in turn.
pub const CHANNELS: usize = 10;
/// How long one unary call may take, and a stream to answer (a SQLite writer can queue
/// behind many).
/// Concurrent SubmitRequest callers filling the queue.
const SUBMITTERS: usize = 16;
/// ListRequests' largest page.
const PAGE: i32 = 200;
/// The plans submitted, in turn (provisioning's defaults).
const PLANS: [&str; 3] = ["starter", "professional", "enterprise"];

/// The operator's token, the worker's identity and the channels to provisioning.
#[derive(Clone)]
pub struct Calls {
    operator: Arc<str>,
    worker: Arc<ServiceTokens>,
    channels: Vec<Channel>,
}

/// `duration` as a protobuf Duration.
pub fn proto_duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
    }
}

impl Calls {
    /// Makes the operator and logs it in, mints the worker's identity, opens the channels.
    pub async fn open(
        config: &Config,
        auth: SocketAddr,
        provisioning: SocketAddr,
    ) -> Result<Self, BenchError> {
        let operator = operator_token(
            config,
            load_channel(auth).await?,
            "bench-operator@example.com",
        )
        .await?
        .into();
        let secret = ironmesh_runtime::auth::service_secret(config)
            .map_err(failed("the mesh's service identity secret"))?;
        let worker = Arc::new(ServiceTokens::new(&secret, "worker-bench", "provisioning"));
        let mut channels = Vec::with_capacity(CHANNELS);
        for _ in 0..CHANNELS {
            channels.push(load_channel(provisioning).await?);
        }
        Ok(Self {
            operator,
            worker,
            channels,
        })
    }

    /// A client on the `i`-th channel (round-robin).
    pub fn client(&self, i: usize) -> Client {
        Client::new(self.channels[i % CHANNELS].clone())
    }

    /// `message` as the operator.
    pub fn as_operator<T>(&self, message: T) -> Result<tonic::Request<T>, BenchError> {
        bearer_request(message, &self.operator)
    }

    /// `message` as the worker (`service:worker-bench`).
    pub fn as_worker<T>(&self, message: T) -> Result<tonic::Request<T>, BenchError> {
        bearer_request(message, &self.worker.token())
    }

    /// `n` SubmitRequests as the operator from [`SUBMITTERS`] concurrent callers, the `i`-th
    /// at `tier(i)`; the request ids, in `i` order.
    pub async fn submit(
        &self,
        n: usize,
        tier: fn(usize) -> PriorityTier,
    ) -> Result<Vec<String>, BenchError> {
        let next = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..SUBMITTERS)
            .map(|s| {
                let (calls, next) = (self.clone(), next.clone());
                tokio::spawn(async move {
                    let mut client = calls.client(s);
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::AcqRel);
                        if i >= n {
                            return Ok::<_, BenchError>(mine);
                        }
                        let message = pb::SubmitRequestRequest {
                            plan: PLANS[i % PLANS.len()].to_owned(),
                            priority_tier: tier(i).into(),
                            ..Default::default()
                        };
                        let id = client
                            .submit_request(calls.as_operator(message)?)
                            .await
                            .map_err(rpc_failed("SubmitRequest"))?
                            .into_inner()
                            .request
                            .ok_or_else(|| {
                                BenchError::Failed("SubmitRequest returned no request".into())
                            })?
                            .request_id;
                        mine.push((i, id));
                    }
                })
            })
            .collect();
        let mut ids = Vec::with_capacity(n);
        for task in tasks {
            ids.extend(
                task.await
                    .map_err(|err| BenchError::Failed(format!("a submitter panicked: {err}")))??,
            );
        }
        ids.sort_unstable();
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }

    /// Every SUCCEEDED request (operator view: all customers'), all pages.
    pub async fn succeeded(&self) -> Result<Vec<pb::ProvisioningRequest>, BenchError> {
        let mut client = self.client(0);
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_requests(self.as_operator(pb::ListRequestsRequest {
                    page_size: PAGE,
                    page_token: page_token.clone(),
                    state: pb::RequestState::Succeeded.into(),
                    ..Default::default()
                })?)
                .await
                .map_err(rpc_failed("ListRequests"))?
                .into_inner();
            all.extend(page.requests);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }
}
