//! Notification's records and the input rules of notification.proto, below gRPC and SQL:
//! [`Notification`], [`Endpoint`], [`Delivery`] and its [`DeliveryState`]; what a `Send`
//! ([`NewNotification::checked`]) and a `CreateWebhookEndpoint` ([`NewEndpoint::checked`])
//! must hold; the retry schedule ([`next_attempt_delay`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ironmesh_runtime::validation::{Violations, check_uuid};

use crate::preferences::{self, Channel, RawChannel};
use crate::ssrf;

/// Longest subject (characters).
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest body (characters).
pub const MAX_BODY_CHARS: usize = 10_000;
/// Most `data` entries, and their total size in bytes.
pub const MAX_DATA_ENTRIES: usize = 32;
pub const MAX_DATA_BYTES: usize = 8 * 1024;
/// Longest idempotency key (characters).
pub const MAX_KEY_CHARS: usize = 128;
/// Most webhook endpoints per user.
pub const MAX_ENDPOINTS: i64 = 10;
/// Longest endpoint description (characters).
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// Most event-type patterns per endpoint.
pub const MAX_ENDPOINT_EVENT_TYPES: usize = 50;
/// How long a rotated-out secret keeps signing.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A message addressed to one user; every one is in the recipient's inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: String,
    pub recipient_id: String,
    pub event_type: String,
    pub subject: String,
    pub body: String,
    pub data: BTreeMap<String, String>,
    pub channels: Vec<Channel>,
    /// Empty for a direct `Send`.
    pub source_event_id: String,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A checked `Send` (or an event's draft): everything but the id and the channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub recipient_id: String,
    pub event_type: String,
    pub subject: String,
    pub body: String,
    pub data: BTreeMap<String, String>,
    /// Overrides the recipient's preferences when not empty.
    pub channels: Vec<Channel>,
    pub idempotency_key: String,
    pub source_event_id: String,
}

impl NewNotification {
    /// `Send`'s fields checked as notification.proto states them; violations name the proto's
    /// fields.
    #[allow(clippy::too_many_arguments)]
    pub fn checked(
        recipient_id: String,
        event_type: String,
        subject: String,
        body: String,
        data: BTreeMap<String, String>,
        channels: &[RawChannel],
        idempotency_key: String,
    ) -> Result<Self, Violations> {
        let mut v = Violations::default();
        check_uuid(&mut v, "recipient_id", &recipient_id);
        check_event_type(&mut v, "event_type", &event_type);
        match subject.chars().count() {
            0 => v.add("subject", "required"),
            n if n > MAX_SUBJECT_CHARS => v.add("subject", "at most 200 characters"),
            _ if subject.chars().any(char::is_control) => {
                v.add("subject", "must not contain control characters")
            }
            _ => {}
        }
        if body.chars().count() > MAX_BODY_CHARS {
            v.add("body", "at most 10000 characters");
        }
        if data.len() > MAX_DATA_ENTRIES {
            v.add("data", "at most 32 entries");
        }
        if data.iter().map(|(k, x)| k.len() + x.len()).sum::<usize>() > MAX_DATA_BYTES {
            v.add("data", "at most 8 KiB in total");
        }
        if data.keys().any(|k| k.is_empty() || k.chars().count() > 64) {
            v.add("data", "keys are 1–64 characters");
        }
        let channels = preferences::channels(&mut v, "channels", channels);
        if idempotency_key.chars().count() > MAX_KEY_CHARS {
            v.add("idempotency_key", "at most 128 characters");
        } else if idempotency_key.chars().any(char::is_control) {
            v.add("idempotency_key", "must not contain control characters");
        }
        v.into_result()?;
        Ok(Self {
            recipient_id,
            event_type,
            subject,
            body,
            data,
            channels,
            idempotency_key,
            source_event_id: String::new(),
        })
    }
}

/// An exact event type: `<service>.<aggregate>.<verb>`-style dot-separated segments.
fn check_event_type(v: &mut Violations, field: &str, event_type: &str) {
    if let Err(why) = preferences::check_pattern(event_type) {
        v.add(field, why);
    } else if event_type == "*" || event_type.ends_with(".*") {
        v.add(field, "an exact event type such as orders.order.paid");
    }
}

/// A customer's webhook endpoint (its secrets are kept apart, sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub owner_id: String,
    pub url: String,
    pub description: String,
    /// Patterns (exact or `prefix.*`); empty = all event types.
    pub event_types: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub secret_rotated_at: DateTime<Utc>,
    /// Set when the receiver answered 410 Gone: it receives nothing more.
    pub disabled_at: Option<DateTime<Utc>>,
}

impl Endpoint {
    /// Whether notifications of `event_type` go to this endpoint.
    pub fn wants(&self, event_type: &str) -> bool {
        self.disabled_at.is_none()
            && (self.event_types.is_empty()
                || self
                    .event_types
                    .iter()
                    .any(|p| preferences::specificity(p, event_type).is_some()))
    }
}

/// A checked `CreateWebhookEndpoint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEndpoint {
    pub target: ssrf::Target,
    pub description: String,
    pub event_types: Vec<String>,
}

