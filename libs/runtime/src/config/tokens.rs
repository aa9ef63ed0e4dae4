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
    /// A signing key signs for this long; its successor is made `key_publish_secs` before.
    pub key_rotation_secs: u64,
    /// A new signing key is in the JWKS this long before it signs anything, so that every
    /// replica's key set (re-read every `jwks_cache_ms`) lists it before a token names it.
    pub key_publish_secs: u64,
    /// How long auth answers `GetJwks` and picks its signing key from memory before it reads
    /// the key set again (another replica or `ironmesh admin rotate-signing-key` may have
    /// scheduled a key).
    pub jwks_cache_ms: u64,
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
            key_publish_secs: 30,
            jwks_cache_ms: 5_000,
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
        if self.key_publish_secs >= self.key_rotation_secs {
            return Err(ConfigError::new(
                "tokens.key_publish_secs",
                "must be less than tokens.key_rotation_secs",
            ));
        }
        // Strictly longer, or a replica's cached set could miss a key that already signs.
        if self.key_publish_secs.saturating_mul(1000) <= self.jwks_cache_ms {
            return Err(ConfigError::new(
                "tokens.key_publish_secs",
                "must be longer than tokens.jwks_cache_ms",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(config: &TokenConfig) -> Option<String> {
        config.validate().err().map(|err| err.to_string())
    }

    /// Publication must lead signing by more than a replica's cached key set can lag, and end
    /// before the key it announces is due to be replaced.
    #[test]
    fn a_key_is_published_longer_than_the_cache_and_shorter_than_its_rotation() {
        assert_eq!(field(&TokenConfig::default()), None);
        let cached_as_long = TokenConfig {
            key_publish_secs: 5,
            jwks_cache_ms: 5_000,
            ..TokenConfig::default()
        };
        let err = field(&cached_as_long).expect("refused");
        assert!(err.contains("tokens.key_publish_secs"), "{err}");
        assert!(err.contains("jwks_cache_ms"), "{err}");
        let past_rotation = TokenConfig {
            key_rotation_secs: 900,
            key_publish_secs: 900,
            ..TokenConfig::default()
        };
        let err = field(&past_rotation).expect("refused");
        assert!(err.contains("key_rotation_secs"), "{err}");
    }
}
