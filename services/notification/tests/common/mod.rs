//! What notification's behaviour tests share: a mesh of auth + notification (or, on PostgreSQL,
//! a second notification replica on the same database), the settings tests run with (a
//! compressed retry schedule, loopback receivers allowed), an administrator, Send, and the
//! Python interpreter that has the independent verifiers (`standardwebhooks`, `aiosmtpd`).
#![allow(dead_code)]

use std::time::Duration;

use ironmesh_notification::settings::NotificationConfig;
use ironmesh_proto::ironmesh::notification::v1::{
    self as pb, notification_service_client::NotificationServiceClient,
};
use ironmesh_runtime::{Config, ServiceKind};
use ironmesh_testkit::{Backend, Session, TestDatabase, TestMesh, authed, test_config};
use tonic::transport::Channel;

pub type Client = NotificationServiceClient<Channel>;

pub const SERVICES: &[ServiceKind] = &[ServiceKind::Auth, ServiceKind::Notification];
/// The most a test waits for an effect that happens after a call returns.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Test settings: loopback `http://` receivers allowed (the SSRF guard's test switches), a
/// retry schedule of milliseconds, short timeouts, a quick poll. `adjust` changes the rest.
pub fn settings(config: &mut Config, adjust: impl FnOnce(&mut NotificationConfig)) {
    config
        .update_section::<NotificationConfig>(|s| {
            s.allow_insecure_webhooks = true;
            s.allow_private_webhook_targets = true;
            s.retry_schedule_ms = vec![0, 100, 200, 400];
            s.connect_timeout_ms = 1_000;
            s.attempt_timeout_ms = 2_000;
            s.poll_interval_ms = 100;
            s.breaker_cool_down_ms = 1_000;
            adjust(s);
        })
        .expect("valid notification settings");
}

/// One mesh (auth + notification, `extra` services too) and its administrator.
pub struct One {
    pub mesh: TestMesh,
    pub admin: Session,
}

impl One {
    pub async fn start(backend: Backend, adjust: impl FnOnce(&mut NotificationConfig)) -> Self {
        Self::start_with(backend, &[], adjust).await
    }

    pub async fn start_with(
        backend: Backend,
        extra: &[ServiceKind],
        adjust: impl FnOnce(&mut NotificationConfig),
    ) -> Self {
        let services: Vec<ServiceKind> = SERVICES.iter().chain(extra).copied().collect();
        let mesh = TestMesh::start_with(backend, &services, false, |c| settings(c, adjust)).await;
        let admin = mesh.admin().await;
        Self { mesh, admin }
    }

    pub async fn client(&self) -> Client {
        self.mesh.notification().await
    }

    pub fn op<T>(&self, message: T) -> tonic::Request<T> {
        authed(message, &self.admin.access_token)
    }

    pub async fn stop(self) {
        assert!(self.mesh.shutdown().await.is_empty(), "clean shutdown");
    }
}

/// Two notification replicas (the first beside auth) on one PostgreSQL database.
pub struct Two {
    pub first: TestMesh,
    pub second: TestMesh,
    pub admin: Session,
    database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Two {
    pub async fn start(adjust: impl Fn(&mut NotificationConfig)) -> Self {
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), Some(database.url()));
        settings(&mut config, &adjust);
        let first = TestMesh::start_on(config, SERVICES, false).await;
        let mut config = first.config().clone();
        let own = config.service_mut(ServiceKind::Notification);
        own.grpc_port = 0;
        own.admin_port = 0;
        own.endpoint = None;
        let second = TestMesh::start_on(config, &[ServiceKind::Notification], false).await;
        let admin = first.admin().await;
        Self {
            first,
            second,
            admin,
            database,
            _dir: dir,
        }
    }

    pub fn op<T>(&self, message: T) -> tonic::Request<T> {
        authed(message, &self.admin.access_token)
    }

    pub async fn stop(self) {
        assert!(self.second.shutdown().await.is_empty(), "clean shutdown");
        assert!(self.first.shutdown().await.is_empty(), "clean shutdown");
        self.database.drop_database().await;
    }
}

/// A Send request to `to` with the channels given (empty = preferences).
pub fn send(to: &str, event_type: &str, key: &str, channels: &[pb::Channel]) -> pb::SendRequest {
    pb::SendRequest {
        recipient_id: to.to_owned(),
        event_type: event_type.to_owned(),
        subject: format!("About {event_type}"),
        body: "Something happened.".to_owned(),
        data: [("k".to_owned(), "v".to_owned())].into(),
        channels: channels.iter().map(|c| (*c).into()).collect(),
        idempotency_key: key.to_owned(),
    }
}

/// The Python that has `module` (`PYTHON`, else `python3`), or `None` with a note — never in
/// CI, which installs the verifiers (`.ci/run`).
pub fn python_with(module: &str) -> Option<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let found = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if found {
        return Some(python);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "CI must have the {module} PyPI package"
    );
    eprintln!("skipped: python3 with {module} is not available");
    None
}
