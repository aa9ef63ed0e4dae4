//! The in-app inbox on both backends: Send stores a notification for its recipient, who lists
//! it (newest first, unread filter, event-type filter, paging, an unread badge), reads it and
//! marks it read (the first `read_at` kept); nobody else sees it; preferences choose the
//! channels unless Send names them.

mod common;

use common::{One, send};
use ironmesh_proto::ironmesh::notification::v1::{self as pb, Channel};
use ironmesh_testkit::{authed, backends};
use tonic::Code;

fn list(
    unread_only: bool,
    event_type: &str,
    size: i32,
    token: &str,
) -> pb::ListNotificationsRequest {
    pb::ListNotificationsRequest {
        page_size: size,
        page_token: token.to_owned(),
        unread_only,
        event_type: event_type.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipient_lists_pages_reads_and_marks_read_newest_first() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        let mut sent = Vec::new();
        for (i, event_type) in ["shop.sale.started", "shop.sale.ended", "shop.sale.started"]
            .iter()
            .enumerate()
        {
            let n = client
                .send(one.op(send(
                    &ada.user_id,
                    event_type,
                    &format!("k{i}"),
                    &[Channel::InApp],
                )))
                .await
                .unwrap()
                .into_inner()
                .notification
                .unwrap();
            assert_eq!(n.recipient_id, ada.user_id);
            assert_eq!(n.channels, [i32::from(Channel::InApp)]);
            assert_eq!(n.data.get("k").map(String::as_str), Some("v"));
            assert!(n.read_at.is_none() && n.created_at.is_some());
            sent.push(n.notification_id);
        }
        macro_rules! own {
            ($m:expr) => {
                authed($m, &ada.access_token)
            };
        }

        let all = client
            .list_notifications(own!(list(false, "", 0, "")))
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<_> = all
            .notifications
            .iter()
            .map(|n| n.notification_id.clone())
            .collect();
        let newest_first: Vec<_> = sent.iter().rev().cloned().collect();
        assert_eq!(ids, newest_first, "{backend:?}: newest first");
        assert_eq!((all.unread_count, all.next_page_token.as_str()), (3, ""));

        // Paging: two, then the last one; the token is bound to the filters it was made with.
        let first = client
            .list_notifications(own!(list(false, "", 2, "")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first.notifications.len(), 2);
        assert!(!first.next_page_token.is_empty());
        let second = client
            .list_notifications(own!(list(false, "", 2, &first.next_page_token)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(second.notifications.len(), 1);
        assert_eq!(second.notifications[0].notification_id, sent[0]);
        assert_eq!(second.next_page_token, "");
        let mixed = client
            .list_notifications(own!(list(true, "", 2, &first.next_page_token)))
            .await
            .unwrap_err();
        assert_eq!(mixed.code(), Code::InvalidArgument, "{mixed:?}");
        assert_eq!(ironmesh_testkit::violations(&mixed), ["page_token"]);

        // Reading: Get, then MarkRead twice keeps the first read_at.
        let got = client
            .get_notification(own!(pb::GetNotificationRequest {
                notification_id: sent[1].clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        assert_eq!(got.event_type, "shop.sale.ended");
        let mark = || {
            own!(pb::MarkReadRequest {
                notification_id: sent[1].clone(),
            })
        };
        let read = client
            .mark_read(mark())
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        let again = client
            .mark_read(mark())
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        assert!(read.read_at.is_some());
        assert_eq!(read.read_at, again.read_at, "the first read_at is kept");

        let unread = client
            .list_notifications(own!(list(true, "", 0, "")))
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<_> = unread
            .notifications
            .iter()
            .map(|n| n.notification_id.clone())
            .collect();
        assert_eq!(ids, [sent[2].clone(), sent[0].clone()]);
        assert_eq!(unread.unread_count, 2);
        let ended = client
            .list_notifications(own!(list(false, "shop.sale.ended", 0, "")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ended.notifications.len(), 1);
        assert_eq!(ended.unread_count, 2, "the badge ignores filters");
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_else_sees_or_marks_a_users_notification() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let (ada, bob) = (one.mesh.customer().await, one.mesh.customer().await);
        let mut client = one.client().await;
        let n = client
            .send(one.op(send(
                &ada.user_id,
                "shop.sale.started",
                "",
                &[Channel::InApp],
            )))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        let id = n.notification_id.clone();
        macro_rules! as_bob {
            ($m:expr) => {
                authed($m, &bob.access_token)
            };
        }
        let get = client
            .get_notification(as_bob!(pb::GetNotificationRequest {
                notification_id: id.clone(),
            }))
            .await
            .unwrap_err();
        assert_eq!(get.code(), Code::NotFound, "{backend:?}: {get:?}");
        let mark = client
            .mark_read(as_bob!(pb::MarkReadRequest {
                notification_id: id.clone(),
            }))
            .await
            .unwrap_err();
        assert_eq!(mark.code(), Code::NotFound, "{mark:?}");
        let bobs = client
            .list_notifications(as_bob!(list(false, "", 0, "")))
            .await
            .unwrap();
        assert!(bobs.get_ref().notifications.is_empty() && bobs.get_ref().unread_count == 0);
        // Bob's attempt marked nothing; an operator sees it.
        let seen = client
            .get_notification(one.op(pb::GetNotificationRequest {
                notification_id: id,
            }))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        assert!(seen.read_at.is_none());
        // Customers cannot Send.
        let denied = client
            .send(authed(
                send(&bob.user_id, "shop.sale.started", "", &[]),
                &ada.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_every_field_and_stores_nothing() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        let mut bad = send(&ada.user_id, "Not An Event", "", &[Channel::Unspecified]);
        bad.recipient_id = "nobody".into();
        bad.subject = String::new();
        bad.body = "x".repeat(10_001);
        bad.idempotency_key = "k".repeat(129);
        bad.data.insert(String::new(), "empty key".into());
        let status = client.send(one.op(bad)).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{backend:?}: {status:?}"
        );
        let mut fields = ironmesh_testkit::violations(&status);
        fields.sort();
        fields.dedup();
        assert_eq!(
            fields,
            [
                "body",
                "channels[0]",
                "data",
                "event_type",
                "idempotency_key",
                "recipient_id",
                "subject"
            ],
            "{status:?}"
        );
        for event_type in ["orders.*", "*", "a..b", &"a".repeat(129)] {
            let status = client
                .send(one.op(send(&ada.user_id, event_type, "", &[])))
                .await
                .unwrap_err();
            assert_eq!(
                ironmesh_testkit::violations(&status),
                ["event_type"],
                "{event_type}"
            );
        }
        let unknown = client
            .send(one.op(send(
                &uuid::Uuid::now_v7().to_string(),
                "shop.sale.started",
                "",
                &[],
            )))
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
        assert!(
            !unknown.message().contains("127.0.0.1"),
            "no internal address: {unknown:?}"
        );
        let none = client
            .list_notifications(authed(list(false, "", 0, ""), &ada.access_token))
            .await
            .unwrap()
            .into_inner();
        assert!(none.notifications.is_empty(), "nothing stored");
        let bad_id = client
            .get_notification(authed(
                pb::GetNotificationRequest {
                    notification_id: "../x".into(),
                },
                &ada.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(ironmesh_testkit::violations(&bad_id), ["notification_id"]);
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_choose_the_channels_unless_send_names_them() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        let channels = |n: &pb::Notification| n.channels.clone();
        let sent = |r: tonic::Response<pb::SendResponse>| r.into_inner().notification.unwrap();

        // Never set: in-app and email.
        let n = sent(
            client
                .send(one.op(send(&ada.user_id, "shop.sale.started", "", &[])))
                .await
                .unwrap(),
        );
        assert_eq!(
            channels(&n),
            [i32::from(Channel::InApp), i32::from(Channel::Email)]
        );

        client
            .set_preferences(authed(
                pb::SetPreferencesRequest {
                    preferences: Some(pb::NotificationPreferences {
                        default_channels: vec![Channel::InApp.into()],
                        event_types: vec![pb::EventTypePreference {
                            event_type: "shop.*".into(),
                            channels: vec![],
                        }],
                        updated_at: None,
                    }),
                },
                &ada.access_token,
            ))
            .await
            .unwrap();
        // Muted by the most specific match; still stored for the inbox, nothing delivered.
        let muted = sent(
            client
                .send(one.op(send(&ada.user_id, "shop.sale.ended", "", &[])))
                .await
                .unwrap(),
        );
        assert!(channels(&muted).is_empty(), "{backend:?}: {muted:?}");
        let other = sent(
            client
                .send(one.op(send(&ada.user_id, "ops.maintenance.planned", "", &[])))
                .await
                .unwrap(),
        );
        assert_eq!(channels(&other), [i32::from(Channel::InApp)]);
        let forced = sent(
            client
                .send(one.op(send(
                    &ada.user_id,
                    "shop.sale.ended",
                    "",
                    &[Channel::InApp, Channel::Email],
                )))
                .await
                .unwrap(),
        );
        assert_eq!(
            channels(&forced),
            [i32::from(Channel::InApp), i32::from(Channel::Email)]
        );
        let deliveries = client
            .list_deliveries(one.op(pb::ListDeliveriesRequest {
                notification_id: muted.notification_id.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(
            deliveries.deliveries.is_empty(),
            "a muted notification is not delivered"
        );
        let inbox = client
            .list_notifications(authed(list(false, "", 0, ""), &ada.access_token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            inbox.notifications.len(),
            4,
            "every notification is in the inbox"
        );
        one.stop().await;
    }
}
