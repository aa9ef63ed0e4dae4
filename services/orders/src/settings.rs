//! Orders' configuration section (read through `ironmesh_runtime::Config::section`): how long
//! an order may stay PENDING and how often recovery looks for unfinished work. The outbox's
//! `events` section is the shared one.

use std::time::Duration;

use ironmesh_runtime::config::{ConfigError, Section};
use serde::{Deserialize, Serialize};

/// The top-level keys orders reads besides the runtime's: what its binary accepts in a config.
pub const SECTIONS: &[&str] = &[OrdersConfig::KEY, ironmesh_outbox::EventsConfig::KEY];

/// `orders.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrdersConfig {
    /// Longest an order stays PENDING: recovery retries Reserve until then, then REJECTS it.
    pub pending_timeout_secs: u64,
    /// How often recovery looks for unfinished orders (PENDING, expired reservations, payments
    /// left half done, reservations to release).
    pub recovery_interval_ms: u64,
    /// How long inventory holds an order's stock awaiting payment (60 s – 24 h).
    pub reservation_ttl_secs: u64,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            pending_timeout_secs: 60,
            recovery_interval_ms: 1000,
            reservation_ttl_secs: 900,
        }
    }
}

impl Section for OrdersConfig {
    const KEY: &'static str = "orders";

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=86_400).contains(&self.pending_timeout_secs) {
            return Err(ConfigError::new(
                "orders.pending_timeout_secs",
                "must be between 1 and 86400",
            ));
        }
        if !(10..=3_600_000).contains(&self.recovery_interval_ms) {
            return Err(ConfigError::new(
                "orders.recovery_interval_ms",
                "must be between 10 and 3600000",
            ));
        }
        if !(60..=86_400).contains(&self.reservation_ttl_secs) {
            return Err(ConfigError::new(
                "orders.reservation_ttl_secs",
                "must be between 60 and 86400",
            ));
        }
        Ok(())
    }
}

impl OrdersConfig {
    pub fn pending_timeout(&self) -> Duration {
        Duration::from_secs(self.pending_timeout_secs)
    }

    pub fn recovery_interval(&self) -> Duration {
        Duration::from_millis(self.recovery_interval_ms)
    }

    pub fn reservation_ttl(&self) -> Duration {
        Duration::from_secs(self.reservation_ttl_secs)
    }
}

#[cfg(test)]
mod tests {
    use ironmesh_runtime::Config;

    use super::*;

    /// Defaults: a minute PENDING at most, recovery every second, 15-minute holds; each bad
    /// value names its own key.
    #[test]
    fn defaults_and_bad_values() {
        let config = Config::default().section::<OrdersConfig>().unwrap();
        assert_eq!(config.pending_timeout(), Duration::from_secs(60));
        assert_eq!(config.recovery_interval(), Duration::from_secs(1));
        assert_eq!(config.reservation_ttl(), Duration::from_secs(900));
        type Change = fn(&mut OrdersConfig);
        let cases: [(Change, &str); 4] = [
            (
                |c| c.pending_timeout_secs = 0,
                "orders.pending_timeout_secs",
            ),
            (
                |c| c.recovery_interval_ms = 5,
                "orders.recovery_interval_ms",
            ),
            (
                |c| c.reservation_ttl_secs = 59,
                "orders.reservation_ttl_secs",
            ),
            (
                |c| c.reservation_ttl_secs = 86_401,
                "orders.reservation_ttl_secs",
            ),
        ];
        for (change, key) in cases {
            let mut config = Config::default();
            let mut orders = OrdersConfig::default();
            change(&mut orders);
            config.set_section(&orders);
            assert_eq!(config.section::<OrdersConfig>().unwrap_err().key, key);
        }
    }
}
