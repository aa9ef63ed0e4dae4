//! The `events` configuration section: who subscribes to which events, and how the relay and
//! the inbox behave. One section for the whole mesh — event types are namespaced by their
//! source (`auth.user.deleted`), so each producer's relay creates delivery rows only for the
//! subscribers that want its types.
//!
//! ```toml
//! [events]
//! max_attempts = 50
//! [[events.subscribers]]
//! name = "audit"          # key of its delivery rows: keep it stable
//! service = "audit"       # which service's EventSinkService receives them
//! event_types = ["*"]     # `*`, prefixes like `auth.*`, or exact types
//! ```
//!
//! Without the section, audit receives everything (what `ironmesh up` runs); later consumers add
//! themselves to the default list here.

use std::collections::HashSet;
use std::time::Duration;

use ironmesh_runtime::ServiceKind;
use ironmesh_runtime::config::{ConfigError, Section};
use serde::{Deserialize, Serialize};

use crate::relay::{MAX_BATCH_EVENTS, RelayConfig};
use crate::subscriber::SubscriberConfig;

/// `events.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Which sink gets which event types.
    pub subscribers: Vec<SubscriberConfig>,
    /// Attempts after which a pair that keeps failing becomes a dead letter.
    pub max_attempts: i32,
    /// How often a relay looks for rows other replicas wrote (it wakes at once for its own).
    pub poll_interval_ms: u64,
    /// Deadline of one `Deliver` call.
    pub call_timeout_ms: u64,
    /// Exponential backoff with full jitter between attempts: base and cap.
    pub backoff_base_ms: u64,
    pub backoff_cap_secs: u64,
    /// Events per `Deliver` call (1–500).
    pub batch_size: usize,
    /// Fully delivered events are purged after this many days.
    pub retention_days: u64,
    /// Consumers keep seen event ids this many days: longer than any redelivery can arrive.
    pub inbox_retention_days: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        let relay = RelayConfig::default();
        Self {
            subscribers: vec![
                SubscriberConfig {
                    name: "audit".to_owned(),
                    service: Some("audit".to_owned()),
                    event_types: vec!["*".to_owned()],
                },
                // What users are told about (notification's catalog) and what erases them.
                SubscriberConfig {
                    name: "notification".to_owned(),
                    service: Some("notification".to_owned()),
                    event_types: [
                        "auth.user.deleted",
                        "auth.user.password_changed",
                        "auth.user.locked",
                        "auth.api_key.created",
                        "orders.order.*",
                        "provisioning.request.succeeded",
                        "provisioning.request.failed",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                },
            ],
            max_attempts: relay.max_attempts,
            poll_interval_ms: millis(relay.poll_interval),
            call_timeout_ms: millis(relay.call_timeout),
            backoff_base_ms: millis(relay.backoff_base),
            backoff_cap_secs: relay.backoff_cap.as_secs(),
            batch_size: relay.batch_size,
            retention_days: relay.retention.as_secs() / DAY,
            inbox_retention_days: 30,
        }
    }
}

const DAY: u64 = 24 * 3600;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl EventsConfig {
    /// The relay settings this section describes.
    pub fn relay(&self) -> RelayConfig {
        RelayConfig {
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            batch_size: self.batch_size,
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_cap: Duration::from_secs(self.backoff_cap_secs),
            max_attempts: self.max_attempts,
            retention: Duration::from_secs(self.retention_days.saturating_mul(DAY)),
            ..RelayConfig::default()
        }
    }

    /// How long consumers keep seen ids.
    pub fn inbox_retention(&self) -> Duration {
        Duration::from_secs(self.inbox_retention_days.saturating_mul(DAY))
    }
}

impl SubscriberConfig {
    /// The service whose `EventSinkService` this subscriber is (`service`, else `name`).
    pub fn service_kind(&self) -> Option<ServiceKind> {
        ServiceKind::from_name(self.service.as_deref().unwrap_or(&self.name))
    }
}

impl Section for EventsConfig {
    const KEY: &'static str = "events";

    fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (i, s) in self.subscribers.iter().enumerate() {
            let key = |field: &str| format!("events.subscribers[{i}].{field}");
            if s.name.trim().is_empty() || s.name.len() > 64 {
                return Err(ConfigError::new(key("name"), "1–64 characters"));
            }
            if !names.insert(s.name.as_str()) {
                return Err(ConfigError::new(
                    key("name"),
                    format!("`{}` is named twice", s.name),
                ));
            }
            if s.service_kind().is_none() {
                return Err(ConfigError::new(
                    key("service"),
                    "must name a service: auth, orders, inventory, provisioning, notification or audit",
                ));
            }
            if s.event_types.is_empty() {
                return Err(ConfigError::new(key("event_types"), "at least one pattern"));
            }
            if let Some(bad) = s.event_types.iter().find(|p| !valid_pattern(p)) {
                return Err(ConfigError::new(
                    key("event_types"),
                    format!("`{bad}` is not `*`, a prefix like `auth.*` or an event type"),
                ));
            }
        }
        if self.max_attempts < 1 {
            return Err(ConfigError::new(
                "events.max_attempts",
                "must be at least 1",
            ));
        }
        for (key, value) in [
            ("events.poll_interval_ms", self.poll_interval_ms),
            ("events.call_timeout_ms", self.call_timeout_ms),
            ("events.backoff_base_ms", self.backoff_base_ms),
            ("events.retention_days", self.retention_days),
            ("events.inbox_retention_days", self.inbox_retention_days),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.backoff_cap_secs.saturating_mul(1000) < self.backoff_base_ms {
            return Err(ConfigError::new(
                "events.backoff_cap_secs",
                "must be at least events.backoff_base_ms",
            ));
        }
        if !(1..=MAX_BATCH_EVENTS).contains(&self.batch_size) {
            return Err(ConfigError::new(
                "events.batch_size",
                format!("must be between 1 and {MAX_BATCH_EVENTS}"),
            ));
        }
        if self.inbox_retention_days <= self.retention_days {
            return Err(ConfigError::new(
                "events.inbox_retention_days",
                "must be longer than events.retention_days (a redelivery must find its id)",
            ));
        }
        Ok(())
    }
}

/// `*`, `prefix.*`, or a type of lower-case dotted words.
fn valid_pattern(pattern: &str) -> bool {
    let body = pattern.strip_suffix(".*").unwrap_or(pattern);
    pattern == "*"
        || (!body.is_empty()
            && body.len() <= 128
            && body.split('.').all(|word| {
                !word.is_empty()
                    && word
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            }))
}

#[cfg(test)]
mod tests {
    use ironmesh_runtime::Config;

    use super::*;

    #[test]
    fn the_default_sends_everything_to_audit() {
        let events = Config::default().section::<EventsConfig>().unwrap();
        assert_eq!(events.subscribers.len(), 2);
        assert_eq!(
            events.subscribers[0].service_kind(),
            Some(ServiceKind::Audit)
        );
        assert_eq!(events.subscribers[0].event_types, ["*"]);
        assert_eq!(events.relay().retention, Duration::from_secs(7 * DAY));
        assert_eq!(events.inbox_retention(), Duration::from_secs(30 * DAY));
    }

    #[test]
    fn each_bad_value_names_its_key() {
        type Change = fn(&mut EventsConfig);
        let cases: [(Change, &str); 7] = [
            (
                |e| e.subscribers[0].service = Some("billing".into()),
                "events.subscribers[0].service",
            ),
            (
                |e| e.subscribers[0].event_types = vec!["Auth.*".into()],
                "events.subscribers[0].event_types",
            ),
            (
                |e| {
                    e.subscribers.truncate(1);
                    e.subscribers.push(e.subscribers[0].clone())
                },
                "events.subscribers[1].name",
            ),
            (|e| e.max_attempts = 0, "events.max_attempts"),
            (|e| e.batch_size = 501, "events.batch_size"),
            (|e| e.poll_interval_ms = 0, "events.poll_interval_ms"),
            (
                |e| e.inbox_retention_days = 7,
                "events.inbox_retention_days",
            ),
        ];
        for (change, key) in cases {
            let mut events = EventsConfig::default();
            change(&mut events);
            let mut config = Config::default();
            config.set_section(&events);
            assert_eq!(config.section::<EventsConfig>().unwrap_err().key, key);
        }
    }

    #[test]
    fn patterns() {
        for good in [
            "*",
            "auth.*",
            "auth.user.deleted",
            "orders.order_line.added",
        ] {
            assert!(valid_pattern(good), "{good}");
        }
        for bad in ["", ".*", "auth.", "auth..x", "AUTH.*", "auth.*.x", "a b"] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }
}
