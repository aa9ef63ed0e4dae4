//! Provisioning's configuration section (`provisioning.*`, read through
//! `ironmesh_runtime::Config::section`): the plans customers may ask for, the attempt budget and
//! retry backoff, how often lapsed leases are reaped and other replicas' submissions looked
//! for, how long dead letters are kept, and how often credentials are re-wrapped after a key
//! rotation. The outbox's `events` section is the shared one.
//!
//! ```toml
//! [provisioning]
//! plans = ["starter", "professional", "enterprise"]
//! max_attempts = 5
//! ```

use std::time::Duration;

use ironmesh_runtime::config::{ConfigError, Section};
use serde::{Deserialize, Serialize};

/// The top-level keys provisioning reads besides the runtime's: what its binary accepts.
pub const SECTIONS: &[&str] = &[ProvisioningConfig::KEY, ironmesh_outbox::EventsConfig::KEY];

/// `provisioning.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// Plans a request may name (1–64 characters of `[a-z0-9-_]` each).
    pub plans: Vec<String>,
    /// Attempts (claims, lapsed leases included) before a request is dead-lettered (1–100).
    pub max_attempts: i32,
    /// First retry delay; doubled per attempt, full jitter, capped by `backoff_cap_secs`.
    pub backoff_base_ms: u64,
    pub backoff_cap_secs: u64,
    /// How often a replica requeues (or dead-letters) requests whose lease lapsed.
    pub reap_interval_ms: u64,
    /// How often a long-polling ClaimJob looks for work another replica queued (work queued
    /// through this process wakes it at once).
    pub claim_poll_interval_ms: u64,
    /// How long a dead letter is kept after its final failure or its replay (default 7 days).
    pub dead_letter_retention_secs: u64,
    /// How often the position board is recomputed while anyone watches (WatchQueuePosition
    /// sends at most one change per refresh; the contract's once a second by default).
    pub position_refresh_ms: u64,
    /// How often a replica re-wraps credential data keys still wrapped by an older
    /// key-encryption key (after `ironmesh admin rotate-credential-key`).
    pub credential_rewrap_interval_ms: u64,
    /// External backends that may report on running requests (`ReceiveWebhook`), each with
    /// its signature scheme and secrets.
    pub webhook_sources: Vec<crate::inbound::WebhookSource>,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        Self {
            plans: ["starter", "professional", "enterprise"]
                .map(str::to_owned)
                .to_vec(),
            max_attempts: 5,
            backoff_base_ms: 1_000,
            backoff_cap_secs: 300,
            reap_interval_ms: 1_000,
            claim_poll_interval_ms: 500,
            dead_letter_retention_secs: 7 * 24 * 3600,
            position_refresh_ms: 1_000,
            credential_rewrap_interval_ms: 60_000,
            webhook_sources: Vec::new(),
        }
    }
}

impl Section for ProvisioningConfig {
    const KEY: &'static str = "provisioning";

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::new(format!("provisioning.{key}"), why));
        if self.plans.is_empty() || self.plans.len() > 100 {
            return bad("plans", "1–100 plans");
        }
        if let Some(i) = self
            .plans
            .iter()
            .position(|p| !crate::domain::is_plan_name(p))
        {
            return bad(
                &format!("plans[{i}]"),
                "1–64 characters of a-z, 0-9, - and _",
            );
        }
        if !(1..=100).contains(&self.max_attempts) {
            return bad("max_attempts", "must be between 1 and 100");
        }
        if !(1..=3_600_000).contains(&self.backoff_base_ms) {
            return bad("backoff_base_ms", "must be between 1 and 3600000");
        }
        if !(1..=86_400).contains(&self.backoff_cap_secs) {
            return bad("backoff_cap_secs", "must be between 1 and 86400");
        }
        if !(10..=600_000).contains(&self.reap_interval_ms) {
            return bad("reap_interval_ms", "must be between 10 and 600000");
        }
        if !(10..=60_000).contains(&self.claim_poll_interval_ms) {
            return bad("claim_poll_interval_ms", "must be between 10 and 60000");
        }
        if !(60..=365 * 86_400).contains(&self.dead_letter_retention_secs) {
            return bad(
                "dead_letter_retention_secs",
                "must be between 60 and 31536000",
            );
        }
        if !(50..=60_000).contains(&self.position_refresh_ms) {
            return bad("position_refresh_ms", "must be between 50 and 60000");
        }
        if !(10..=86_400_000).contains(&self.credential_rewrap_interval_ms) {
            return bad(
                "credential_rewrap_interval_ms",
                "must be between 10 and 86400000",
            );
        }
        for (i, source) in self.webhook_sources.iter().enumerate() {
            if let Some(why) = source.problem() {
                return bad(&format!("webhook_sources[{i}]"), why);
            }
            if self.webhook_sources[..i]
                .iter()
                .any(|s| s.name == source.name)
            {
                return bad(
                    &format!("webhook_sources[{i}].name"),
                    "appears more than once",
                );
            }
        }
        Ok(())
    }
}

impl ProvisioningConfig {
    pub fn backoff_base(&self) -> Duration {
        Duration::from_millis(self.backoff_base_ms)
    }

    pub fn backoff_cap(&self) -> Duration {
        Duration::from_secs(self.backoff_cap_secs)
    }

    pub fn reap_interval(&self) -> Duration {
        Duration::from_millis(self.reap_interval_ms)
    }

    pub fn claim_poll_interval(&self) -> Duration {
        Duration::from_millis(self.claim_poll_interval_ms)
    }

    /// The configured source `name`.
    pub fn webhook_source(&self, name: &str) -> Option<&crate::inbound::WebhookSource> {
        self.webhook_sources.iter().find(|s| s.name == name)
    }

    pub fn position_refresh(&self) -> Duration {
        Duration::from_millis(self.position_refresh_ms)
    }

    pub fn credential_rewrap_interval(&self) -> Duration {
        Duration::from_millis(self.credential_rewrap_interval_ms)
    }

    pub fn dead_letter_retention(&self) -> Duration {
        Duration::from_secs(self.dead_letter_retention_secs)
    }
}

#[cfg(test)]
mod tests {
    use ironmesh_runtime::Config;

    use super::*;

    /// Defaults: three plans, five attempts, a second of first backoff; each bad value names
    /// its own key.
    #[test]
    fn defaults_and_bad_values() {
        let config = Config::default().section::<ProvisioningConfig>().unwrap();
        assert_eq!(config.plans, ["starter", "professional", "enterprise"]);
        assert_eq!(config.max_attempts, 5);
        assert_eq!(config.dead_letter_retention(), Duration::from_secs(604_800));
        type Change = fn(&mut ProvisioningConfig);
        let cases: [(Change, &str); 5] = [
            (|c| c.plans.clear(), "provisioning.plans"),
            (|c| c.plans.push("Big Plan".into()), "provisioning.plans[3]"),
            (|c| c.max_attempts = 0, "provisioning.max_attempts"),
            (|c| c.reap_interval_ms = 1, "provisioning.reap_interval_ms"),
            (
                |c| c.dead_letter_retention_secs = 1,
                "provisioning.dead_letter_retention_secs",
            ),
        ];
        for (change, key) in cases {
            let mut config = Config::default();
            let mut section = ProvisioningConfig::default();
            change(&mut section);
            config.set_section(&section);
            assert_eq!(config.section::<ProvisioningConfig>().unwrap_err().key, key);
        }
    }
}
