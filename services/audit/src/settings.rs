//! Audit's configuration section (read through `ironmesh_runtime::Config::section`): retention
//! and the periodic checkpoint signer. The signing key is sealed with the sealing library's
//! `secrets`.

use std::time::Duration;

use ironmesh_runtime::config::{ConfigError, Section};
use serde::{Deserialize, Serialize};

/// The top-level keys audit reads besides the runtime's: what its binary accepts in a config.
pub const SECTIONS: &[&str] = &[AuditConfig::KEY, ironmesh_sealing::SecretsConfig::KEY];

/// `audit.*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries recorded longer ago than this many days are purged (leaving a signed anchor);
    /// 0 keeps every entry forever.
    pub retention_days: u32,
    /// How often retention looks for entries to purge.
    pub retention_interval_secs: u64,
    /// How often the head is signed when it moved (GetCheckpoint also signs on demand).
    pub checkpoint_interval_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 90,
            retention_interval_secs: 3600,
            checkpoint_interval_secs: 60,
        }
    }
}

/// Longest retention accepted: beyond it a cutoff would fall before the stored times' range.
const MAX_RETENTION_DAYS: u32 = 100 * 366;

impl Section for AuditConfig {
    const KEY: &'static str = "audit";

    fn validate(&self) -> Result<(), ConfigError> {
        if self.retention_days > MAX_RETENTION_DAYS {
            return Err(ConfigError::new(
                "audit.retention_days",
                format!("must be at most {MAX_RETENTION_DAYS} (0 keeps entries forever)"),
            ));
        }
        if self.retention_interval_secs == 0 {
            return Err(ConfigError::new(
                "audit.retention_interval_secs",
                "must be at least 1",
            ));
        }
        if self.checkpoint_interval_secs == 0 {
            return Err(ConfigError::new(
                "audit.checkpoint_interval_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

impl AuditConfig {
    /// How long entries are kept; `None` for ever.
    pub fn retention(&self) -> Option<Duration> {
        (self.retention_days > 0)
            .then(|| Duration::from_secs(u64::from(self.retention_days) * 86_400))
    }
}

#[cfg(test)]
mod tests {
    use ironmesh_runtime::Config;

    use super::*;

    /// Defaults: 90 days, hourly retention, a checkpoint a minute; each bad value names its key.
    #[test]
    fn defaults_and_bad_values() {
        let config = Config::default().section::<AuditConfig>().unwrap();
        assert_eq!(config.retention(), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(config.checkpoint_interval_secs, 60);
        type Change = fn(&mut AuditConfig);
        let cases: [(Change, &str); 3] = [
            (
                |a| a.retention_days = MAX_RETENTION_DAYS + 1,
                "audit.retention_days",
            ),
            (
                |a| a.retention_interval_secs = 0,
                "audit.retention_interval_secs",
            ),
            (
                |a| a.checkpoint_interval_secs = 0,
                "audit.checkpoint_interval_secs",
            ),
        ];
        for (change, key) in cases {
            let mut config = Config::default();
            let mut audit = AuditConfig::default();
            change(&mut audit);
            config.set_section(&audit);
            assert_eq!(config.section::<AuditConfig>().unwrap_err().key, key);
        }
        let forever = AuditConfig {
            retention_days: 0,
            ..AuditConfig::default()
        };
        assert_eq!(forever.retention(), None);
    }
}
