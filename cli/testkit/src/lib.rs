//! Test harness: real services, in-process, on ephemeral loopback ports.
//!
//! # Layout
//! - [`Backend`] / [`backends`]: which storage backends a correctness test must run on. SQLite
//!   always; PostgreSQL when `TEST_DATABASE_URL` is set, and **required** when `CI=true` (a
//!   missing URL there panics instead of skipping).
//! - [`TestDatabase`]: a fresh PostgreSQL database per test, dropped on [`TestMesh::shutdown`].
//! - [`Session`] / [`authed`]: sign up and log in through auth, and attach the access token.
//! - [`otlp`]: a real OTLP/gRPC trace receiver for tests that follow traces across processes.
//! - [`Rest`]: JSON over HTTP to the mesh's gateway.
//! - [`metrics`]: scrape `/metrics`, read one series, check the format with promtool.
//! - [`TestMesh`]: starts any set of services (and optionally the gateway) with
//!   [`ironmesh_launcher::mesh`], everything on `127.0.0.1:0`, and hands back typed clients.
#![forbid(unsafe_code)]

/// Helpers that live below the services (`ironmesh-test-support`), re-exported so mesh tests
/// need one import.
pub use ironmesh_test_support::{
    Backend, DATABASE_URL_ENV, REDIS_URL_ENV, TestDatabase, backends, otlp, redis_url,
};

pub mod metrics;
mod rest;

pub use rest::Rest;

use std::net::SocketAddr;
use std::time::Duration;

pub use ironmesh_launcher::mesh::Component;
use ironmesh_launcher::mesh::{self, ComponentError, RunningMesh};
use ironmesh_proto::ironmesh;
use ironmesh_runtime::{Config, ServiceKind};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

/// How long [`TestMesh::start`] waits for every component to report healthy.
const READY_LIMIT: Duration = Duration::from_secs(20);

