//! The SSRF guard through the API, on both backends. At registration, with the production
//! guard, CreateWebhookEndpoint refuses every forbidden address in every notation, names that
//! resolve to loopback, `http://` and credentials — INVALID_ARGUMENT naming `endpoint.url`. At
//! send, endpoints registered while private targets were allowed are refused once a mesh on the
//! same storage runs with the guard on (the check made where the connection is made, so a name
//! that now resolves somewhere forbidden gains nothing); and a redirect to the cloud metadata
//! address is never followed.
mod common;
#[path = "common/receiver.rs"]
mod receiver;

use common::{LIMIT, One, SERVICES, send, settings};
use ironmesh_proto::ironmesh::notification::v1::{self as pb, DeliveryState};
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{
    Backend, Component, TestDatabase, TestMesh, authed, backends, eventually, metrics, test_config,
    violations,
};
use receiver::{Receiver, Reply, create_endpoint, deliveries, endpoints, is, state};
use tonic::Code;

const WEBHOOK: &[pb::Channel] = &[pb::Channel::Webhook];

const FORBIDDEN: &[&str] = &[
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "224.0.0.1",
    "0.0.0.0",
    "[::1]",
    "[::]",
    "[fc00::1]",
    "[fe80::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    // A name that resolves to loopback.
    "localhost",
];

/// The production guard (private targets and http both off) refuses each forbidden URL with a
/// violation on `endpoint.url`, stores nothing, and still accepts a public https address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_forbidden_targets_in_every_notation() {
    for backend in backends() {
        let one = One::start(backend, |s| {
            s.allow_private_webhook_targets = false;
            s.allow_insecure_webhooks = false;
        })
        .await;
        let user = one.mesh.customer().await;
        let token = user.access_token.as_str();
        let mut client = one.client().await;
        let mut refused: Vec<String> = FORBIDDEN
            .iter()
            .map(|host| format!("https://{host}:8443/hook"))
            .collect();
        refused.push("http://93.184.216.34/hook".to_owned());
        refused.push("https://user:pw@93.184.216.34/hook".to_owned());
        refused.push("https://user@93.184.216.34/hook".to_owned());
        for url in &refused {
            let request = pb::CreateWebhookEndpointRequest {
                endpoint: Some(pb::WebhookEndpoint {
                    url: url.clone(),
                    ..Default::default()
                }),
            };
            // Not `expect_err`: an accepted endpoint's response holds its secret.
            let Err(err) = client.create_webhook_endpoint(authed(request, token)).await else {
                panic!("{backend:?}: {url} was accepted");
            };
            assert_eq!(
                err.code(),
                Code::InvalidArgument,
                "{backend:?} {url}: {err:?}"
            );
            assert_eq!(violations(&err), ["endpoint.url"], "{backend:?} {url}");
        }
        assert!(
            endpoints(&mut client, token).await.is_empty(),
            "nothing stored"
        );
        // The control: a public address passes (no request is made at registration).
        let (public, _) =
            create_endpoint(&mut client, token, "https://93.184.216.34/hook", &[]).await;
        assert_eq!(public.url, "https://93.184.216.34/hook");
        one.stop().await;
    }
}

/// The process's webhook attempts counted `refused` and `failed`.
fn attempts(text: &str) -> (f64, f64) {
    let count = |outcome| {
        let labels = [("channel", "webhook"), ("outcome", outcome)];
        metrics::sample(text, "ironmesh_notification_attempts_total", &labels).unwrap_or(0.0)
    };
    (count("refused"), count("failed"))
}

/// Storage that outlives a mesh: a SQLite directory, or a PostgreSQL database kept here.
struct Storage {
    dir: tempfile::TempDir,
    database: Option<TestDatabase>,
}

impl Storage {
    async fn new(backend: Backend) -> Self {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let dir = tempfile::tempdir().unwrap();
        Self { dir, database }
    }
}

