//! What provisioning's behaviour tests share: a mesh of auth + provisioning (or, on PostgreSQL,
//! a second provisioning replica on the same database), a quick reaper, an operator, and a
//! worker's credential (a service identity, as `ironmesh worker` holds).
#![allow(dead_code)]

pub mod creds;
pub mod dump;

use std::time::Duration;

use ironmesh_proto::ironmesh::provisioning::v1::{
    self as pb, provisioning_service_client::ProvisioningServiceClient,
};
use ironmesh_provisioning::settings::ProvisioningConfig;
use ironmesh_runtime::{Config, ServiceKind};
use ironmesh_testkit::{Session, TestDatabase, TestMesh, authed, test_config};
use tonic::transport::Channel;

pub type Client = ProvisioningServiceClient<Channel>;

pub const SERVICES: &[ServiceKind] = &[ServiceKind::Auth, ServiceKind::Provisioning];
pub const LIMIT: Duration = Duration::from_secs(30);

/// Test settings: the reaper every 50 ms, claims polling every 50 ms, a millisecond backoff.
pub fn settings(config: &mut Config, adjust: impl FnOnce(&mut ProvisioningConfig)) {
    config
        .update_section::<ProvisioningConfig>(|s| {
            s.reap_interval_ms = 50;
            s.claim_poll_interval_ms = 50;
            s.backoff_base_ms = 1;
            s.backoff_cap_secs = 1;
            adjust(s);
        })
        .expect("valid provisioning settings");
}

/// A worker's token: a service identity (`service:worker-test`) minted with the mesh's secret.
pub fn worker_token(config: &Config) -> String {
    let secret = ironmesh_runtime::auth::service_secret(config).expect("the test config has one");
    ironmesh_interceptors::auth::service::ServiceTokens::new(&secret, "worker-test", "provisioning")
        .token()
        .to_string()
}

/// One mesh, its operator and a worker token.
pub struct One {
    pub mesh: TestMesh,
    pub admin: Session,
    pub worker: String,
}

impl One {
    pub async fn start(
        backend: ironmesh_testkit::Backend,
        adjust: impl FnOnce(&mut ProvisioningConfig),
    ) -> Self {
        let mesh = TestMesh::start_with(backend, SERVICES, false, |c| settings(c, adjust)).await;
        let admin = mesh.admin().await;
        let worker = worker_token(mesh.config());
        Self {
            mesh,
            admin,
            worker,
        }
    }

    pub async fn client(&self) -> Client {
        self.mesh.provisioning().await
    }

    pub fn op<T>(&self, message: T) -> tonic::Request<T> {
        authed(message, &self.admin.access_token)
    }

    pub fn work<T>(&self, message: T) -> tonic::Request<T> {
        authed(message, &self.worker)
    }

    pub async fn stop(self) {
        assert!(self.mesh.shutdown().await.is_empty(), "clean shutdown");
    }
}

/// Two provisioning replicas (the first beside auth) on one PostgreSQL database.
pub struct Two {
    pub first: TestMesh,
    pub second: TestMesh,
    pub admin: Session,
    pub worker: String,
    database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Two {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ProvisioningConfig)) -> Self {
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), Some(database.url()));
        settings(&mut config, adjust);
        let first = TestMesh::start_on(config, SERVICES, false).await;
        let mut config = first.config().clone();
        let own = config.service_mut(ServiceKind::Provisioning);
        own.grpc_port = 0;
        own.admin_port = 0;
        own.endpoint = None;
        let second = TestMesh::start_on(config, &[ServiceKind::Provisioning], false).await;
        let admin = first.admin().await;
        let worker = worker_token(first.config());
        Self {
            first,
            second,
            admin,
            worker,
            database,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        assert!(self.second.shutdown().await.is_empty(), "clean shutdown");
        assert!(self.first.shutdown().await.is_empty(), "clean shutdown");
        self.database.drop_database().await;
    }
}

pub fn submit(plan: &str, tier: pb::PriorityTier, key: &str) -> pb::SubmitRequestRequest {
    pb::SubmitRequestRequest {
        customer_id: String::new(),
        plan: plan.to_owned(),
        priority_tier: tier.into(),
        idempotency_key: key.to_owned(),
    }
}

pub fn claim(worker: &str, wait: Duration) -> pb::ClaimJobRequest {
    pb::ClaimJobRequest {
        worker_id: worker.to_owned(),
        lease_duration: None,
        wait_timeout: Some(prost_types::Duration {
            seconds: i64::try_from(wait.as_secs()).unwrap(),
            nanos: i32::try_from(wait.subsec_nanos()).unwrap(),
        }),
    }
}

pub fn seconds(s: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: s,
        nanos: 0,
    })
}

/// The ErrorInfo reason of `status`, if any.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}
