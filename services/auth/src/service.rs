//! The account and session operations, over the store, the hasher and the key ring. No proto
//! here: `grpc.rs` translates.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::domain::{
    AuthError, Email, Role, Violation, check_display_name, check_login_password, check_new_password,
};
use crate::keys::{KeyRing, PublicKey};
use crate::password::{Hasher, Verdict};
use crate::totp;
use ironmesh_interceptors::auth::api_key::API_KEY_PREFIX;
use ironmesh_sealing::Keyring;
use subtle::ConstantTimeEq;

use crate::store::{
    ApiKeyRow, NewRefresh, OutboxEvent, Rotation, SessionRow, Store, UserFilter, UserRow,
};
use crate::throttle::{Policy, Throttle};
use crate::tokens::{Subject, access_token, api_key_secret, hash_refresh_token, refresh_token};

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

/// Tokens handed out by login and refresh.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub session_id: String,
}

/// Where a login comes from (recorded on the session).
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub label: String,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    hasher: Hasher,
    keys: Arc<KeyRing>,
    settings: TokenSettings,
    guard: Guard,
    sealer: Keyring,
}

/// The second factor a login presents.
#[derive(Clone, Debug)]
pub enum SecondFactor {
    Totp(String),
    Recovery(String),
}

/// How long a TOTP enrollment waits for its confirming code.
const TOTP_ENROLLMENT_MINUTES: i64 = 10;

fn unix_seconds(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

/// Brute-force protection: the counters and the rule per kind of key.
#[derive(Clone)]
pub struct Guard {
    pub throttle: Throttle,
    pub account: Policy,
    pub address: Policy,
}

fn account_key(email: &Email) -> String {
    format!("account:{}", email.as_str())
}

fn address_key(ip: &str) -> String {
    format!("address:{ip}")
}

fn invalid(violations: Vec<Violation>) -> Result<(), AuthError> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(AuthError::Invalid(violations))
    }
}

impl Accounts {
    pub fn new(
        store: Store,
        hasher: Hasher,
        keys: Arc<KeyRing>,
        settings: TokenSettings,
        guard: Guard,
        sealer: Keyring,
    ) -> Self {
        Self {
            store,
            hasher,
            keys,
            settings,
            guard,
            sealer,
        }
    }

    /// Refuses a login while its account or address is locked out.
    async fn check_lockout(&self, email: &Email, origin: &Origin) -> Result<(), AuthError> {
        let throttle = &self.guard.throttle;
        let mut wait = throttle.locked_for(&account_key(email)).await;
        if let Some(ip) = &origin.client_ip
            && let Some(address) = throttle.locked_for(&address_key(ip)).await
        {
            wait = Some(wait.map_or(address, |w| w.max(address)));
        }
        match wait {
            Some(wait) => Err(AuthError::TooManyAttempts(wait)),
            None => Ok(()),
        }
    }

    /// Counts a failed login against the account and the address.
    async fn count_failure(&self, email: &Email, origin: &Origin) {
        let guard = &self.guard;
        if guard
            .throttle
            .fail(&account_key(email), &guard.account)
            .await
            .is_some()
        {
            tracing::warn!("account locked out after repeated failed logins");
        }
        if let Some(ip) = &origin.client_ip
            && guard
                .throttle
                .fail(&address_key(ip), &guard.address)
                .await
                .is_some()
        {
            tracing::warn!(client_ip = %ip, "address locked out after repeated failed logins");
        }
    }

