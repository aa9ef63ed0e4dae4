//! Email over real SMTP (Python's `aiosmtpd` on loopback; required in CI, skipped with a note
//! elsewhere), on both backends: a Send with the EMAIL channel reaches the user's address at
//! auth as one multipart message whose Message-ID carries the delivery id; with the relay down
//! the delivery stays PENDING and is retried, and once the relay is up it arrives exactly once
//! with that same Message-ID.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use common::{LIMIT, One, send};
use ironmesh_proto::ironmesh::notification::v1::{self as pb, Channel};
use ironmesh_testkit::{backends, eventually};
use smtp::{SmtpServer, deliveries_of, free_port, part, patient, relay_on, state};

const EVENT: &str = "billing.invoice.issued";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_send_arrives_once_at_the_users_address_with_text_and_html() {
    if !smtp::available() {
        return;
    }
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let server = SmtpServer::start(dir.path(), port).await;
        let one = One::start(backend, |s| relay_on(s, port)).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;

        let sent = client
            .send(one.op(send(&ada.user_id, EVENT, "", &[Channel::Email])))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        let delivered = eventually("the email delivery to be DELIVERED", LIMIT, || {
            let (mut client, token) = (client.clone(), one.admin.access_token.clone());
            let id = sent.notification_id.clone();
            async move {
                let all = deliveries_of(&mut client, &token, &id).await;
                (all.len() == 1 && state(&all[0]) == pb::DeliveryState::Delivered)
                    .then(|| all[0].clone())
            }
        })
        .await;
        assert_eq!(delivered.channel, i32::from(Channel::Email), "{backend:?}");
        assert_eq!(delivered.attempts, 1);
        assert!(delivered.last_error.is_empty() && delivered.delivered_at.is_some());
        assert!(delivered.next_attempt_at.is_none());

        let messages = server.messages();
        assert_eq!(messages.len(), 1, "{backend:?}: exactly one message");
        let m = &messages[0];
        let to = m["to"].as_str().unwrap();
        assert!(
            to.contains(&format!("<{}>", ada.email)) && to.contains("Test User"),
            "{backend:?}: To is the address auth holds: {to}"
        );
        assert_eq!(m["subject"], format!("About {EVENT}"));
        let message_id = m["message_id"].as_str().unwrap();
        assert_eq!(message_id, format!("<{}@ironmesh>", delivered.delivery_id));
        assert_eq!(m["content_type"], "multipart/alternative");
        assert!(
            m["from"]
                .as_str()
                .unwrap()
                .contains("<notifications@ironmesh.local>")
        );
        assert_eq!(part(m, "text/plain").trim_end(), "Something happened.");
        let html = part(m, "text/html");
        assert!(html.contains("Something happened."), "{html}");
        assert!(html.contains(&format!("About {EVENT}")), "{html}");
        one.stop().await;
        drop(server);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_relay_down_an_email_is_retried_then_arrives_once_when_it_is_up() {
    if !smtp::available() {
        return;
    }
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let one = One::start(backend, |s| {
            relay_on(s, port);
            patient(s);
        })
        .await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        let sent = client
            .send(one.op(send(&ada.user_id, EVENT, "down-1", &[Channel::Email])))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();

        // Nothing listens: attempts fail, the delivery stays PENDING with the error recorded.
        let pending = eventually("two failed attempts", LIMIT, || {
            let (mut client, token) = (client.clone(), one.admin.access_token.clone());
            let id = sent.notification_id.clone();
            async move {
                let all = deliveries_of(&mut client, &token, &id).await;
                all.into_iter().find(|d| d.attempts >= 2)
            }
        })
        .await;
        assert_eq!(state(&pending), pb::DeliveryState::Pending, "{backend:?}");
        assert!(!pending.last_error.is_empty(), "{pending:?}");
        assert!(
            !pending.last_error.contains("127.0.0.1")
                && !pending.last_error.contains(&port.to_string()),
            "the stored error names no host: {}",
            pending.last_error
        );
        assert!(pending.next_attempt_at.is_some() && pending.delivered_at.is_none());

        // The relay comes up: the next attempt delivers, once, with the same Message-ID.
        let server = SmtpServer::start(dir.path(), port).await;
        let delivered = eventually("the email delivery to be DELIVERED", LIMIT, || {
            let (mut client, token) = (client.clone(), one.admin.access_token.clone());
            let id = sent.notification_id.clone();
            async move {
                let all = deliveries_of(&mut client, &token, &id).await;
                all.into_iter()
                    .find(|d| state(d) == pb::DeliveryState::Delivered)
            }
        })
        .await;
        assert_eq!(delivered.delivery_id, pending.delivery_id, "{backend:?}");
        assert!(delivered.attempts > pending.attempts);
        assert!(delivered.last_error.is_empty());
        let messages = server.messages();
        assert_eq!(messages.len(), 1, "{backend:?}: exactly one message");
        assert_eq!(
            messages[0]["message_id"],
            format!("<{}@ironmesh>", pending.delivery_id)
        );
        let all = deliveries_of(&mut client, &one.admin.access_token, &sent.notification_id).await;
        assert_eq!(all.len(), 1, "one delivery, retried in place");
        one.stop().await;
        drop(server);
    }
}
