//! What the email, event, erasure and restart tests share beyond `common`: the real SMTP
//! server (`ironmesh_test_support::smtp`, Python's `aiosmtpd`), settings that keep an email
//! PENDING long enough, reading deliveries as an operator, notification's own tables read
//! directly, and the event sink driven below gRPC (as a relay would, over a pool of its own).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use ironmesh_notification::contacts::Contacts;
use ironmesh_notification::service::Notifications;
use ironmesh_notification::settings::NotificationConfig;
use ironmesh_notification::store::Store;
use ironmesh_outbox::Inbox;
use ironmesh_proto::ironmesh::events::v1 as events;
use ironmesh_proto::ironmesh::notification::v1 as pb;
use ironmesh_runtime::{Config, Database, ServiceKind, with_pool};

#[allow(unused_imports)]
pub use ironmesh_test_support::smtp::{SmtpServer, available, free_port, part};

pub type Client =
    pb::notification_service_client::NotificationServiceClient<tonic::transport::Channel>;

/// Points `s` at a plain SMTP relay on `127.0.0.1:port`.
pub fn relay_on(s: &mut NotificationConfig, port: u16) {
    s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
}

/// A schedule of 20 attempts over about 18 s (the first five within a second): a relay that
/// is down keeps its email PENDING, retried often, for the length of a test.
pub fn patient(s: &mut NotificationConfig) {
    let mut schedule = vec![0, 100, 200, 300, 400];
    schedule.resize(20, 1_000);
    s.retry_schedule_ms = schedule;
}

/// Every delivery an operator sees matching `request` (first page, up to 200).
pub async fn deliveries(
    client: &mut Client,
    token: &str,
    mut request: pb::ListDeliveriesRequest,
) -> Vec<pb::Delivery> {
    request.page_size = 200;
    client
        .list_deliveries(ironmesh_testkit::authed(request, token))
        .await
        .unwrap_or_else(|s| panic!("ListDeliveries: {s:?}"))
        .into_inner()
        .deliveries
}

/// The deliveries of one notification.
pub async fn deliveries_of(
    client: &mut Client,
    token: &str,
    notification_id: &str,
) -> Vec<pb::Delivery> {
    let request = pb::ListDeliveriesRequest {
        notification_id: notification_id.to_owned(),
        ..Default::default()
    };
    deliveries(client, token, request).await
}

/// The caller's inbox (first page, up to 200).
pub async fn inbox(client: &mut Client, token: &str) -> Vec<pb::Notification> {
    let request = pb::ListNotificationsRequest {
        page_size: 200,
        ..Default::default()
    };
    client
        .list_notifications(ironmesh_testkit::authed(request, token))
        .await
        .unwrap_or_else(|s| panic!("ListNotifications: {s:?}"))
        .into_inner()
        .notifications
}

pub fn state(d: &pb::Delivery) -> pb::DeliveryState {
    pb::DeliveryState::try_from(d.state).unwrap()
}

/// Notification's database, opened beside the running service (a pool of its own).
pub async fn database(config: &Config) -> Database {
    let url = config.database_url(ServiceKind::Notification);
    Database::connect(&url, "notification")
        .await
        .expect("open notification's database")
}

/// How many rows of each of notification's per-user tables belong to `user_id`:
/// `[notifications, deliveries, webhook_endpoints, notification_preferences]`.
pub async fn rows_of(db: &Database, user_id: &str) -> [i64; 4] {
    let queries = [
        "SELECT COUNT(*) FROM notifications WHERE recipient_id = $1",
        "SELECT COUNT(*) FROM deliveries WHERE recipient_id = $1",
        "SELECT COUNT(*) FROM webhook_endpoints WHERE owner_id = $1",
        "SELECT COUNT(*) FROM notification_preferences WHERE user_id = $1",
    ];
    let mut out = [0; 4];
    for (slot, sql) in out.iter_mut().zip(queries) {
        let (n,): (i64,) = with_pool!(db, pool => sqlx::query_as(sql)
            .bind(user_id)
            .fetch_one(pool)
            .await
            .unwrap());
        *slot = n;
    }
    out
}

/// Notification's event sink as a replica runs it, over its own pool: what `EventSinkService`
/// does below gRPC.
#[derive(Clone)]
pub struct Sink {
    notifications: Notifications,
    inbox: Arc<Inbox>,
}

impl Sink {
    pub async fn open(config: &Config) -> Self {
        let store = Store::new(database(config).await);
        let channel =
            ironmesh_runtime::clients::channel(config, "notification", ServiceKind::Auth).unwrap();
        let sealing =
            ironmesh_sealing::configured_keyring(config, ServiceKind::Notification).unwrap();
        let notifications = Notifications::new(
            store,
            Contacts::new(channel),
            Arc::new(sealing),
            Default::default(),
            Arc::new(tokio::sync::Notify::new()),
        );
        Self {
            notifications,
            inbox: Arc::new(Inbox::new("notification")),
        }
    }

    /// Delivers `batch` (bounded).
    pub async fn deliver(&self, batch: &[events::Event]) -> events::DeliverResponse {
        let delivered =
            ironmesh_notification::sink::deliver(&self.notifications, &self.inbox, batch);
        tokio::time::timeout(Duration::from_secs(30), delivered)
            .await
            .expect("Deliver answers within 30 s")
    }
}

/// An event as a producer's relay sends it: a fresh UUIDv7 id, `payload` encoded as the
/// protobuf message `proto` (full name).
pub fn event_of(
    event_type: &str,
    proto: &str,
    aggregate_id: &str,
    payload: &impl prost::Message,
) -> events::Event {
    let source = event_type.split('.').next().unwrap_or_default();
    events::Event {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: event_type.to_owned(),
        source: source.to_owned(),
        aggregate_type: event_type.split('.').nth(1).unwrap_or_default().to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        aggregate_version: 1,
        occurred_at: Some(ironmesh_runtime::time::timestamp(chrono::Utc::now())),
        actor: format!("service:{source}"),
        content_type: format!("application/protobuf; proto={proto}"),
        payload: payload.encode_to_vec(),
        ..Default::default()
    }
}
