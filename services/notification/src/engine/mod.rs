//! The delivery engine: every replica runs one. It claims due PENDING deliveries with a lease
//! (`store::deliveries`), attempts each — an email through the [`Mailer`], a signed POST
//! through the [`WebhookClient`] — and records the result fenced by that lease: DELIVERED, the
//! next attempt by the retry schedule (±10 % jitter, `Retry-After` as a floor), or FAILED when
//! the schedule is spent or the failure is final (410 Gone also disables the endpoint).
//!
//! It wakes at once for this process's new deliveries ([`Notify`]) and polls for the rest
//! (retries coming due, other replicas' rows, leases lapsed by a replica that died). At most
//! `max_in_flight` attempts run at once, and each target has its own cap and circuit
//! ([`targets`]): a claim skips targets that are saturated or open, so a hanging receiver
//! never holds the queue.

pub mod targets;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use ironmesh_sealing::Keyring;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::contacts::Contacts;
use crate::domain::{Delivery, DeliveryState, Notification, next_attempt_delay};
use crate::email::{Email, Mailer};
use crate::metrics;
use crate::preferences::Channel;
use crate::settings::NotificationConfig;
use crate::signing::Secret;
use crate::store::{Attempted, Store};
use crate::webhook::{Outcome, Post, WebhookClient};
use targets::{Admission, Targets};

/// Added to the attempt timeout for a claim's lease: an attempt always ends before it lapses.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How often the queue gauges are refreshed.
const STATS_EVERY: Duration = Duration::from_secs(5);

/// How one attempt went, before the schedule is applied.
struct Tried {
    kind: Kind,
    status: i32,
    error: String,
    /// The receiver answered, other than 5xx or 429 (its circuit's view).
    healthy: bool,
}

enum Kind {
    Delivered,
    Retry(Option<Duration>),
    /// No attempt can ever succeed (the recipient has no address, the endpoint is gone…).
    Final,
    /// 410: fail it and disable the endpoint.
    Gone,
}

impl Tried {
    fn final_(error: &str) -> Self {
        Self {
            kind: Kind::Final,
            status: 0,
            error: error.to_owned(),
            healthy: true,
        }
    }

    fn retry(error: &str, healthy: bool) -> Self {
        Self {
            kind: Kind::Retry(None),
            status: 0,
            error: error.to_owned(),
            healthy,
        }
    }
}

