//! A restart loses no pending delivery, on both backends: with the SMTP relay down, 20 emails
//! are sent and stay PENDING, their attempts failing; the mesh stops; the relay comes up; a new mesh on the
//! same storage delivers all 20, each exactly once (20 distinct Message-IDs, the delivery ids).

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::collections::BTreeSet;

use common::{LIMIT, SERVICES, send, settings};
use ironmesh_proto::ironmesh::notification::v1::{self as pb, Channel};
use ironmesh_testkit::{
    Backend, TestDatabase, TestMesh, authed, backends, eventually, test_config,
};
use smtp::{SmtpServer, deliveries, free_port, patient, relay_on, state};

const EMAILS: usize = 20;

fn email_deliveries() -> pb::ListDeliveriesRequest {
    pb::ListDeliveriesRequest::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_emails_pending_delivers_each_exactly_once() {
    if !smtp::available() {
        return;
    }
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let port = free_port();
        let mut config = test_config(dir.path(), database.as_ref().map(|d| d.url()));
        settings(&mut config, |s| {
            relay_on(s, port);
            patient(s);
        });

        // First life: the relay is down; 20 emails to two users, each tried and failed.
        let first = TestMesh::start_on(config.clone(), SERVICES, false).await;
        let admin = first.admin().await;
        let (ada, bob) = (first.customer().await, first.customer().await);
        let mut client = first.notification().await;
        for i in 0..EMAILS {
            let to = if i % 2 == 0 { &ada } else { &bob };
            let request = send(
                &to.user_id,
                "billing.invoice.issued",
                &format!("k{i}"),
                &[Channel::Email],
            );
            client
                .send(authed(request, &admin.access_token))
                .await
                .unwrap_or_else(|s| panic!("{backend:?}: Send {i}: {s:?}"));
        }
        // The relay is down: attempts fail (then its circuit opens); all stay PENDING.
        let pending = eventually("20 pending emails, attempts failing", LIMIT, || {
            let (mut client, token) = (client.clone(), admin.access_token.clone());
            async move {
                let all = deliveries(&mut client, &token, email_deliveries()).await;
                let failing = all.iter().filter(|d| d.attempts >= 1).count();
                (all.len() == EMAILS
                    && failing >= 5
                    && all.iter().all(|d| state(d) == pb::DeliveryState::Pending))
                .then_some(all)
            }
        })
        .await;
        let ids: BTreeSet<String> = pending.iter().map(|d| d.delivery_id.clone()).collect();
        assert_eq!(ids.len(), EMAILS);
        assert!(
            first.shutdown().await.is_empty(),
            "{backend:?}: clean shutdown"
        );

        // The relay comes up while nothing runs; the second life finds the queue and drains it.
        let server = SmtpServer::start(dir.path(), port).await;
        assert!(server.messages().is_empty(), "nothing sent while stopped");
        let second = TestMesh::start_on(config.clone(), SERVICES, false).await;
        let admin = second.log_in("root@example.com").await;
        let mut client = second.notification().await;
        let delivered = eventually("all 20 emails delivered", LIMIT, || {
            let (mut client, token) = (client.clone(), admin.access_token.clone());
            async move {
                let all = deliveries(&mut client, &token, email_deliveries()).await;
                all.iter()
                    .all(|d| state(d) == pb::DeliveryState::Delivered)
                    .then_some(all)
            }
        })
        .await;
        let after: BTreeSet<String> = delivered.iter().map(|d| d.delivery_id.clone()).collect();
        assert_eq!(
            after, ids,
            "{backend:?}: the same deliveries, none lost or added"
        );
        let messages = eventually("20 messages at the relay", LIMIT, || {
            let messages = server.messages();
            std::future::ready((messages.len() >= EMAILS).then_some(messages))
        })
        .await;
        assert_eq!(messages.len(), EMAILS, "{backend:?}: each exactly once");
        let message_ids: BTreeSet<String> = messages
            .iter()
            .map(|m| m["message_id"].as_str().unwrap().to_owned())
            .collect();
        let expected: BTreeSet<String> = ids.iter().map(|id| format!("<{id}@ironmesh>")).collect();
        assert_eq!(
            message_ids, expected,
            "{backend:?}: 20 distinct Message-IDs"
        );
        let to_ada = messages
            .iter()
            .filter(|m| m["to"].as_str().unwrap().contains(&ada.email))
            .count();
        assert_eq!(to_ada, EMAILS / 2);

        // Nothing else is pending: a second look after the drain shows the same.
        let again = deliveries(&mut client, &admin.access_token, email_deliveries()).await;
        assert_eq!(again.len(), EMAILS);
        assert!(
            second.shutdown().await.is_empty(),
            "{backend:?}: clean shutdown"
        );
        drop(server);
        if let Some(database) = database {
            database.drop_database().await;
        }
    }
}
