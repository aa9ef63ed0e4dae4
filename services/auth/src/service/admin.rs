//! Administration: listing users, replacing roles, locking and unlocking accounts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use super::Accounts;
use crate::domain::{AuthError, Email, Role, User};
use crate::events::{self, Revocation};
use crate::store::UserFilter;

impl Accounts {
    /// A page of users for administrators; `page_token` is the last id of the previous page.
    pub async fn users(
        &self,
        page_size: i32,
        page_token: &str,
        email_contains: &str,
        role: Option<Role>,
        locked_only: bool,
    ) -> Result<(Vec<User>, String), AuthError> {
        let limit = match page_size {
            0 => 50,
            1..=200 => i64::from(page_size),
            _ => {
                return Err(AuthError::invalid("page_size", "must be between 0 and 200"));
            }
        };
        let after = decode_page_token(page_token)?;
        let rows = self
            .store
            .users(&UserFilter {
                after_id: &after,
                email_contains,
                role,
                locked_only,
                limit: limit + 1,
            })
            .await?;
        let more = rows.len() as i64 > limit;
        let rows: Vec<User> = rows.into_iter().take(limit as usize).collect();
        let next = match rows.last() {
            Some(last) if more => URL_SAFE_NO_PAD.encode(last.id.as_bytes()),
            _ => String::new(),
        };
        Ok((rows, next))
    }

    /// Replaces a user's roles. An administrator cannot take the admin role from themself (so
    /// the last admin cannot lock everyone out by accident).
    pub async fn set_roles(
        &self,
        caller: &str,
        user_id: &str,
        roles: &[Role],
    ) -> Result<User, AuthError> {
        if roles.is_empty() {
            return Err(AuthError::invalid("roles", "at least one role is required"));
        }
        if caller == user_id && !roles.contains(&Role::Admin) {
            return Err(AuthError::invalid(
                "roles",
                "administrators cannot remove their own admin role",
            ));
        }
        let mut roles = roles.to_vec();
        roles.dedup();
        let event = events::roles_changed(caller, user_id, &roles);
        if !self
            .store
            .set_roles(user_id, &roles, Utc::now(), event)
            .await?
        {
            return Err(AuthError::NotFound);
        }
        self.me(user_id).await
    }

    /// Locks an account (every session is revoked) or unlocks it (failed-login counters too);
    /// `caller` is the administrator.
    pub async fn set_lock(
        &self,
        caller: &str,
        user_id: &str,
        lock: Option<(&str, Option<DateTime<Utc>>)>,
    ) -> Result<User, AuthError> {
        if let Some((reason, _)) = lock
            && reason.trim().is_empty()
        {
            return Err(AuthError::invalid("reason", "required"));
        }
        let now = Utc::now();
        let event = match lock {
            Some((reason, until)) => events::locked(caller, user_id, reason, until),
            None => events::unlocked(caller, user_id),
        };
        if !self.store.set_lock(user_id, lock, now, event).await? {
            return Err(AuthError::NotFound);
        }
        let user = self.me(user_id).await?;
        match lock {
            Some(_) => {
                self.store
                    .revoke_sessions(user_id, None, None, now, |count| {
                        events::sessions_revoked(caller, user_id, None, count, Revocation::Locked)
                    })
                    .await?;
            }
            None => {
                // Unlocking also lifts a brute-force lockout of the account.
                if let Ok(email) = Email::parse(&user.email) {
                    self.lockout.clear_account(&email).await;
                }
            }
        }
        Ok(user)
    }
}

/// The id after which a page starts (a page token is the base64url of the previous page's last
/// id, opaque to clients).
fn decode_page_token(token: &str) -> Result<String, AuthError> {
    if token.is_empty() {
        return Ok(String::new());
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            AuthError::invalid("page_token", "not a page token from a previous response")
        })
}
