//! The account and session operations, over the store, the hasher, the signing keys, the
//! lockout and the sealing keyring. No proto here: `grpc` translates. One file per feature:
//!
//! - `sessions`: register, login, refresh, logout, password change, sessions.
//! - `admin`: listing users, roles, locks.
//! - `api_keys`: create, list, revoke, authenticate.
//! - `contacts`: where notification emails a user.
//! - `totp`: the second factor, enrollment, confirmation.
//! - `gdpr`: export and account deletion.

mod admin;
mod api_keys;
mod contacts;
mod gdpr;
mod sessions;
mod totp;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ironmesh_sealing::Keyring;

use crate::domain::{AuthError, User};
use crate::keys::{PublicKey, SigningKeys};
use crate::password::Hasher;
use crate::store::Store;
use crate::throttle::Lockout;

/// Token settings.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: chrono::Duration,
    pub refresh_ttl: chrono::Duration,
    /// A refresh token presented again this soon after its rotation is a race, not a replay.
    pub race_window: chrono::Duration,
}

/// Tokens handed out by login and refresh. `Debug` shows the session and expiries, never the
/// tokens themselves.
#[derive(Clone)]
pub struct Tokens {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub session_id: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &"<redacted>")
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("session_id", &self.session_id)
            .finish()
    }
}

/// Where a login comes from (recorded on the session).
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub label: String,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
}

/// The second factor a login presents. `Debug` names the kind only.
#[derive(Clone)]
pub enum SecondFactor {
    Totp(String),
    Recovery(String),
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecondFactor::Totp(_) => "Totp(<redacted>)",
            SecondFactor::Recovery(_) => "Recovery(<redacted>)",
        })
    }
}

/// Every operation of the service; cheap to clone (shared parts).
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    hasher: Hasher,
    keys: Arc<SigningKeys>,
    settings: TokenSettings,
    lockout: Lockout,
    sealing: Keyring,
}

impl Accounts {
    pub fn new(
        store: Store,
        hasher: Hasher,
        keys: Arc<SigningKeys>,
        settings: TokenSettings,
        lockout: Lockout,
        sealing: Keyring,
    ) -> Self {
        Self {
            store,
            hasher,
            keys,
            settings,
            lockout,
            sealing,
        }
    }

    /// The caller's (or any) account by id.
    pub async fn me(&self, user_id: &str) -> Result<User, AuthError> {
        self.store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::NotFound)
    }

    pub async fn jwks(&self) -> Result<Vec<PublicKey>, AuthError> {
        self.keys.jwks().await
    }
}

fn unix_seconds(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_codes_do_not_show_in_debug() {
        let now = Utc::now();
        let tokens = Tokens {
            access_token: "eyJhbGciOiJFZERTQSJ9.payload.sig".into(),
            access_expires_at: now,
            refresh_token: "imr_secretrefresh".into(),
            refresh_expires_at: now,
            session_id: "s1".into(),
        };
        let text = format!("{tokens:?}");
        assert!(text.contains("s1"), "{text}");
        assert!(!text.contains("eyJ") && !text.contains("imr_"), "{text}");
        let factor = SecondFactor::Recovery("abcde-fghjk".into());
        assert!(!format!("{factor:?}").contains("abcde"));
    }
}
