//! Sessions: register, login (with the lockout and the second factor), refresh-token rotation,
//! logout, password change, listing and revoking sessions.

use chrono::{DateTime, Utc};

use super::{Accounts, Origin, SecondFactor, Tokens};
use crate::domain::{
    AuthError, Email, Role, Rotation, Session, User, Violation, check_display_name,
    check_login_password, check_new_password,
};
use crate::events::{self, LoginFailure, Revocation};
use crate::password::Verdict;
use crate::store::NewRefresh;
use crate::tokens::{Subject, access_token, hash_secret, refresh_token};

impl Accounts {
    /// Creates a customer account. Every invalid field is reported at once.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
    ) -> Result<User, AuthError> {
        let mut violations = Vec::new();
        let email = Email::parse(email).map_err(|v| violations.push(v)).ok();
        let name = check_display_name(display_name)
            .map_err(|v| violations.push(v))
            .ok();
        if let Err(v) = check_new_password("password", password) {
            violations.push(v);
        }
        AuthError::check(violations)?;
        let (email, name) = (email.expect("checked"), name.expect("checked"));
        let hash = self.hasher.hash(password).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = Utc::now();
        let inserted = self
            .store
            .insert_user(
                &id,
                email.as_str(),
                &hash,
                &name,
                &[Role::Customer],
                now,
                events::registered(&id, &id, &[Role::Customer]),
            )
            .await?;
        if !inserted {
            return Err(AuthError::EmailTaken);
        }
        self.store.user_by_id(&id).await?.ok_or(AuthError::NotFound)
    }

    /// Checks the password and opens a session. Unknown email and wrong password fail alike and
    /// take alike long.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        second_factor: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<(User, Tokens), AuthError> {
        let mut violations = Vec::new();
        let email = Email::parse(email).map_err(|v| violations.push(v)).ok();
        if let Err(v) = check_login_password(password) {
            violations.push(v);
        }
        AuthError::check(violations)?;
        let email = email.expect("checked");
        let ip = origin.client_ip.as_deref();
        let failed =
            |reason, user_id| events::login_failed(reason, ip.unwrap_or_default(), user_id);
        if let Some(wait) = self.lockout.wait(&email, ip).await {
            self.store
                .record_event(failed(LoginFailure::TooManyAttempts, None))
                .await?;
            return Err(AuthError::TooManyAttempts(wait));
        }
        let Some(user) = self.store.user_by_email(email.as_str()).await? else {
            self.hasher.verify_dummy(password).await?;
            self.lockout.count_failure(&email, ip).await;
            self.store
                .record_event(failed(LoginFailure::InvalidCredentials, None))
                .await?;
            return Err(AuthError::InvalidCredentials);
        };
        match self.hasher.verify(&user.password_hash, password).await? {
            Verdict::Mismatch => {
                self.lockout.count_failure(&email, ip).await;
                self.store
                    .record_event(failed(LoginFailure::InvalidCredentials, Some(&user.id)))
                    .await?;
                return Err(AuthError::InvalidCredentials);
            }
            Verdict::Match => {}
            Verdict::MatchNeedsRehash => {
                let hash = self.hasher.hash(password).await?;
                self.store.set_password(&user.id, &hash, Utc::now()).await?;
            }
        }
        let now = Utc::now();
        if user.is_locked(now) {
            self.store
                .record_event(failed(LoginFailure::Locked, Some(&user.id)))
                .await?;
            return Err(AuthError::Locked);
        }
        if user.totp_enabled {
            match self.check_second_factor(&user, second_factor, now).await {
                Ok(()) => {}
                Err(AuthError::InvalidCredentials) => {
                    // Six digits are guessable: wrong codes count like wrong passwords.
                    self.lockout.count_failure(&email, ip).await;
                    self.store
                        .record_event(failed(LoginFailure::InvalidSecondFactor, Some(&user.id)))
                        .await?;
                    return Err(AuthError::InvalidCredentials);
                }
                Err(other) => return Err(other),
            }
        }
        let session_id = uuid::Uuid::now_v7().to_string();
        let (refresh, refresh_hash) = refresh_token()?;
        let refresh_expires_at = now + self.settings.refresh_ttl;
        self.store
            .open_session(
                &NewRefresh {
                    id: &uuid::Uuid::now_v7().to_string(),
                    family_id: &session_id,
                    user_id: &user.id,
                    token_hash: &refresh_hash,
                    created_at: now,
                    expires_at: refresh_expires_at,
                    label: &origin.label,
                    user_agent: origin.user_agent.as_deref(),
                    client_ip: origin.client_ip.as_deref(),
                },
                now,
                events::login_succeeded(
                    &user.id,
                    &session_id,
                    ip.unwrap_or_default(),
                    user.totp_enabled,
                ),
            )
            .await?;
        self.lockout.clear_account(&email).await;
        let tokens = self
            .tokens_for(&user, &session_id, refresh, refresh_expires_at, now)
            .await?;
        Ok((user, tokens))
    }

    async fn tokens_for(
        &self,
        user: &User,
        session_id: &str,
        refresh_token: String,
        refresh_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Tokens, AuthError> {
        let key = self.keys.active().await?;
        let subject = Subject {
            user_id: &user.id,
            session_id,
            roles: &user.roles,
        };
        let (access_token, access_expires_at) = access_token(
            &key,
            &self.settings.issuer,
            &self.settings.audience,
            &subject,
            now,
            self.settings.access_ttl,
        )?;
        Ok(Tokens {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
            session_id: session_id.to_owned(),
        })
    }

    /// Trades a refresh token for new tokens; the old one stops working. Presenting an already
    /// rotated token revokes its whole session (RFC 9700), unless it was rotated a moment ago by
    /// a concurrent request (then only this request fails).
    pub async fn refresh(&self, token: &str) -> Result<Tokens, AuthError> {
        if token.is_empty() || token.len() > 512 {
            return Err(AuthError::invalid(
                "refresh_token",
                "required, at most 512 characters",
            ));
        }
        let now = Utc::now();
        let (next, next_hash) = refresh_token()?;
        let expires_at = now + self.settings.refresh_ttl;
        let id = uuid::Uuid::now_v7().to_string();
        let template = NewRefresh {
            id: &id,
            family_id: "",
            user_id: "",
            token_hash: &next_hash,
            created_at: now,
            expires_at,
            label: "",
            user_agent: None,
            client_ip: None,
        };
        let rotation = self
            .store
            .rotate_refresh(
                &hash_secret(token),
                &template,
                now,
                self.settings.race_window,
            )
            .await?;
        match rotation {
            Rotation::Rotated { user_id, family_id } => {
                let user = self
                    .store
                    .user_by_id(&user_id)
                    .await?
                    .ok_or(AuthError::InvalidRefreshToken)?;
                if user.is_locked(now) {
                    return Err(AuthError::Locked);
                }
                self.tokens_for(&user, &family_id, next, expires_at, now)
                    .await
            }
            Rotation::Race => Err(AuthError::RefreshRace),
            Rotation::Reused => {
                tracing::warn!("refresh token reused; its session was revoked");
                Err(AuthError::InvalidRefreshToken)
            }
            Rotation::Invalid => Err(AuthError::InvalidRefreshToken),
        }
    }

    /// Ends the caller's session, or all of the user's sessions.
    pub async fn logout(
        &self,
        user_id: &str,
        session_id: Option<&str>,
        all: bool,
    ) -> Result<u64, AuthError> {
        let only = if all { None } else { session_id };
        if !all && only.is_none() {
            return Ok(0);
        }
        let reason = if all {
            Revocation::LogoutAll
        } else {
            Revocation::Logout
        };
        Ok(self
            .store
            .revoke_sessions(user_id, only, None, Utc::now(), |count| {
                events::sessions_revoked(user_id, user_id, only, count, reason)
            })
            .await?)
    }

    /// Changes the password after checking the current one; every other session is revoked.
    pub async fn change_password(
        &self,
        user_id: &str,
        session_id: Option<&str>,
        current: &str,
        new: &str,
    ) -> Result<u64, AuthError> {
        let mut violations = Vec::new();
        if current.is_empty() {
            violations.push(Violation {
                field: "current_password",
                description: "required".to_owned(),
            });
        }
        if let Err(v) = check_new_password("new_password", new) {
            violations.push(v);
        }
        AuthError::check(violations)?;
        let user = self.me(user_id).await?;
        if self.hasher.verify(&user.password_hash, current).await? == Verdict::Mismatch {
            return Err(AuthError::InvalidCredentials);
        }
        let hash = self.hasher.hash(new).await?;
        Ok(self
            .store
            .change_password(user_id, &hash, session_id, Utc::now(), |revoked| {
                events::password_changed(user_id, revoked)
            })
            .await?)
    }

    pub async fn sessions(&self, user_id: &str) -> Result<Vec<Session>, AuthError> {
        Ok(self.store.sessions(user_id, Utc::now()).await?)
    }

    /// Revokes one of the user's sessions; another user's session reads as not found.
    pub async fn revoke_session(&self, user_id: &str, session_id: &str) -> Result<(), AuthError> {
        if session_id.is_empty() {
            return Err(AuthError::invalid("session_id", "required"));
        }
        match self
            .store
            .revoke_sessions(user_id, Some(session_id), None, Utc::now(), |count| {
                events::sessions_revoked(
                    user_id,
                    user_id,
                    Some(session_id),
                    count,
                    Revocation::Revoked,
                )
            })
            .await?
        {
            0 => Err(AuthError::NotFound),
            _ => Ok(()),
        }
    }
}
