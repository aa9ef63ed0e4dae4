//! Auth's own configuration sections (read through `ironmesh_runtime::Config::section`): the
//! brute-force `lockout` here, and the sealing library's `secrets`. Token settings are the
//! runtime's `tokens`, shared with every verifier.

use ironmesh_runtime::config::{ConfigError, Section};
use serde::{Deserialize, Serialize};

/// The top-level keys auth reads besides the runtime's: what its binary accepts in a config.
pub const SECTIONS: &[&str] = &[
    LockoutConfig::KEY,
    ironmesh_sealing::SecretsConfig::KEY,
    ironmesh_outbox::EventsConfig::KEY,
];

/// `lockout.*`: failed logins within `window_secs` beyond a threshold lock the account (or the
/// client address) for `base_secs`, doubling with each further failure up to `max_secs`.
/// Counters live in Redis when `redis_url` is set (every replica agrees), in memory otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    pub account_threshold: u32,
    pub ip_threshold: u32,
    pub window_secs: u64,
    pub base_secs: u64,
    pub max_secs: u64,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            account_threshold: 5,
            ip_threshold: 50,
            window_secs: 15 * 60,
            base_secs: 30,
            max_secs: 3600,
        }
    }
}

impl Section for LockoutConfig {
    const KEY: &'static str = "lockout";

    fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = |key: &str| ConfigError::new(key, "must be at least 1");
        if self.account_threshold == 0 {
            return Err(at_least_one("lockout.account_threshold"));
        }
        if self.ip_threshold == 0 {
            return Err(at_least_one("lockout.ip_threshold"));
        }
        if self.window_secs == 0 {
            return Err(at_least_one("lockout.window_secs"));
        }
        if self.base_secs == 0 {
            return Err(at_least_one("lockout.base_secs"));
        }
        if self.max_secs < self.base_secs {
            return Err(ConfigError::new(
                "lockout.max_secs",
                "must be at least lockout.base_secs",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ironmesh_runtime::Config;

    use super::*;

    /// Each rule names the key at fault (the runtime's old check reported `account_threshold`
    /// for a zero `ip_threshold` and `max_secs` for a zero `base_secs`).
    #[test]
    fn each_bad_value_names_its_own_key() {
        type Change = fn(&mut LockoutConfig);
        let cases: [(Change, &str); 5] = [
            (|l| l.account_threshold = 0, "lockout.account_threshold"),
            (|l| l.ip_threshold = 0, "lockout.ip_threshold"),
            (|l| l.window_secs = 0, "lockout.window_secs"),
            (|l| l.base_secs = 0, "lockout.base_secs"),
            (|l| l.max_secs = 1, "lockout.max_secs"),
        ];
        for (change, key) in cases {
            let mut config = Config::default();
            let mut lockout = LockoutConfig::default();
            change(&mut lockout);
            config.set_section(&lockout);
            assert_eq!(config.section::<LockoutConfig>().unwrap_err().key, key);
        }
        assert_eq!(
            Config::default().section::<LockoutConfig>().unwrap(),
            LockoutConfig::default()
        );
    }
}
