//! Access-token settings. They are shared, not auth's alone: auth issues tokens with them, and
//! every service's authentication layer verifies tokens against the same `iss`/`aud`, paces its
//! JWKS refreshes and caches API-key answers by them — so the table lives with the runtime that
//! builds those layers.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Access and refresh tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Access token lifetime.
    pub access_ttl_secs: u64,
    /// Refresh token lifetime (each rotation starts a new one).
    pub refresh_ttl_secs: u64,
    /// A new signing key is made when the active one is older than this.
    pub key_rotation_secs: u64,
    /// Least time between two JWKS fetches caused by unknown key ids.
    pub jwks_refresh_secs: u64,
    /// A refresh token presented again within this many milliseconds of its rotation is taken
    /// for a concurrent duplicate (that request fails, nothing is revoked); later, for a replay
    /// (its whole session is revoked).
    pub refresh_race_window_ms: u64,
    /// How long a service trusts auth's answer about an API key (a revoked key keeps working
    /// at most this long).
    pub api_key_cache_ms: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            issuer: "ironmesh".to_owned(),
            audience: "ironmesh".to_owned(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            key_rotation_secs: 7 * 24 * 3600,
            jwks_refresh_secs: 5,
            refresh_race_window_ms: 2_000,
            api_key_cache_ms: 10_000,
        }
    }
}

impl TokenConfig {
    /// What types alone cannot check; errors name the `tokens.*` key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(60..=24 * 3600).contains(&self.access_ttl_secs) {
            return Err(ConfigError::new(
                "tokens.access_ttl_secs",
                "must be between 60 and 86400",
            ));
        }
        if self.refresh_ttl_secs < self.access_ttl_secs {
            return Err(ConfigError::new(
                "tokens.refresh_ttl_secs",
                "must be at least tokens.access_ttl_secs",
            ));
        }
        if self.key_rotation_secs < self.access_ttl_secs {
            return Err(ConfigError::new(
                "tokens.key_rotation_secs",
                "must be at least tokens.access_ttl_secs",
            ));
        }
        Ok(())
    }
}