/// The fields named by the `google.rpc.BadRequest` field violations of `status` (empty if none).
pub fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|br| br.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// `(type, subject)` of each `google.rpc.PreconditionFailure` violation of `status` (empty if
/// none).
pub fn preconditions(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_details_precondition_failure()
        .map(|f| {
            f.violations
                .into_iter()
                .map(|v| (v.r#type, v.subject))
                .collect()
        })
        .unwrap_or_default()
}

/// The most any one RPC on a testkit channel may take.
pub const CALL_LIMIT: Duration = Duration::from_secs(30);

/// Services (and maybe the gateway) running in this test process.
pub struct TestMesh {
    running: RunningMesh,
    config: Config,
    database: Option<TestDatabase>,
    _data_dir: Option<tempfile::TempDir>,
}

impl TestMesh {
    /// Starts `services` on `backend`, every listener on 127.0.0.1:0, and waits until healthy.
    pub async fn start(backend: Backend, services: &[ServiceKind]) -> Self {
        Self::start_with(backend, services, false, |_| {}).await
    }

    /// Like [`Self::start`], optionally with the gateway, after `adjust` has changed the config
    /// (event subscribers whose service is not in `services` are dropped first).
    pub async fn start_with(
        backend: Backend,
        services: &[ServiceKind],
        gateway: bool,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let mut config = test_config(data_dir.path(), database.as_ref().map(|d| d.url()));
        // Subscribers whose service this mesh does not run are dropped, so no relay retries a
        // service that is not there (`adjust` may add them back).
        config
            .update_section::<ironmesh_outbox::EventsConfig>(|events| {
                events
                    .subscribers
                    .retain(|s| s.service_kind().is_none_or(|kind| services.contains(&kind)))
            })
            .expect("a valid events section");
        adjust(&mut config);
        let mut mesh = Self::start_on(config, services, gateway).await;
        mesh.database = database;
        mesh._data_dir = Some(data_dir);
        mesh
    }

    /// Starts `services` with exactly `config` — storage, keys and secrets the caller keeps (a
    /// [`test_config`] over its own directory and [`TestDatabase`]) — so a test can stop a mesh
    /// and start another on the same stores. [`Self::shutdown`] leaves that storage alone.
    pub async fn start_on(config: Config, services: &[ServiceKind], gateway: bool) -> Self {
        let bound = mesh::bind(config, services, gateway)
            .await
            .expect("bind test listeners");
        let config = bound.config().clone();
        let running = bound
            .start_healthy(READY_LIMIT, std::future::pending())
            .await
            .unwrap_or_else(|err| panic!("test mesh did not start: {err}"));
        Self {
            running,
            config,
            database: None,
            _data_dir: None,
        }
    }

    /// The PostgreSQL database of this mesh, if it runs on PostgreSQL.
    pub fn database(&self) -> Option<&TestDatabase> {
        self.database.as_ref()
    }

    /// The config the components run with (actual ports filled in).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// gRPC address of `kind`.
    pub fn grpc_addr(&self, kind: ServiceKind) -> SocketAddr {
        self.running
            .address(Component::Service(kind))
            .unwrap_or_else(|| panic!("{kind} is not running in this mesh"))
            .main
    }

    /// Admin HTTP address of `component`.
    pub fn admin_addr(&self, component: Component) -> SocketAddr {
        self.running
            .address(component)
            .unwrap_or_else(|| panic!("{component} is not running in this mesh"))
            .admin
    }

    /// REST address of the gateway.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.running
            .address(Component::Gateway)
            .expect("the gateway is not running in this mesh")
            .main
    }

    /// A connected channel to `kind`. Every call on it is bounded by [`CALL_LIMIT`] (until the
    /// response head; streams' items are bounded by the tests that read them), so a hung server
    /// fails a test instead of stalling the suite.
    pub async fn channel(&self, kind: ServiceKind) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.grpc_addr(kind)))
            .expect("valid endpoint")
            .connect_timeout(CALL_LIMIT)
            .timeout(CALL_LIMIT)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to {kind}: {e}"))
    }

    pub async fn health(&self, kind: ServiceKind) -> HealthClient<Channel> {
        HealthClient::new(self.channel(kind).await)
    }

    pub async fn auth(
        &self,
    ) -> ironmesh::auth::v1::auth_service_client::AuthServiceClient<Channel> {
        ironmesh::auth::v1::auth_service_client::AuthServiceClient::new(
            self.channel(ServiceKind::Auth).await,
        )
    }

    pub async fn orders(
        &self,
    ) -> ironmesh::orders::v1::orders_service_client::OrdersServiceClient<Channel> {
        ironmesh::orders::v1::orders_service_client::OrdersServiceClient::new(
            self.channel(ServiceKind::Orders).await,
        )
    }

    pub async fn inventory(
        &self,
    ) -> ironmesh::inventory::v1::inventory_service_client::InventoryServiceClient<Channel> {
        ironmesh::inventory::v1::inventory_service_client::InventoryServiceClient::new(
            self.channel(ServiceKind::Inventory).await,
        )
    }

    pub async fn provisioning(
        &self,
    ) -> ironmesh::provisioning::v1::provisioning_service_client::ProvisioningServiceClient<Channel>
    {
        ironmesh::provisioning::v1::provisioning_service_client::ProvisioningServiceClient::new(
            self.channel(ServiceKind::Provisioning).await,
        )
    }

    pub async fn notification(
        &self,
    ) -> ironmesh::notification::v1::notification_service_client::NotificationServiceClient<Channel>
    {
        ironmesh::notification::v1::notification_service_client::NotificationServiceClient::new(
            self.channel(ServiceKind::Notification).await,
        )
    }

    pub async fn audit(
        &self,
    ) -> ironmesh::audit::v1::audit_service_client::AuditServiceClient<Channel> {
        ironmesh::audit::v1::audit_service_client::AuditServiceClient::new(
            self.channel(ServiceKind::Audit).await,
        )
    }

    /// Registers `email` (with [`PASSWORD`]) and logs in. Needs auth in the mesh.
    pub async fn sign_up(&self, email: &str) -> Session {
        use ironmesh::auth::v1::RegisterRequest;
        let mut auth = self.auth().await;
        let user = auth
            .register(RegisterRequest {
                email: email.to_owned(),
                password: PASSWORD.to_owned(),
                display_name: "Test User".to_owned(),
            })
            .await
            .unwrap_or_else(|s| panic!("register {email}: {s:?}"))
            .into_inner()
            .user
            .expect("a user");
        self.log_in(&user.email).await
    }

    /// Logs `email` in with [`PASSWORD`].
    pub async fn log_in(&self, email: &str) -> Session {
        use ironmesh::auth::v1::LoginRequest;
        let login = self
            .auth()
            .await
            .login(LoginRequest {
                email: email.to_owned(),
                password: PASSWORD.to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("login {email}: {s:?}"))
            .into_inner();
        let tokens = login.tokens.expect("tokens");
        Session {
            user_id: login.user.expect("user").user_id,
            email: email.to_owned(),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            session_id: tokens.session_id,
        }
    }

    /// The administrator `root@example.com` (created out of band, as `ironmesh admin create-user`
    /// does), logged in.
    pub async fn admin(&self) -> Session {
        ironmesh_auth::create_user(
            &self.config,
            "root@example.com",
            PASSWORD,
            "Root",
            &[ironmesh_auth::domain::Role::Admin],
        )
        .await
        .expect("create the administrator");
        self.log_in("root@example.com").await
    }

    /// A new customer with a unique email, logged in.
    pub async fn customer(&self) -> Session {
        self.sign_up(&format!(
            "customer-{}@example.com",
            uuid::Uuid::now_v7().simple()
        ))
        .await
    }

    /// Drains and stops everything, drops the test database; returns components that failed.
    pub async fn shutdown(self) -> Vec<ComponentError> {
        let errors = self.running.stop().await;
        if let Some(database) = self.database {
            database.drop_database().await;
        }
        errors
    }
}

/// A config for tests: every port 0 on 127.0.0.1, SQLite under `data_dir` or PostgreSQL at
/// `database_url`, a short drain.
pub fn test_config(data_dir: &std::path::Path, database_url: Option<&str>) -> Config {
    let mut config = ironmesh_launcher::config::on_loopback_any_port(Config {
        data_dir: data_dir.to_path_buf(),
        database_url: database_url.map(str::to_owned),
        shutdown_grace_secs: 5,
        ..Config::default()
    })
    .expect("the default gateway section is valid");
    // A fresh master key per test (PostgreSQL requires one to be configured).
    use base64::Engine;
    config.set_section(&ironmesh_sealing::SecretsConfig {
        master_key: Some(
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>()),
        ),
        ..Default::default()
    });
    // And a fresh service identity secret (PostgreSQL requires one too).
    config.service_identity.secret =
        Some(base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>()));
    config
}

/// A logged-in user: what Register + Login handed back.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
}

/// Polls `check` every 50 ms until it yields a value, failing the test after `limit` with `what`
/// — for effects that happen after a call returns (a relay's delivery, a background sweep).
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `message` as a request carrying `token` as its bearer credential.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a token is ASCII"),
    );
    request
}

/// A password the policy accepts.
pub const PASSWORD: &str = "correct horse battery staple";