/// Registered while private targets were allowed, refused at send once they are not: a literal
/// loopback address and a name (`localhost`) that resolves to it — the receiver gets nothing
/// and each delivery's last_error names the refusal. Before that, with private targets still
/// allowed, a receiver's 301 to http://169.254.169.254/ is recorded and never followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_time_checks_refuse_what_registration_let_through() {
    for backend in backends() {
        let storage = Storage::new(backend).await;
        let mut config = test_config(
            storage.dir.path(),
            storage.database.as_ref().map(|d| d.url()),
        );
        settings(&mut config, |s| s.retry_schedule_ms = vec![0, 100]);
        let (email, endpoint_ids, mut rx) = {
            let mesh = TestMesh::start_on(config.clone(), SERVICES, false).await;
            let admin = mesh.admin().await;
            let user = mesh.customer().await;
            let token = user.access_token.as_str();
            let mut client = mesh.notification().await;
            let rx = Receiver::start(|_, path| match path {
                "/metadata" => Reply::Status(
                    301,
                    vec![(
                        "location",
                        "http://169.254.169.254/latest/meta-data/".to_owned(),
                    )],
                ),
                _ => receiver::status(200),
            })
            .await;
            let port = rx.port();
            let literal = format!("http://127.0.0.1:{port}/literal");
            let name = format!("http://localhost:{port}/name");
            let metadata = rx.url("/metadata");
            let (a, _) = create_endpoint(&mut client, token, &literal, &["rebind.*"]).await;
            let (b, _) = create_endpoint(&mut client, token, &name, &["rebind.*"]).await;
            let (m, _) = create_endpoint(&mut client, token, &metadata, &["redirect.*"]).await;

            let sent = client
                .send(authed(
                    send(&user.user_id, "redirect.to.metadata", "", WEBHOOK),
                    &admin.access_token,
                ))
                .await
                .unwrap()
                .into_inner()
                .notification
                .unwrap();
            let id = sent.notification_id.as_str();
            let d = receiver::await_delivery(
                &mut client,
                token,
                id,
                &m.endpoint_id,
                "failed",
                is(DeliveryState::Failed),
            )
            .await;
            assert_eq!(
                (d.attempts, d.last_status_code),
                (2, 301),
                "{backend:?}: {d:?}"
            );
            assert_eq!(d.last_error, "redirect not followed (301)");
            let mut rx = rx;
            let got = rx.take(2).await;
            assert!(got.iter().all(|r| r.path == "/metadata"));
            rx.assert_idle("only the registered URL was requested");
            assert!(mesh.shutdown().await.is_empty(), "clean shutdown");
            (user.email, [a.endpoint_id, b.endpoint_id], rx)
        };

        // The same storage, keys and users; now with the guard on for private targets.
        let mut strict = config;
        settings(&mut strict, |s| {
            s.retry_schedule_ms = vec![0, 100];
            s.allow_private_webhook_targets = false;
        });
        let mesh = TestMesh::start_on(strict, SERVICES, false).await;
        let admin = mesh.log_in("root@example.com").await;
        let user = mesh.log_in(&email).await;
        let token = user.access_token.as_str();
        let mut client = mesh.notification().await;
        let metrics_at = mesh.admin_addr(Component::Service(ServiceKind::Notification));
        let before = attempts(&metrics::scrape(metrics_at).await);
        let sent = client
            .send(authed(
                send(&user.user_id, "rebind.host.moved", "", WEBHOOK),
                &admin.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        let filter = pb::ListDeliveriesRequest {
            notification_id: sent.notification_id.clone(),
            ..Default::default()
        };
        let rows = eventually("both deliveries FAILED", LIMIT, || {
            let (mut client, filter) = (client.clone(), filter.clone());
            async move {
                let rows = deliveries(&mut client, token, filter).await;
                let failed = rows
                    .iter()
                    .filter(|d| state(d) == DeliveryState::Failed)
                    .count();
                (rows.len() == 2 && failed == 2).then_some(rows)
            }
        })
        .await;
        for d in &rows {
            assert!(endpoint_ids.contains(&d.endpoint_id));
            assert_eq!(d.last_status_code, 0, "no answer was accepted");
            assert_eq!(
                d.last_error, "target address refused: loopback",
                "{backend:?}: {d:?}"
            );
        }
        rx.assert_idle("a refused target receives nothing");
        // Counted as refused (not attempted), as metrics.rs documents, never as failed.
        let after = attempts(&metrics::scrape(metrics_at).await);
        let made: i32 = rows.iter().map(|d| d.attempts).sum();
        assert_eq!(
            after.0 - before.0,
            f64::from(made),
            "{backend:?}: refused attempts"
        );
        assert_eq!(
            after.1, before.1,
            "{backend:?}: no attempt counted as failed"
        );
        assert!(mesh.shutdown().await.is_empty(), "clean shutdown");
        if let Some(database) = storage.database {
            database.drop_database().await;
        }
    }
}