impl NewEndpoint {
    /// The URL's form and scheme (the resolution check is async, [`crate::ssrf::resolve`]),
    /// description and event types; violations name `endpoint.*`.
    pub fn checked(
        url: &str,
        description: String,
        event_types: Vec<String>,
        policy: ssrf::Policy,
    ) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let target = match ssrf::check_url(url, policy) {
            Ok(target) => Some(target),
            Err(refusal) => {
                v.add("endpoint.url", refusal.to_string());
                None
            }
        };
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            v.add("endpoint.description", "at most 200 characters");
        }
        if event_types.len() > MAX_ENDPOINT_EVENT_TYPES {
            v.add("endpoint.event_types", "at most 50 event types");
        }
        for (i, pattern) in event_types.iter().enumerate() {
            let field = format!("endpoint.event_types[{i}]");
            if let Err(why) = preferences::check_pattern(pattern) {
                v.add(field, why);
            } else if event_types[..i].contains(pattern) {
                v.add(field, "appears more than once");
            }
        }
        v.into_result()?;
        Ok(Self {
            target: target.expect("no violation means the URL was accepted"),
            description,
            event_types,
        })
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PENDING" => Some(Self::Pending),
            "DELIVERED" => Some(Self::Delivered),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One EMAIL or WEBHOOK delivery of a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Also the `webhook-id` (and the email's Message-ID): the same on every attempt.
    pub id: String,
    pub notification_id: String,
    pub recipient_id: String,
    pub channel: Channel,
    /// Empty for email.
    pub endpoint_id: String,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_status_code: i32,
    pub last_error: String,
    pub next_attempt_ms: Option<i64>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The delay before attempt number `attempts + 1` after `attempts` failed ones, with ±10 %
/// jitter (`unit` in [0, 1) picks where in the band), or `None` when the schedule is spent.
/// A receiver's `Retry-After` is a floor.
pub fn next_attempt_delay(
    schedule_ms: &[u64],
    attempts: i32,
    retry_after: Option<Duration>,
    unit: f64,
) -> Option<Duration> {
    let index = usize::try_from(attempts).ok()?;
    let base = *schedule_ms.get(index)?;
    let jittered = (base as f64 * (0.9 + 0.2 * unit.clamp(0.0, 1.0))) as u64;
    let delay = Duration::from_millis(jittered);
    Some(retry_after.map_or(delay, |floor| delay.max(floor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0190a4b2-7c3e-7d1a-9f00-000000000001";

    fn send(event_type: &str, subject: &str) -> Result<NewNotification, Violations> {
        NewNotification::checked(
            UUID.into(),
            event_type.into(),
            subject.into(),
            String::new(),
            BTreeMap::new(),
            &[Some(Channel::InApp)],
            "k-1".into(),
        )
    }

    fn fields(v: Violations) -> Vec<String> {
        v.iter().map(|x| x.field.clone()).collect()
    }

    /// A good Send passes; each bad field is named.
    #[test]
    fn send_rules_name_their_fields() {
        assert!(send("orders.order.paid", "Paid").is_ok());
        assert_eq!(fields(send("orders.*", "x").unwrap_err()), ["event_type"]);
        assert_eq!(
            fields(send("Bad Type", "").unwrap_err()),
            ["event_type", "subject"]
        );
        let long = "x".repeat(201);
        assert_eq!(fields(send("a.b", &long).unwrap_err()), ["subject"]);
        let many: BTreeMap<String, String> =
            (0..33).map(|i| (format!("k{i}"), "v".into())).collect();
        let bad = NewNotification::checked(
            "nope".into(),
            "a.b".into(),
            "s".into(),
            "b".repeat(10_001),
            many,
            &[None, Some(Channel::Email), Some(Channel::Email)],
            "k".repeat(129),
        )
        .unwrap_err();
        assert_eq!(
            fields(bad),
            [
                "recipient_id",
                "body",
                "data",
                "channels[0]",
                "channels[2]",
                "idempotency_key"
            ]
        );
    }

    /// The schedule: one delay per attempt, ±10 %, Retry-After a floor, then spent.
    #[test]
    fn the_schedule_jitters_honours_retry_after_and_ends() {
        let schedule = [0, 5_000, 300_000];
        assert_eq!(
            next_attempt_delay(&schedule, 0, None, 0.5),
            Some(Duration::ZERO)
        );
        let low = next_attempt_delay(&schedule, 1, None, 0.0).unwrap();
        let high = next_attempt_delay(&schedule, 1, None, 0.999).unwrap();
        assert_eq!(low, Duration::from_millis(4_500));
        assert!(high > Duration::from_millis(5_490) && high <= Duration::from_millis(5_500));
        let floor = Some(Duration::from_secs(60));
        assert_eq!(
            next_attempt_delay(&schedule, 1, floor, 0.5),
            Some(Duration::from_secs(60))
        );
        assert_eq!(next_attempt_delay(&schedule, 3, None, 0.5), None);
    }

    /// Endpoints match exact types and prefixes, everything when empty, nothing once disabled.
    #[test]
    fn endpoints_match_their_event_types() {
        let mut e = Endpoint {
            id: UUID.into(),
            owner_id: UUID.into(),
            url: "https://example.com/h".into(),
            description: String::new(),
            event_types: vec!["orders.*".into(), "auth.user.locked".into()],
            created_at: Utc::now(),
            secret_rotated_at: Utc::now(),
            disabled_at: None,
        };
        assert!(e.wants("orders.order.paid"));
        assert!(e.wants("auth.user.locked"));
        assert!(!e.wants("auth.user.password_changed"));
        e.event_types.clear();
        assert!(e.wants("anything.at.all"));
        e.disabled_at = Some(Utc::now());
        assert!(!e.wants("orders.order.paid"));
    }
}