/// The engine of one process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    contacts: Contacts,
    mailer: Mailer,
    webhooks: WebhookClient,
    sealing: Arc<Keyring>,
    settings: NotificationConfig,
    targets: Targets,
    slots: Arc<Semaphore>,
    wake: Arc<Notify>,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Engine {
    pub fn new(
        store: Store,
        contacts: Contacts,
        mailer: Mailer,
        webhooks: WebhookClient,
        sealing: Arc<Keyring>,
        settings: NotificationConfig,
        wake: Arc<Notify>,
    ) -> Self {
        let targets = Targets::new(settings.per_target_concurrency);
        let slots = Arc::new(Semaphore::new(settings.max_in_flight));
        Self {
            inner: Arc::new(Inner {
                store,
                contacts,
                mailer,
                webhooks,
                sealing,
                settings,
                targets,
                slots,
                wake,
            }),
        }
    }

    /// Runs until `token` is cancelled, then lets attempts in flight finish (within their
    /// timeout; a lease left behind lapses and another replica retries the row).
    pub async fn run(self, token: CancellationToken) {
        let inner = self.inner;
        let mut tasks = JoinSet::new();
        let mut stats_at = Instant::now() - STATS_EVERY;
        loop {
            while tasks.try_join_next().is_some() {}
            let mut more = false;
            let free = inner.slots.available_permits();
            if free > 0 {
                match inner.claim(free).await {
                    Ok(batch) => {
                        more = batch.len() == free;
                        for (delivery, lease) in batch {
                            let Ok(slot) = inner.slots.clone().try_acquire_owned() else {
                                break;
                            };
                            tasks.spawn(inner.clone().attempt(delivery, lease, slot));
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "claiming due deliveries failed"),
                }
            }
            if stats_at.elapsed() >= STATS_EVERY {
                stats_at = Instant::now();
                inner.export_stats().await;
            }
            if more {
                continue;
            }
            tokio::select! {
                () = token.cancelled() => break,
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(inner.settings.poll_interval()) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(inner.settings.attempt_timeout(), drain)
            .await
            .is_err()
        {
            tasks.abort_all();
        }
    }
}

impl Inner {
    async fn claim(
        &self,
        limit: usize,
    ) -> Result<Vec<(Delivery, i64)>, crate::store::StoreError> {
        let blocked = self.targets.blocked(Instant::now());
        let now = now_ms();
        let lease = now + millis(self.settings.attempt_timeout() + LEASE_MARGIN);
        let batch = self
            .store
            .claim_due(
                now,
                lease,
                i64::try_from(limit).unwrap_or(i64::MAX),
                &blocked.endpoints,
                blocked.email,
            )
            .await?;
        Ok(batch.into_iter().map(|d| (d, lease)).collect())
    }

    async fn export_stats(&self) {
        self.targets.export(Instant::now());
        match self.store.queue_depth().await {
            Ok((depth, oldest)) => {
                let age = oldest.map_or(0, |ms| (now_ms() - ms) / 1000);
                metrics::queue(depth, age);
            }
            Err(err) => tracing::warn!(error = %err, "reading the delivery queue's depth failed"),
        }
    }

    async fn attempt(self: Arc<Self>, d: Delivery, lease: i64, _slot: OwnedSemaphorePermit) {
        let (key, channel) = match d.channel {
            Channel::Email => (self.mailer.relay().to_owned(), "email"),
            _ => (d.endpoint_id.clone(), "webhook"),
        };
        let target = self.targets.get(&key, channel);
        let Ok(_permit) = target.permits.clone().try_acquire_owned() else {
            // Its slots filled since the claim: back in the queue, due now, no attempt made.
            self.defer(&d, lease, now_ms(), None).await;
            return;
        };
        let cool_down = self.settings.breaker_cool_down();
        let probe = match target.admit(Instant::now(), cool_down) {
            Admission::Go { probe } => probe,
            Admission::Wait(until) => {
                let wait = until.saturating_duration_since(Instant::now());
                self.defer(&d, lease, now_ms() + millis(wait), Some("circuit open"))
                    .await;
                return;
            }
        };
        let tried = match d.channel {
            Channel::Email => self.email(&d).await,
            _ => self.webhook(&d).await,
        };
        target.record(
            probe,
            tried.healthy,
            Instant::now(),
            self.settings.breaker_failures,
            cool_down,
        );
        self.finish(&d, lease, channel, tried).await;
    }

    async fn defer(&self, d: &Delivery, lease: i64, due_ms: i64, why: Option<&str>) {
        if let Err(err) = self.store.defer(&d.id, lease, due_ms, why).await {
            tracing::warn!(error = %err, delivery_id = %d.id, "deferring a delivery failed");
        }
    }

    async fn finish(&self, d: &Delivery, lease: i64, channel: &'static str, tried: Tried) {
        let now = ironmesh_runtime::storage::now();
        let (state, next, outcome) = match tried.kind {
            Kind::Delivered => (DeliveryState::Delivered, None, "delivered"),
            Kind::Gone => (DeliveryState::Failed, None, "gone"),
            Kind::Final => (DeliveryState::Failed, None, "refused"),
            Kind::Retry(retry_after) => {
                let delay = next_attempt_delay(
                    &self.settings.retry_schedule_ms,
                    d.attempts + 1,
                    retry_after,
                    rand::random::<f64>(),
                );
                match delay {
                    Some(delay) => (
                        DeliveryState::Pending,
                        Some(now.timestamp_millis() + millis(delay)),
                        "failed",
                    ),
                    None => (DeliveryState::Failed, None, "failed"),
                }
            }
        };
        metrics::attempt(channel, outcome);
        let result = Attempted {
            state,
            status_code: tried.status,
            error: tried.error,
            next_attempt_ms: next,
            delivered_at: (state == DeliveryState::Delivered).then_some(now),
        };
        match self.store.finish_attempt(&d.id, lease, &result).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(delivery_id = %d.id, "an attempt's result was dropped: the delivery changed meanwhile");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, delivery_id = %d.id, "recording an attempt failed; its lease will lapse and it is retried");
                return;
            }
        }
        if state != DeliveryState::Pending {
            let age = (now - d.created_at).num_milliseconds() as f64 / 1000.0;
            metrics::finished(channel, state == DeliveryState::Delivered, age);
        }
        if matches!(outcome, "gone")
            && let Err(err) = self.store.disable_endpoint(&d.endpoint_id, now).await
        {
            tracing::warn!(error = %err, endpoint_id = %d.endpoint_id, "disabling an endpoint failed");
        }
    }

    async fn notification(&self, d: &Delivery) -> Result<Notification, Tried> {
        match self.store.notification(&d.notification_id).await {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(Tried::final_("the notification no longer exists")),
            Err(err) => {
                tracing::warn!(error = %err, "reading a notification failed");
                Err(Tried::retry("storage unavailable", true))
            }
        }
    }

    async fn email(&self, d: &Delivery) -> Tried {
        let n = match self.notification(d).await {
            Ok(n) => n,
            Err(tried) => return tried,
        };
        let contact = match self.contacts.lookup(&d.recipient_id).await {
            Ok(Some(contact)) => contact,
            Ok(None) => return Tried::final_("the recipient has no account (deleted)"),
            Err(err) => {
                tracing::warn!(error = %err, "looking up an email address failed");
                return Tried::retry("the user directory did not answer", true);
            }
        };
        let email = Email {
            message_id: message_id(&d.id),
            to: contact.email,
            to_name: contact.display_name,
            subject: n.subject,
            text: n.body,
        };
        match self.mailer.send(&email).await {
            Ok(()) => Tried {
                kind: Kind::Delivered,
                status: 0,
                error: String::new(),
                healthy: true,
            },
            Err(failure) if failure.retryable => Tried::retry(&failure.reason, false),
            Err(failure) => Tried::final_(&failure.reason),
        }
    }

    async fn webhook(&self, d: &Delivery) -> Tried {
        let endpoint = match self.store.endpoint(&d.endpoint_id).await {
            Ok(Some(e)) => e,
            Ok(None) => return Tried::final_("the endpoint was deleted"),
            Err(err) => {
                tracing::warn!(error = %err, "reading an endpoint failed");
                return Tried::retry("storage unavailable", true);
            }
        };
        if endpoint.endpoint.disabled_at.is_some() {
            return Tried::final_("the endpoint was disabled (410 Gone)");
        }
        let n = match self.notification(d).await {
            Ok(n) => n,
            Err(tried) => return tried,
        };
        let now = now_ms();
        let mut secrets = Vec::with_capacity(2);
        let mut sealed = vec![endpoint.secrets.current.as_slice()];
        if let Some((previous, until)) = &endpoint.secrets.previous
            && *until > now
        {
            sealed.push(previous.as_slice());
        }
        for bytes in sealed {
            match self.open(bytes) {
                Some(secret) => secrets.push(secret),
                None => return Tried::retry("the signing secret could not be opened", true),
            }
        }
        let body = payload(&n);
        let post = Post {
            url: &endpoint.endpoint.url,
            webhook_id: &d.id,
            body: body.as_bytes(),
            secrets: &secrets,
        };
        let attempt = self.webhooks.post(&post, now / 1000).await;
        let status = attempt.status.map_or(0, i32::from);
        let healthy = matches!(attempt.status, Some(code) if code < 500 && code != 429);
        let kind = match attempt.outcome {
            Outcome::Delivered => Kind::Delivered,
            Outcome::Gone => Kind::Gone,
            Outcome::Failed { retry_after } => Kind::Retry(retry_after),
        };
        Tried {
            kind,
            status,
            error: attempt.error,
            healthy,
        }
    }

    fn open(&self, sealed: &[u8]) -> Option<Secret> {
        let plain = match self.sealing.open(sealed) {
            Ok(plain) => plain,
            Err(err) => {
                tracing::error!(error = %err, "an endpoint's sealed secret does not open with the keyring");
                return None;
            }
        };
        Secret::parse(std::str::from_utf8(&plain).ok()?).ok()
    }
}

/// The email's Message-ID: the delivery id, so every retry sends the same one.
pub fn message_id(delivery_id: &str) -> String {
    format!("<{delivery_id}@ironmesh>")
}

/// The webhook body: Standard Webhooks' recommended envelope (`type`, `timestamp`, `data`)
/// with the notification's id and text beside it. Built from the stored notification, so every
/// attempt sends the same bytes.
pub fn payload(n: &Notification) -> String {
    let body = serde_json::json!({
        "type": n.event_type,
        "timestamp": n.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "notification_id": n.id,
        "recipient_id": n.recipient_id,
        "subject": n.subject,
        "body": n.body,
        "source_event_id": n.source_event_id,
        "data": n.data,
    });
    body.to_string()
}
