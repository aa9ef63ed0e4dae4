//! The delivery engine: every replica runs one. It claims due PENDING deliveries with a lease
//! (`store::deliveries`), attempts each — an email through the [`Mailer`], a signed POST
//! through the [`WebhookClient`] (`webhooks`) — and records the result fenced by that lease:
//! DELIVERED, the next attempt by the retry schedule (±10 % jitter, `Retry-After` as a floor),
//! or FAILED when the schedule is spent or the failure is final (410 Gone also disables the
//! endpoint). An SSRF refusal is retried like a failure but counted `refused` and not held
//! against the receiver's circuit.
//!
//! It wakes at once for this process's new deliveries ([`Notify`]) and polls for the rest
//! (retries coming due, other replicas' rows, leases lapsed by a replica that died). At most
//! `max_in_flight` attempts run at once, and each target has its own cap and circuit
//! ([`targets`]): a claim skips targets that are saturated or open, so a hanging receiver
//! never holds the queue.

pub mod targets;
mod webhooks;

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
use crate::store::{Attempted, Store};
use crate::webhook::WebhookClient;
use targets::{Admission, Targets};
pub use webhooks::payload;

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
    /// The SSRF guard refused the target: retried by the schedule like a failure, counted as
    /// `refused` (metrics.rs), and not held against the receiver's circuit.
    Refused,
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

/// What an attempt holds while it runs: its target, a slot of the target and one of the
/// process (both released when the attempt ends).
struct Go {
    target: Arc<targets::Target>,
    channel: &'static str,
    _permit: OwnedSemaphorePermit,
    _slot: OwnedSemaphorePermit,
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
                        let mut surplus = Vec::new();
                        for (delivery, lease) in batch {
                            // A target's slots are taken here, before the attempt starts: a
                            // batch holding more rows of one target than it has free slots
                            // hands the rest back untouched (due as they were, so the oldest
                            // stay first), and the next claim skips the saturated target.
                            let (key, channel) = inner.target_of(&delivery);
                            let target = inner.targets.get(&key, channel);
                            let permit = target.permits.clone().try_acquire_owned();
                            let slot = inner.slots.clone().try_acquire_owned();
                            match (permit, slot) {
                                (Ok(permit), Ok(slot)) => {
                                    let go = Go {
                                        target,
                                        channel,
                                        _permit: permit,
                                        _slot: slot,
                                    };
                                    tasks.spawn(inner.clone().attempt(delivery, lease, go));
                                }
                                _ => surplus.push((delivery, lease)),
                            }
                        }
                        if !surplus.is_empty() {
                            more = false;
                            for (delivery, lease) in surplus {
                                inner.release(&delivery, lease).await;
                            }
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
    async fn claim(&self, limit: usize) -> Result<Vec<(Delivery, i64)>, crate::store::StoreError> {
        let blocked = self.targets.blocked(Instant::now());
        let now = now_ms();
        let lease = now + millis(self.settings.attempt_timeout() + LEASE_MARGIN);
        let batch = self
            .store
            .claim_due(
                now,
                lease,
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(self.settings.per_target_concurrency).unwrap_or(i64::MAX),
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

    /// The target a delivery is attempted against: the SMTP relay, or its endpoint.
    fn target_of(&self, d: &Delivery) -> (String, &'static str) {
        match d.channel {
            Channel::Email => (self.mailer.relay().to_owned(), "email"),
            _ => (d.endpoint_id.clone(), "webhook"),
        }
    }

    /// Hands a claimed row back unattempted: its lease cleared, its due time kept.
    async fn release(&self, d: &Delivery, lease: i64) {
        let due = d.next_attempt_ms.unwrap_or_else(now_ms);
        self.defer(d, lease, due, None).await;
    }

    async fn attempt(self: Arc<Self>, d: Delivery, lease: i64, go: Go) {
        let (target, channel) = (go.target.clone(), go.channel);
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
            Kind::Retry(_) | Kind::Refused => {
                let (retry_after, outcome) = match tried.kind {
                    Kind::Retry(retry_after) => (retry_after, "failed"),
                    _ => (None, "refused"),
                };
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
                        outcome,
                    ),
                    None => (DeliveryState::Failed, None, outcome),
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
}

/// The email's Message-ID: the delivery id, so every retry sends the same one.
pub fn message_id(delivery_id: &str) -> String {
    format!("<{delivery_id}@ironmesh>")
}
