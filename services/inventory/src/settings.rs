//! Inventory's configuration section (read through `ironmesh_runtime::Config::section`):
//! reservation TTL, the sweeper's interval and the product cache's TTL. The outbox's `events`
//! section is the shared one; the cache uses the runtime's `redis_url`.

use std::time::Duration;

use ironmesh_runtime::config::{ConfigError, Section};
use serde::{Deserialize, Serialize};

/// The top-level keys inventory reads besides the runtime's: what its binary accepts in a config.
pub const SECTIONS: &[&str] = &[InventoryConfig::KEY, ironmesh_outbox::EventsConfig::KEY];

/// Shortest reservation TTL the contract allows (Reserve's `ttl`, and this default).
pub const MIN_TTL: Duration = Duration::from_secs(60);
/// Longest reservation TTL the contract allows.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// `inventory.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// How long Reserve holds units when the request names no `ttl` (60 s – 24 h).
    pub reservation_ttl_secs: u64,
    /// How often the sweeper looks for HELD reservations past their expiry.
    pub sweep_interval_ms: u64,
    /// Longest a cached product is served without being read again — the backstop behind the
    /// invalidation on update.
    pub cache_ttl_secs: u64,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        Self {
            reservation_ttl_secs: 900,
            sweep_interval_ms: 1000,
            cache_ttl_secs: 60,
        }
    }
}

impl Section for InventoryConfig {
    const KEY: &'static str = "inventory";

    fn validate(&self) -> Result<(), ConfigError> {
        let ttl = Duration::from_secs(self.reservation_ttl_secs);
        if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
            return Err(ConfigError::new(
                "inventory.reservation_ttl_secs",
                format!(
                    "must be between {} and {} seconds",
                    MIN_TTL.as_secs(),
                    MAX_TTL.as_secs()
                ),
            ));
        }
        if !(10..=3_600_000).contains(&self.sweep_interval_ms) {
            return Err(ConfigError::new(
                "inventory.sweep_interval_ms",
                "must be between 10 and 3600000",
            ));
        }
        if !(1..=86_400).contains(&self.cache_ttl_secs) {
            return Err(ConfigError::new(
                "inventory.cache_ttl_secs",
                "must be between 1 and 86400",
            ));
        }
        Ok(())
    }
}

impl InventoryConfig {
    pub fn reservation_ttl(&self) -> Duration {
        Duration::from_secs(self.reservation_ttl_secs)
    }

    pub fn sweep_interval(&self) -> Duration {
        Duration::from_millis(self.sweep_interval_ms)
    }

    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_secs)
    }
}

#[cfg(test)]
mod tests {
    use ironmesh_runtime::Config;

    use super::*;

    /// Defaults: 15 minutes, a sweep a second, a minute in the cache; each bad value names its
    /// own key.
    #[test]
    fn defaults_and_bad_values() {
        let config = Config::default().section::<InventoryConfig>().unwrap();
        assert_eq!(config.reservation_ttl(), Duration::from_secs(900));
        assert_eq!(config.sweep_interval(), Duration::from_secs(1));
        assert_eq!(config.cache_ttl(), Duration::from_secs(60));
        type Change = fn(&mut InventoryConfig);
        let cases: [(Change, &str); 6] = [
            (
                |c| c.reservation_ttl_secs = 59,
                "inventory.reservation_ttl_secs",
            ),
            (
                |c| c.reservation_ttl_secs = 86_401,
                "inventory.reservation_ttl_secs",
            ),
            (|c| c.sweep_interval_ms = 0, "inventory.sweep_interval_ms"),
            (
                |c| c.sweep_interval_ms = 3_600_001,
                "inventory.sweep_interval_ms",
            ),
            (|c| c.cache_ttl_secs = 0, "inventory.cache_ttl_secs"),
            (|c| c.cache_ttl_secs = 86_401, "inventory.cache_ttl_secs"),
        ];
        for (change, key) in cases {
            let mut config = Config::default();
            let mut inventory = InventoryConfig::default();
            change(&mut inventory);
            config.set_section(&inventory);
            assert_eq!(config.section::<InventoryConfig>().unwrap_err().key, key);
        }
    }

    /// `[inventory]` in a config file holds these settings beside the service's listeners, and
    /// the binary accepts them (`IRONMESH_INVENTORY__RESERVATION_TTL_SECS` is the same key).
    #[test]
    fn the_config_file_overrides_defaults_beside_the_listeners() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ironmesh.toml");
        std::fs::write(
            &file,
            "[inventory]\ngrpc_port = 6053\nreservation_ttl_secs = 120\ncache_ttl_secs = 5\n",
        )
        .unwrap();
        let config = Config::load(Some(&file)).unwrap();
        config.check_sections(SECTIONS).unwrap();
        assert_eq!(config.inventory.grpc_port, 6053);
        let inventory = config.section::<InventoryConfig>().unwrap();
        assert_eq!(inventory.reservation_ttl(), Duration::from_secs(120));
        assert_eq!(inventory.cache_ttl(), Duration::from_secs(5));
        assert_eq!(inventory.sweep_interval(), Duration::from_secs(1));
    }
}
