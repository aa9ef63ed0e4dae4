//! The things auth keeps: accounts, login sessions, API keys, signing keys, TOTP enrollment.
//! Secrets inside them are [`super::secret`] newtypes, so deriving `Debug` shows none of them.

use chrono::{DateTime, Utc};

use super::Role;
use super::secret::{PasswordHash, Sealed, TokenHash};

/// An account.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    /// Normalised (see [`super::Email`]).
    pub email: String,
    pub password_hash: PasswordHash,
    pub roles: Vec<Role>,
    /// Locked by an administrator (see [`User::is_locked`] for whether it still holds).
    pub locked: bool,
    pub locked_reason: String,
    pub locked_until: Option<DateTime<Utc>>,
    pub display_name: String,
    pub totp_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    /// Locked by an administrator, and the lock has not run out.
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        lock_in_force(self.locked, self.locked_until, now)
    }
}

/// Where to reach a user (for the notification service): the few account fields that needs,
/// nothing else. `Debug` does not show the address, so it cannot reach a log by accident.
#[derive(Clone)]
pub struct Contact {
    pub user_id: String,
    /// Normalised (see [`super::Email`]).
    pub email: String,
    pub display_name: String,
    pub locked: bool,
    pub locked_until: Option<DateTime<Utc>>,
}

impl Contact {
    /// Locked by an administrator, and the lock has not run out (as [`User::is_locked`]).
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        lock_in_force(self.locked, self.locked_until, now)
    }
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contact")
            .field("user_id", &self.user_id)
            .field("email", &"<redacted>")
            .field("locked", &self.locked)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// An admin lock holds while it is set and its end (if any) is still ahead.
fn lock_in_force(locked: bool, until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    locked && until.is_none_or(|until| until > now)
}

/// One login session: a family of refresh tokens, each replacing the previous.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub label: String,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A scoped API key. Only a hash of its secret exists anywhere after creation.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    /// The public part shown in listings (16 hex digits, unique).
    pub prefix: String,
    pub secret_hash: TokenHash,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Not revoked and not expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// An Ed25519 signing key, its private half sealed.
#[derive(Clone, Debug)]
pub struct SigningKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub sealed_private_key: Sealed,
    pub created_at: DateTime<Utc>,
    /// When it starts signing; it is published from `created_at`.
    pub signs_from: DateTime<Utc>,
    /// When it leaves the JWKS (set when its successor is made: every token it signed has
    /// expired by then).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A user's TOTP secret (sealed) and where its enrollment stands.
#[derive(Clone, Debug)]
pub struct TotpState {
    pub sealed_secret: Sealed,
    pub enabled: bool,
    /// When the enrollment waiting for its confirming code started.
    pub pending_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user, API key, signing key or TOTP state in a log line or panic message shows none of
    /// the secrets it carries.
    #[test]
    fn debug_output_carries_no_secret() {
        let now = Utc::now();
        let user = User {
            id: "u1".into(),
            email: "ada@example.com".into(),
            password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$U0FMVA$SEFTSA"),
            roles: vec![Role::Admin],
            locked: false,
            locked_reason: String::new(),
            locked_until: None,
            display_name: "Ada".into(),
            totp_enabled: false,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        let text = format!("{user:?}");
        assert!(text.contains("ada@example.com"), "{text}");
        assert!(
            !text.contains("argon2id") && !text.contains("SEFTSA"),
            "{text}"
        );

        let key = ApiKey {
            id: "k1".into(),
            user_id: "u1".into(),
            prefix: "0123456789abcdef".into(),
            secret_hash: TokenHash::new("5e884898da28047151d0e56f8dc62927"),
            name: "ci".into(),
            scopes: vec!["inventory:read".into()],
            created_at: now,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
        };
        assert!(!format!("{key:?}").contains("5e884898"), "{key:?}");

        let signing = SigningKey {
            kid: "k".into(),
            public_key: vec![1],
            sealed_private_key: Sealed::new(vec![0xC3; 8]),
            created_at: now,
            signs_from: now,
            expires_at: None,
        };
        assert!(!format!("{signing:?}").contains("195"), "{signing:?}");
        let totp = TotpState {
            sealed_secret: Sealed::new(vec![0xC3; 8]),
            enabled: true,
            pending_at: None,
        };
        assert!(!format!("{totp:?}").contains("195"), "{totp:?}");
    }

    /// A contact in a log line shows whose it is, never the address or the name.
    #[test]
    fn contact_debug_hides_the_address() {
        let contact = Contact {
            user_id: "u1".into(),
            email: "ada@example.com".into(),
            display_name: "Ada Lovelace".into(),
            locked: false,
            locked_until: None,
        };
        let text = format!("{contact:?}");
        assert!(text.contains("u1"), "{text}");
        assert!(
            !text.contains("ada@") && !text.contains("Lovelace"),
            "{text}"
        );
    }

    /// A lock whose end has passed no longer holds, for users and contacts alike.
    #[test]
    fn locks_run_out() {
        let now = Utc::now();
        let past = Some(now - chrono::Duration::minutes(1));
        let future = Some(now + chrono::Duration::minutes(1));
        let contact = |locked, locked_until| Contact {
            user_id: "u1".into(),
            email: String::new(),
            display_name: String::new(),
            locked,
            locked_until,
        };
        assert!(contact(true, None).is_locked(now));
        assert!(contact(true, future).is_locked(now));
        assert!(!contact(true, past).is_locked(now));
        assert!(!contact(false, None).is_locked(now));
    }
}
