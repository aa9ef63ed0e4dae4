//! The operations of notification, below gRPC: [`Notifications`] creates notifications (from
//! `Send` and from events) and fans them out — the in-app row always, an EMAIL delivery, one
//! WEBHOOK delivery per endpoint of the recipient that wants the event type — in one
//! transaction, then wakes the delivery engine; and it serves the inbox, the endpoints and the
//! deliveries to their owners (operators see all: `endpoints`). Errors are [`Failure`]s, mapped
//! to status in `grpc`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ironmesh_runtime::storage::{new_id, now};
use ironmesh_runtime::validation::Violations;
use ironmesh_sealing::Keyring;
use tokio::sync::Notify;

use crate::contacts::Contacts;
use crate::domain::{Delivery, DeliveryState, MAX_ENDPOINTS, NewNotification, Notification};
use crate::preferences::{Channel, Preferences};
use crate::ssrf;
use crate::store::{Created, Guard, Store, StoreError};

/// What an operation fails with; `grpc::status` is the one mapping to gRPC status.
#[derive(Debug)]
pub enum Failure {
    Invalid(Violations),
    /// The thing (named) does not exist — or is not the caller's to see.
    NotFound(&'static str),
    /// A state the operation cannot apply to: (type, subject, description).
    Precondition(&'static str, String, String),
    /// A dependency (named) did not answer; retry.
    Unavailable(&'static str),
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Self::Internal(Box::new(err))
    }
}

impl From<Violations> for Failure {
    fn from(v: Violations) -> Self {
        Self::Invalid(v)
    }
}

/// Who is calling, as the stack authenticated them.
#[derive(Clone, Debug)]
pub struct Caller {
    pub subject: String,
    /// ROLE_OPERATOR or ROLE_ADMIN: sees everyone's.
    pub operator: bool,
}

impl Caller {
    fn sees(&self, owner: &str) -> bool {
        self.operator || self.subject == owner
    }
}

/// The idempotency scope of `Send` (one for all senders: operators and services).
const SEND_SCOPE: &str = "notification.send";

/// Notification's operations.
#[derive(Clone)]
pub struct Notifications {
    store: Store,
    contacts: Contacts,
    sealing: Arc<Keyring>,
    policy: ssrf::Policy,
    wake: Arc<Notify>,
}

impl Notifications {
    pub fn new(
        store: Store,
        contacts: Contacts,
        sealing: Arc<Keyring>,
        policy: ssrf::Policy,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            contacts,
            sealing,
            policy,
            wake,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `Send`: the recipient must be a user auth knows; a repeat of a key returns the original.
    pub async fn send(
        &self,
        new: NewNotification,
        fingerprint: &str,
    ) -> Result<Notification, Failure> {
        match self.contacts.lookup(&new.recipient_id).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(Failure::NotFound("recipient")),
            Err(err) => {
                tracing::warn!(error = %err, "Send: the recipient could not be checked");
                return Err(Failure::Unavailable("the user directory"));
            }
        }
        let key = new.idempotency_key.clone();
        let guard = if key.is_empty() {
            Guard::Nothing
        } else {
            Guard::Key {
                scope: SEND_SCOPE,
                key: &key,
                fingerprint,
            }
        };
        let (created, notification) = self.create(new, guard).await?;
        match created {
            Created::New => Ok(notification),
            Created::Repeat(id) => self
                .store
                .notification(&id)
                .await?
                .ok_or(Failure::NotFound("notification")),
            Created::Mismatch => Err(Failure::Invalid(Violations::one(
                "idempotency_key",
                "already used for a different request",
            ))),
            Created::Erased => Err(Failure::NotFound("recipient")),
            Created::Duplicate => Err(Failure::Internal("a Send recorded as an event".into())),
        }
    }

    /// Builds the notification and its deliveries for `new` (the channels it names, else the
    /// recipient's preferences) and writes them under `guard`.
    pub async fn create(
        &self,
        new: NewNotification,
        guard: Guard<'_>,
    ) -> Result<(Created, Notification), Failure> {
        let channels = if new.channels.is_empty() {
            let preferences = self.store.preferences(&new.recipient_id).await?;
            let preferences = preferences.map(|(p, _)| p).unwrap_or_default();
            preferences.channels_for(&new.event_type).to_vec()
        } else {
            new.channels.clone()
        };
        let created_at = now();
        let notification = Notification {
            id: new_id(),
            recipient_id: new.recipient_id,
            event_type: new.event_type,
            subject: new.subject,
            body: new.body,
            data: new.data,
            channels,
            source_event_id: new.source_event_id,
            read_at: None,
            created_at,
        };
        let deliveries = self.deliveries_for(&notification).await?;
        let created = self.store.create(guard, &notification, &deliveries).await?;
        if created == Created::New && !deliveries.is_empty() {
            self.wake.notify_one();
        }
        Ok((created, notification))
    }

    async fn deliveries_for(&self, n: &Notification) -> Result<Vec<Delivery>, Failure> {
        let due = n.created_at.timestamp_millis();
        let delivery = |channel, endpoint_id: &str| Delivery {
            id: new_id(),
            notification_id: n.id.clone(),
            recipient_id: n.recipient_id.clone(),
            channel,
            endpoint_id: endpoint_id.to_owned(),
            event_type: n.event_type.clone(),
            state: DeliveryState::Pending,
            attempts: 0,
            last_status_code: 0,
            last_error: String::new(),
            next_attempt_ms: Some(due),
            delivered_at: None,
            created_at: n.created_at,
        };
        let mut rows = Vec::new();
        if n.channels.contains(&Channel::Email) {
            rows.push(delivery(Channel::Email, ""));
        }
        if n.channels.contains(&Channel::Webhook) {
            let endpoints = self
                .store
                .endpoints(&n.recipient_id, None, MAX_ENDPOINTS)
                .await?;
            for e in endpoints.iter().filter(|e| e.endpoint.wants(&n.event_type)) {
                rows.push(delivery(Channel::Webhook, &e.endpoint.id));
            }
        }
        Ok(rows)
    }

    /// One notification, if the caller may see it (another's is NOT_FOUND).
    pub async fn notification(&self, caller: &Caller, id: &str) -> Result<Notification, Failure> {
        check_id("notification_id", id)?;
        match self.store.notification(id).await? {
            Some(n) if caller.sees(&n.recipient_id) => Ok(n),
            _ => Err(Failure::NotFound("notification")),
        }
    }

    /// Marks one of the caller's own notifications read (the first `read_at` stays).
    pub async fn mark_read(&self, caller: &Caller, id: &str) -> Result<Notification, Failure> {
        check_id("notification_id", id)?;
        match self.store.notification(id).await? {
            Some(n) if n.recipient_id == caller.subject => {}
            _ => return Err(Failure::NotFound("notification")),
        }
        self.store
            .mark_read(id, now())
            .await?
            .ok_or(Failure::NotFound("notification"))
    }

    /// The caller's preferences and when they were set.
    pub async fn preferences(
        &self,
        user: &str,
    ) -> Result<(Preferences, Option<DateTime<Utc>>), Failure> {
        Ok(match self.store.preferences(user).await? {
            Some((p, at)) => (p, Some(at)),
            None => (Preferences::default(), None),
        })
    }

    /// Replaces the caller's preferences.
    pub async fn set_preferences(
        &self,
        user: &str,
        preferences: &Preferences,
    ) -> Result<DateTime<Utc>, Failure> {
        let at = now();
        self.store.set_preferences(user, preferences, at).await?;
        Ok(at)
    }
}

mod endpoints;

fn check_id(field: &str, id: &str) -> Result<(), Failure> {
    let mut v = Violations::default();
    ironmesh_runtime::validation::check_uuid(&mut v, field, id);
    v.into_result().map_err(Failure::Invalid)
}
