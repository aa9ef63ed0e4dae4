//! Notification's configuration section (`notification.*`, read through
//! `ironmesh_runtime::Config::section`): the SMTP relay, the webhook safety switches, the retry
//! schedule and the delivery engine's bounds. The outbox's `events` section is the shared one.
//!
//! ```toml
//! [notification]
//! smtp_url = "smtps://user:password@smtp.example.com:465"   # unset: .eml files under data_dir
//! email_from = "Ironmesh <notifications@example.com>"
//! retry_schedule_ms = [0, 5000, 300000]                      # one entry per attempt
//! ```

use std::time::Duration;

use ironmesh_runtime::config::{ConfigError, Section};
use serde::{Deserialize, Serialize};

/// The top-level keys notification reads besides the runtime's: what its binary accepts.
pub const SECTIONS: &[&str] = &[NotificationConfig::KEY, ironmesh_outbox::EventsConfig::KEY];

/// The Standard Webhooks schedule: the delay before each attempt (immediately, 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h) — eight attempts over about 27 hours.
pub const STANDARD_SCHEDULE_MS: [u64; 8] = [
    0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

/// `notification.*`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationConfig {
    /// `smtp://host:port` (plain; loopback relays), `smtp://host:port?tls=required` (STARTTLS)
    /// or `smtps://host:port` (implicit TLS), credentials as `user:password@`. Unset: every
    /// email is written as an `.eml` file under `data_dir/outbox-mail` instead.
    pub smtp_url: Option<String>,
    /// The `From` of every email.
    pub email_from: String,
    /// Allow `http://` webhook URLs. For development and tests only: production endpoints are
    /// https.
    pub allow_insecure_webhooks: bool,
    /// TESTS ONLY: allow webhook targets on loopback and private networks (it switches the SSRF
    /// guard off for those ranges). Never set it in a deployment.
    pub allow_private_webhook_targets: bool,
    /// Delay before each attempt of a delivery, in ms; its length is the number of attempts
    /// (1–20). Each retry gets ±10 % jitter.
    pub retry_schedule_ms: Vec<u64>,
    /// Connect timeout of a webhook attempt.
    pub connect_timeout_ms: u64,
    /// Whole-attempt timeout of a webhook POST or an SMTP exchange.
    pub attempt_timeout_ms: u64,
    /// Attempts in flight at once per endpoint (and for the SMTP relay).
    pub per_target_concurrency: usize,
    /// Attempts in flight at once in this process.
    pub max_in_flight: usize,
    /// Consecutive failures after which an endpoint's (or the relay's) circuit opens.
    pub breaker_failures: u32,
    /// How long an open circuit refuses attempts before one probe goes through.
    pub breaker_cool_down_ms: u64,
    /// How often the engine looks for due deliveries other replicas or retries made (it wakes
    /// at once for this process's own new ones).
    pub poll_interval_ms: u64,
}

impl std::fmt::Debug for NotificationConfig {
    // The SMTP URL may carry a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationConfig")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("email_from", &self.email_from)
            .field("allow_insecure_webhooks", &self.allow_insecure_webhooks)
            .field(
                "allow_private_webhook_targets",
                &self.allow_private_webhook_targets,
            )
            .field("retry_schedule_ms", &self.retry_schedule_ms)
            .finish_non_exhaustive()
    }
}

impl Default for NotificationConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            email_from: "Ironmesh <notifications@ironmesh.local>".to_owned(),
            allow_insecure_webhooks: false,
            allow_private_webhook_targets: false,
            retry_schedule_ms: STANDARD_SCHEDULE_MS.to_vec(),
            connect_timeout_ms: 5_000,
            attempt_timeout_ms: 15_000,
            per_target_concurrency: 4,
            max_in_flight: 64,
            breaker_failures: 5,
            breaker_cool_down_ms: 30_000,
            poll_interval_ms: 1_000,
        }
    }
}

impl Section for NotificationConfig {
    const KEY: &'static str = "notification";

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::new(format!("notification.{key}"), why));
        if self.email_from.trim().is_empty() || self.email_from.len() > 200 {
            return bad("email_from", "must be an address, at most 200 characters");
        }
        if self.retry_schedule_ms.is_empty() || self.retry_schedule_ms.len() > 20 {
            return bad("retry_schedule_ms", "must have 1–20 entries");
        }
        if self
            .retry_schedule_ms
            .iter()
            .any(|d| *d > 7 * 24 * 3_600_000)
        {
            return bad("retry_schedule_ms", "each delay must be at most 7 days");
        }
        if !(10..=60_000).contains(&self.connect_timeout_ms) {
            return bad("connect_timeout_ms", "must be between 10 and 60000");
        }
        if !(10..=300_000).contains(&self.attempt_timeout_ms) {
            return bad("attempt_timeout_ms", "must be between 10 and 300000");
        }
        if !(1..=256).contains(&self.per_target_concurrency) {
            return bad("per_target_concurrency", "must be between 1 and 256");
        }
        if !(1..=4096).contains(&self.max_in_flight) {
            return bad("max_in_flight", "must be between 1 and 4096");
        }
        if !(1..=1000).contains(&self.breaker_failures) {
            return bad("breaker_failures", "must be between 1 and 1000");
        }
        if !(10..=3_600_000).contains(&self.breaker_cool_down_ms) {
            return bad("breaker_cool_down_ms", "must be between 10 and 3600000");
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return bad("poll_interval_ms", "must be between 10 and 60000");
        }
        Ok(())
    }
}

impl NotificationConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.attempt_timeout_ms)
    }

    pub fn breaker_cool_down(&self) -> Duration {
        Duration::from_millis(self.breaker_cool_down_ms)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn ssrf_policy(&self) -> crate::ssrf::Policy {
        crate::ssrf::Policy {
            allow_insecure: self.allow_insecure_webhooks,
            allow_private: self.allow_private_webhook_targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use ironmesh_runtime::Config;

    use super::*;

    /// Defaults: the Standard Webhooks schedule, files instead of SMTP, the SSRF guard on; each
    /// bad value names its own key; the SMTP URL never shows in Debug.
    #[test]
    fn defaults_bad_values_and_debug() {
        let config = Config::default().section::<NotificationConfig>().unwrap();
        assert_eq!(config.retry_schedule_ms, STANDARD_SCHEDULE_MS);
        assert!(config.smtp_url.is_none());
        assert!(!config.allow_insecure_webhooks && !config.allow_private_webhook_targets);
        type Change = fn(&mut NotificationConfig);
        let cases: [(Change, &str); 4] = [
            (
                |c| c.retry_schedule_ms.clear(),
                "notification.retry_schedule_ms",
            ),
            (|c| c.email_from.clear(), "notification.email_from"),
            (
                |c| c.per_target_concurrency = 0,
                "notification.per_target_concurrency",
            ),
            (
                |c| c.attempt_timeout_ms = 1,
                "notification.attempt_timeout_ms",
            ),
        ];
        for (change, key) in cases {
            let mut config = Config::default();
            let mut section = NotificationConfig::default();
            change(&mut section);
            config.set_section(&section);
            assert_eq!(config.section::<NotificationConfig>().unwrap_err().key, key);
        }
        let secret = NotificationConfig {
            smtp_url: Some("smtps://u:hunter2@relay:465".to_owned()),
            ..NotificationConfig::default()
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
