//! Notifications for platform users: an in-app inbox, email over SMTP and Standard Webhooks to
//! customer endpoints, with per-event-type channel preferences — made from platform events
//! (`EventSinkService`, exactly once through the inbox) and from `Send`.
//!
//! # Layout
//! - [`run`]: load the `notification` section and the sealing keyring, open and migrate the
//!   store, serve `NotificationService` and `EventSinkService` with the delivery [`engine`],
//!   the inbox's and the idempotency keys' retention, until shutdown.
//! - [`domain`]: notifications, endpoints, deliveries and the input rules of
//!   notification.proto; the retry schedule (no proto, no SQL).
//! - [`preferences`]: channel preferences per event type (most specific match wins, defaults
//!   in-app and email).
//! - [`catalog`]: which platform events notify whom, saying what — one table of event types,
//!   payload readers and templates.
//! - [`service`]: the operations ([`service::Notifications`]): Send and the fan-out to
//!   channels, the inbox, endpoints (SSRF-checked, secrets sealed), deliveries, redelivery;
//!   [`service::Failure`].
//! - [`sink`]: `EventSinkService` — catalogued events become notifications,
//!   `auth.user.deleted` erases the user here.
//! - [`engine`]: the delivery engine (claims with leases, retries by schedule, a concurrency
//!   cap and a circuit per target: `engine::targets`).
//! - [`email`]: the SMTP sender on lettre (or `.eml` files without a relay).
//! - [`webhook`]: one signed, SSRF-guarded POST attempt.
//! - [`ssrf`]: the SSRF guard (URL rules, forbidden address ranges in every notation).
//! - [`signing`]: Standard Webhooks secrets and signatures, on the standard's reference crate.
//! - [`contacts`]: users' email addresses, asked of auth (`GetUserContact`) at send time.
//! - [`store`]: the schema per backend ([`MIGRATIONS`]) and every query.
//! - `grpc`: the tonic adapter (proto ⇄ domain, errors → status in one place).
//! - [`metrics`], [`settings`] (the `notification` section and [`SECTIONS`]).
//!
//! `service`, `store`, `sink` and `engine` are public so tests can drive what the gRPC layer
//! only lets services call (event delivery).
#![forbid(unsafe_code)]

pub mod catalog;
pub mod contacts;
pub mod domain;
pub mod email;
pub mod engine;
mod grpc;
pub mod metrics;
pub mod preferences;
pub mod service;
pub mod settings;
pub mod signing;
pub mod sink;
pub mod ssrf;
pub mod store;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use ironmesh_proto::ironmesh::events::v1::event_sink_service_server::EventSinkServiceServer;
use ironmesh_proto::ironmesh::notification::v1::notification_service_server::NotificationServiceServer;
use ironmesh_runtime::{
    Config, GrpcService, Listeners, RunError, ServiceKind, clients, limit_sizes,
};

pub use settings::SECTIONS;
pub use store::MIGRATIONS;

use settings::NotificationConfig;

/// Which service this crate is.
pub const KIND: ServiceKind = ServiceKind::Notification;

/// How often inbox ids past retention are purged.
const INBOX_RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Most bytes of a webhook receiver's response body read (then dropped).
const MAX_RESPONSE_BYTES: usize = 4096;

/// Serves notification on `listeners` until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.max_message_bytes;
    let settings = config.section::<NotificationConfig>()?;
    let sealing = Arc::new(
        ironmesh_sealing::configured_keyring(&config, KIND).map_err(|err| match err {
            ironmesh_sealing::KeyringError::Config(err) => RunError::Config(err),
            ironmesh_sealing::KeyringError::MasterKey(err) => RunError::Setup(format!(
                "notification: no master key to seal webhook secrets: {err}"
            )),
        })?,
    );
    let channel = clients::channel(&config, KIND.name(), ServiceKind::Auth)
        .map_err(|err| RunError::Setup(format!("notification: auth client: {err}")))?;
    let contacts = contacts::Contacts::new(channel);
    let mailer = email::Mailer::new(email::MailerConfig {
        smtp_url: settings.smtp_url.clone(),
        from: settings.email_from.clone(),
        timeout: settings.attempt_timeout(),
        files_dir: config.data_dir.join("outbox-mail"),
    })
    .map_err(|err| RunError::Setup(format!("notification: email: {err}")))?;
    let webhooks = webhook::WebhookClient::new(webhook::ClientConfig {
        policy: settings.ssrf_policy(),
        connect_timeout: settings.connect_timeout(),
        timeout: settings.attempt_timeout(),
        max_response_bytes: MAX_RESPONSE_BYTES,
    })
    .map_err(|err| RunError::Setup(format!("notification: webhook client: {err}")))?;
    metrics::register_all();
    ironmesh_runtime::run_service(config, KIND, &MIGRATIONS, listeners, shutdown, move |db| {
        let store = store::Store::new(db.clone());
        let wake = Arc::new(tokio::sync::Notify::new());
        let policy = settings.ssrf_policy();
        let notifications = service::Notifications::new(
            store.clone(),
            contacts.clone(),
            sealing.clone(),
            policy,
            wake.clone(),
        );
        let engine =
            engine::Engine::new(store, contacts, mailer, webhooks, sealing, settings, wake);
        let (inbox_db, keys_db) = (db.clone(), db);
        GrpcService::new(KIND)
            .add_service(limit_sizes!(
                NotificationServiceServer::new(grpc::NotificationApi::new(
                    notifications.clone(),
                    policy
                )),
                limit
            ))
            .add_service(limit_sizes!(
                EventSinkServiceServer::new(sink::EventSinkApi::new(notifications)),
                limit
            ))
            .background("notification delivery engine", move |token| {
                engine.run(token)
            })
            .background("notification inbox retention", move |token| {
                ironmesh_outbox::inbox::run_retention(
                    inbox_db,
                    ironmesh_outbox::inbox::DEFAULT_INBOX_RETENTION,
                    INBOX_RETENTION_EVERY,
                    token,
                )
            })
            .background("notification idempotency key retention", move |token| {
                ironmesh_idempotency::retention_task(keys_db, token)
            })
    })
    .await
}