    /// Creates a customer account. Every invalid field is reported at once.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
    ) -> Result<UserRow, AuthError> {
        let mut violations = Vec::new();
        let email = Email::parse(email).map_err(|v| violations.push(v)).ok();
        let name = check_display_name(display_name)
            .map_err(|v| violations.push(v))
            .ok();
        if let Err(v) = check_new_password("password", password) {
            violations.push(v);
        }
        invalid(violations)?;
        let (email, name) = (email.expect("checked"), name.expect("checked"));
        let hash = self.hasher.hash(password).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = Utc::now();
        self.store
            .insert_user(&id, email.as_str(), &hash, &name, &[Role::Customer], now)
            .await?;
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
    ) -> Result<(UserRow, Tokens), AuthError> {
        let mut violations = Vec::new();
        let email = Email::parse(email).map_err(|v| violations.push(v)).ok();
        if let Err(v) = check_login_password(password) {
            violations.push(v);
        }
        invalid(violations)?;
        let email = email.expect("checked");
        self.check_lockout(&email, origin).await?;
        let Some(user) = self.store.user_by_email(email.as_str()).await? else {
            self.hasher.verify_dummy(password).await?;
            self.count_failure(&email, origin).await;
            return Err(AuthError::InvalidCredentials);
        };
        match self.hasher.verify(&user.password_hash, password).await? {
            Verdict::Mismatch => {
                self.count_failure(&email, origin).await;
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
            return Err(AuthError::Locked);
        }
        if user.totp_enabled {
            match self.check_second_factor(&user, second_factor, now).await {
                Ok(()) => {}
                Err(AuthError::InvalidCredentials) => {
                    // Six digits are guessable: wrong codes count like wrong passwords.
                    self.count_failure(&email, origin).await;
                    return Err(AuthError::InvalidCredentials);
                }
                Err(other) => return Err(other),
            }
        }
        let session_id = uuid::Uuid::now_v7().to_string();
        let (refresh, refresh_hash) = refresh_token()?;
        let refresh_expires_at = now + self.settings.refresh_ttl;
        self.store
            .insert_refresh(&NewRefresh {
                id: &uuid::Uuid::now_v7().to_string(),
                family_id: &session_id,
                user_id: &user.id,
                token_hash: &refresh_hash,
                created_at: now,
                expires_at: refresh_expires_at,
                label: &origin.label,
                user_agent: origin.user_agent.as_deref(),
                client_ip: origin.client_ip.as_deref(),
            })
            .await?;
        self.store.record_login(&user.id, now).await?;
        self.guard.throttle.reset(&account_key(&email)).await;
        let tokens = self
            .tokens_for(&user, &session_id, refresh, refresh_expires_at, now)
            .await?;
        Ok((user, tokens))
    }

    async fn tokens_for(
        &self,
        user: &UserRow,
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
            return Err(AuthError::Invalid(vec![Violation {
                field: "refresh_token",
                description: "required, at most 512 characters".to_owned(),
            }]));
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
                &hash_refresh_token(token),
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

    pub async fn me(&self, user_id: &str) -> Result<UserRow, AuthError> {
        self.store
            .user_by_id(user_id)
            .await?
            .ok_or(AuthError::NotFound)
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
        self.store
            .revoke_sessions(user_id, only, None, Utc::now())
            .await
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
        invalid(violations)?;
        let user = self.me(user_id).await?;
        if self.hasher.verify(&user.password_hash, current).await? == Verdict::Mismatch {
            return Err(AuthError::InvalidCredentials);
        }
        let hash = self.hasher.hash(new).await?;
        let now = Utc::now();
        self.store.set_password(user_id, &hash, now).await?;
        self.store
            .revoke_sessions(user_id, None, session_id, now)
            .await
    }

    pub async fn sessions(&self, user_id: &str) -> Result<Vec<SessionRow>, AuthError> {
        self.store.sessions(user_id, Utc::now()).await
    }

    /// Revokes one of the user's sessions; another user's session reads as not found.
    pub async fn revoke_session(&self, user_id: &str, session_id: &str) -> Result<(), AuthError> {
        if session_id.is_empty() {
            return Err(AuthError::Invalid(vec![Violation {
                field: "session_id",
                description: "required".to_owned(),
            }]));
        }
        match self
            .store
            .revoke_sessions(user_id, Some(session_id), None, Utc::now())
            .await?
        {
            0 => Err(AuthError::NotFound),
            _ => Ok(()),
        }
    }

    /// A page of users for administrators; `page_token` is the last id of the previous page.
    pub async fn users(
        &self,
        page_size: i32,
        page_token: &str,
        email_contains: &str,
        role: Option<Role>,
        locked_only: bool,
    ) -> Result<(Vec<UserRow>, String), AuthError> {
        let limit = match page_size {
            0 => 50,
            1..=200 => i64::from(page_size),
            _ => {
                return Err(AuthError::Invalid(vec![Violation {
                    field: "page_size",
                    description: "must be between 0 and 200".to_owned(),
                }]));
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
        let rows: Vec<UserRow> = rows.into_iter().take(limit as usize).collect();
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
    ) -> Result<UserRow, AuthError> {
        if roles.is_empty() {
            return Err(AuthError::Invalid(vec![Violation {
                field: "roles",
                description: "at least one role is required".to_owned(),
            }]));
        }
        if caller == user_id && !roles.contains(&Role::Admin) {
            return Err(AuthError::Invalid(vec![Violation {
                field: "roles",
                description: "administrators cannot remove their own admin role".to_owned(),
            }]));
        }
        let mut roles = roles.to_vec();
        roles.dedup();
        if !self.store.set_roles(user_id, &roles, Utc::now()).await? {
            return Err(AuthError::NotFound);
        }
        self.me(user_id).await
    }

    /// Locks an account (every session is revoked) or unlocks it (failed-login counters too).
    pub async fn set_lock(
        &self,
        user_id: &str,
        lock: Option<(&str, Option<DateTime<Utc>>)>,
    ) -> Result<UserRow, AuthError> {
        if let Some((reason, _)) = lock
            && reason.trim().is_empty()
        {
            return Err(AuthError::Invalid(vec![Violation {
                field: "reason",
                description: "required".to_owned(),
            }]));
        }
        let now = Utc::now();
        if !self.store.set_lock(user_id, lock, now).await? {
            return Err(AuthError::NotFound);
        }
        let user = self.me(user_id).await?;
        match lock {
            Some(_) => {
                self.store.revoke_sessions(user_id, None, None, now).await?;
            }
            None => {
                // Unlocking also lifts a brute-force lockout of the account.
                if let Ok(email) = Email::parse(&user.email) {
                    self.guard.throttle.reset(&account_key(&email)).await;
                }
            }
        }
        Ok(user)
    }

    async fn check_second_factor(
        &self,
        user: &UserRow,
        factor: Option<SecondFactor>,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        match factor {
            None => Err(AuthError::SecondFactorRequired),
            Some(SecondFactor::Totp(code)) => {
                let (sealed, _, _) = self
                    .store
                    .totp(&user.id)
                    .await?
                    .ok_or(AuthError::InvalidCredentials)?;
                let secret = self.sealer.open(&sealed).map_err(AuthError::internal)?;
                let step = totp::matching_step(&secret, &code, unix_seconds(now))?
                    .ok_or(AuthError::InvalidCredentials)?;
                // A code is accepted once; a replay inside its window fails.
                let step = i64::try_from(step).map_err(AuthError::internal)?;
                if self.store.use_totp_step(&user.id, step).await? {
                    Ok(())
                } else {
                    Err(AuthError::InvalidCredentials)
                }
            }
            Some(SecondFactor::Recovery(code)) => {
                let hash = hash_refresh_token(&totp::normalise_recovery_code(&code));
                if self.store.use_recovery_code(&user.id, &hash, now).await? {
                    tracing::info!(user_id = %user.id, "recovery code used");
                    Ok(())
                } else {
                    Err(AuthError::InvalidCredentials)
                }
            }
        }
    }

    /// Starts TOTP enrollment: a new secret, returned as an `otpauth://` URI and base32, to be
    /// confirmed with a code within ten minutes.
    pub async fn enroll_totp(
        &self,
        user_id: &str,
    ) -> Result<(String, String, DateTime<Utc>), AuthError> {
        let user = self.me(user_id).await?;
        if user.totp_enabled {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        let secret = totp::new_secret()?;
        let (uri, base32) = totp::provisioning(&secret, &user.email)?;
        let now = Utc::now();
        if !self
            .store
            .start_totp(
                user_id,
                &self.sealer.seal(&secret).map_err(AuthError::internal)?,
                now,
            )
            .await?
        {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        Ok((
            uri,
            base32,
            now + chrono::Duration::minutes(TOTP_ENROLLMENT_MINUTES),
        ))
    }

    /// Confirms enrollment with a current code; returns the recovery codes (shown once).
    pub async fn confirm_totp(&self, user_id: &str, code: &str) -> Result<Vec<String>, AuthError> {
        let now = Utc::now();
        let (sealed, enabled, pending_at) = self
            .store
            .totp(user_id)
            .await?
            .ok_or(AuthError::TotpNotPending)?;
        if enabled {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        let fresh = pending_at
            .is_some_and(|at| now - at <= chrono::Duration::minutes(TOTP_ENROLLMENT_MINUTES));
        if !fresh {
            return Err(AuthError::TotpNotPending);
        }
        let secret = self.sealer.open(&sealed).map_err(AuthError::internal)?;
        let Some(step) = totp::matching_step(&secret, code, unix_seconds(now))? else {
            return Err(AuthError::Invalid(vec![Violation {
                field: "totp_code",
                description: "does not match; check the authenticator's clock".to_owned(),
            }]));
        };
        let codes = totp::recovery_codes()?;
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| hash_refresh_token(&totp::normalise_recovery_code(c)))
            .collect();
        let step = i64::try_from(step).map_err(AuthError::internal)?;
        if !self.store.enable_totp(user_id, step, &hashes).await? {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        Ok(codes)
    }

    /// Everything stored about the user, as one JSON document (GDPR art. 15/20): the profile,
    /// roles, second-factor state, sessions and API key metadata — never secrets or hashes.
    pub async fn export(&self, user_id: &str) -> Result<Vec<u8>, AuthError> {
        let user = self.me(user_id).await?;
        let sessions = self.sessions(user_id).await?;
        let keys = self.store.api_keys(user_id).await?;
        let time = |t: DateTime<Utc>| t.to_rfc3339();
        let document = serde_json::json!({
            "exported_at": time(Utc::now()),
            "account": {
                "user_id": user.id,
                "email": user.email,
                "display_name": user.display_name,
                "roles": user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "totp_enabled": user.totp_enabled,
                "locked": user.locked,
                "created_at": time(user.created_at),
                "updated_at": time(user.updated_at),
                "last_login_at": user.last_login_at.map(time),
            },
            "sessions": sessions.iter().map(|s| serde_json::json!({
                "session_id": s.id,
                "label": s.label,
                "user_agent": s.user_agent,
                "ip_address": s.client_ip,
                "created_at": time(s.created_at),
                "last_used_at": time(s.last_used_at),
                "expires_at": time(s.expires_at),
            })).collect::<Vec<_>>(),
            "api_keys": keys.iter().map(|k| serde_json::json!({
                "api_key_id": k.id,
                "name": k.name,
                "prefix": format!("{API_KEY_PREFIX}{}", k.prefix),
                "scopes": k.scopes,
                "created_at": time(k.created_at),
                "expires_at": k.expires_at.map(time),
                "last_used_at": k.last_used_at.map(time),
                "revoked_at": k.revoked_at.map(time),
            })).collect::<Vec<_>>(),
        });
        serde_json::to_vec_pretty(&document).map_err(AuthError::internal)
    }

    /// Deletes the account after re-checking the password (and TOTP code when enabled), and
    /// emits `auth.user.deleted` through the outbox so other services can anonymise.
    pub async fn delete_account(
        &self,
        user_id: &str,
        password: &str,
        totp_code: &str,
        trace: (Option<&str>, Option<&str>),
    ) -> Result<(), AuthError> {
        check_login_password(password).map_err(|v| AuthError::Invalid(vec![v]))?;
        let user = self.me(user_id).await?;
        if self.hasher.verify(&user.password_hash, password).await? == Verdict::Mismatch {
            return Err(AuthError::InvalidCredentials);
        }
        let now = Utc::now();
        if user.totp_enabled {
            let factor = (!totp_code.is_empty()).then(|| SecondFactor::Totp(totp_code.to_owned()));
            self.check_second_factor(&user, factor, now).await?;
        }
        let payload = serde_json::to_vec(&serde_json::json!({ "user_id": user.id }))
            .map_err(AuthError::internal)?;
        let event_id = uuid::Uuid::now_v7().to_string();
        let deleted = self
            .store
            .delete_user(
                &user.id,
                &OutboxEvent {
                    id: &event_id,
                    event_type: "auth.user.deleted",
                    aggregate_type: "user",
                    aggregate_id: &user.id,
                    occurred_at: now,
                    actor: &user.id,
                    payload: &payload,
                    request_id: trace.0,
                    traceparent: trace.1,
                },
            )
            .await?;
        if !deleted {
            return Err(AuthError::NotFound);
        }
        tracing::info!(user_id = %user.id, event_id = %event_id, "account deleted");
        Ok(())
    }

    /// Creates an API key for the user; the secret is in the returned string only, never stored.
    pub async fn create_api_key(
        &self,
        user_id: &str,
        name: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(ApiKeyRow, String), AuthError> {
        let now = Utc::now();
        let mut violations = Vec::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            violations.push(Violation {
                field: "name",
                description: "required, at most 100 characters".to_owned(),
            });
        }
        if scopes.is_empty() || scopes.len() > 20 || !scopes.iter().all(|s| valid_scope(s)) {
            violations.push(Violation {
                field: "scopes",
                description: "1 to 20 scopes of lower-case letters, digits and : . _ -".to_owned(),
            });
        }
        if expires_at.is_some_and(|at| at <= now) {
            violations.push(Violation {
                field: "expires_at",
                description: "must be in the future".to_owned(),
            });
        }
        invalid(violations)?;
        let (prefix, secret) = api_key_secret()?;
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let row = ApiKeyRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_owned(),
            secret_hash: hash_refresh_token(&secret),
            prefix: prefix.clone(),
            name: name.to_owned(),
            scopes,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_api_key(&row).await?;
        Ok((row, format!("{API_KEY_PREFIX}{prefix}_{secret}")))
    }

    pub async fn api_keys(
        &self,
        user_id: &str,
        include_inactive: bool,
    ) -> Result<Vec<ApiKeyRow>, AuthError> {
        let now = Utc::now();
        let mut keys = self.store.api_keys(user_id).await?;
        if !include_inactive {
            keys.retain(|k| k.is_active(now));
        }
        Ok(keys)
    }

    /// Revokes one of the user's keys; another user's key reads as not found.
    pub async fn revoke_api_key(&self, user_id: &str, id: &str) -> Result<ApiKeyRow, AuthError> {
        self.store
            .revoke_api_key(user_id, id, Utc::now())
            .await?
            .ok_or(AuthError::NotFound)
    }

    /// Resolves a presented API key: the key's row if it exists, matches, is active, and its
    /// owner is not locked. Every other case is the same `InvalidCredentials`.
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<ApiKeyRow, AuthError> {
        if presented.is_empty() {
            return Err(AuthError::Invalid(vec![Violation {
                field: "api_key",
                description: "required".to_owned(),
            }]));
        }
        let (prefix, secret) = presented
            .strip_prefix(API_KEY_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .filter(|(prefix, secret)| {
                prefix.len() == 16
                    && prefix.bytes().all(|b| b.is_ascii_hexdigit())
                    && secret.len() < 100
            })
            .ok_or(AuthError::InvalidApiKey)?;
        let key = self
            .store
            .api_key_by_prefix(prefix)
            .await?
            .ok_or(AuthError::InvalidApiKey)?;
        let matches: bool = key
            .secret_hash
            .as_bytes()
            .ct_eq(hash_refresh_token(secret).as_bytes())
            .into();
        let now = Utc::now();
        if !matches || !key.is_active(now) {
            return Err(AuthError::InvalidApiKey);
        }
        let owner = self.me(&key.user_id).await?;
        if owner.is_locked(now) {
            return Err(AuthError::InvalidApiKey);
        }
        self.store.touch_api_key(&key.id, now).await?;
        Ok(key)
    }

    pub async fn jwks(&self) -> Result<Vec<PublicKey>, AuthError> {
        self.keys.jwks().await
    }
}

fn decode_page_token(token: &str) -> Result<String, AuthError> {
    if token.is_empty() {
        return Ok(String::new());
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            AuthError::Invalid(vec![Violation {
                field: "page_token",
                description: "not a page token from a previous response".to_owned(),
            }])
        })
}

/// Scopes: lower-case letters, digits and `: . _ -`, starting with a letter or digit, ≤ 64.
fn valid_scope(scope: &str) -> bool {
    (1..=64).contains(&scope.len())
        && scope
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && scope
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::valid_scope;

    /// The contract's published scope rule (`ironmesh.api.v1.field_rules` on
    /// `CreateApiKeyRequest.scopes`) accepts exactly what [`valid_scope`] accepts.
    #[test]
    fn the_contract_states_the_scope_rule_enforced_here() {
        use prost_reflect::{DescriptorPool, Value};
        let pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let rules = pool
            .get_extension_by_name("ironmesh.api.v1.field_rules")
            .unwrap();
        let field = pool
            .get_message_by_name("ironmesh.auth.v1.CreateApiKeyRequest")
            .unwrap()
            .get_field_by_name("scopes")
            .unwrap();
        let options = field.options();
        let Value::Message(rules) = &*options.get_extension(&rules) else {
            panic!("no rules on scopes");
        };
        let text = |name: &str| rules.get_field_by_name(name).unwrap().into_owned();
        let pattern = regex::Regex::new(text("pattern").as_str().unwrap()).unwrap();
        let max = text("max_chars").as_u32().unwrap() as usize;
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for scope in [
            "inventory:read",
            "a",
            "0",
            "a.b_c-d:e",
            long.as_str(),
            too_long.as_str(),
            "",
            "Inventory:read",
            ":read",
            "-a",
            "a b",
            "a/b",
            "é",
        ] {
            let published = pattern.is_match(scope) && scope.chars().count() <= max;
            assert_eq!(published, valid_scope(scope), "{scope:?}");
        }
        assert_eq!(text("min_items").as_u32(), Some(1));
        assert_eq!(text("max_items").as_u32(), Some(20));
    }
}
