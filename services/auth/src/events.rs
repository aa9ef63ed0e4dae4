//! The events auth writes (payloads: `proto/ironmesh/auth/v1/events.proto`), one constructor per
//! event type. Each carries ids and non-secret facts only — never a password, token, secret,
//! hash, TOTP material or email address. The request id and trace come from the call context.

use chrono::{DateTime, Utc};
use ironmesh_outbox::NewEvent;
use ironmesh_proto::ironmesh::auth::v1 as pb;

use crate::domain::Role;

/// The actor of failed logins: nobody has authenticated.
pub const ANONYMOUS: &str = "anonymous";
/// The actor of what an operator does with `ironmesh admin` at the store (no principal there).
pub const OPERATOR: &str = "operator:cli";
/// The actor of what auth does on its own (key rotation, revoking a reused refresh family).
pub const AUTH_SERVICE: &str = "service:auth";

fn user_event<M: prost::Name>(
    event_type: &str,
    actor: &str,
    user_id: &str,
    message: &M,
) -> NewEvent {
    NewEvent::protobuf(event_type, "user", user_id, actor, message)
}

use ironmesh_runtime::time::timestamp;

fn roles(roles: &[Role]) -> Vec<i32> {
    roles
        .iter()
        .map(|r| crate::grpc::convert::role(*r))
        .collect()
}

/// `actor` is the user (self-registration) or [`OPERATOR`].
pub fn registered(actor: &str, user_id: &str, user_roles: &[Role]) -> NewEvent {
    let message = pb::UserRegistered {
        user_id: user_id.to_owned(),
        roles: roles(user_roles),
    };
    user_event("auth.user.registered", actor, user_id, &message)
}

pub fn login_succeeded(
    user_id: &str,
    session_id: &str,
    address: &str,
    second_factor: bool,
) -> NewEvent {
    let message = pb::LoginSucceeded {
        user_id: user_id.to_owned(),
        session_id: session_id.to_owned(),
        address: address.to_owned(),
        second_factor,
    };
    user_event("auth.login.succeeded", user_id, user_id, &message)
}

/// Why a login failed, as the event names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    InvalidCredentials,
    InvalidSecondFactor,
    Locked,
    TooManyAttempts,
}

impl LoginFailure {
    fn as_str(self) -> &'static str {
        match self {
            LoginFailure::InvalidCredentials => "invalid_credentials",
            LoginFailure::InvalidSecondFactor => "invalid_second_factor",
            LoginFailure::Locked => "locked",
            LoginFailure::TooManyAttempts => "too_many_attempts",
        }
    }
}

/// A failed login: its own aggregate (`login/<attempt id>`), by nobody.
pub fn login_failed(reason: LoginFailure, address: &str, user_id: Option<&str>) -> NewEvent {
    let message = pb::LoginFailed {
        reason: reason.as_str().to_owned(),
        address: address.to_owned(),
        user_id: user_id.unwrap_or_default().to_owned(),
    };
    let attempt = uuid::Uuid::now_v7().to_string();
    NewEvent::protobuf("auth.login.failed", "login", &attempt, ANONYMOUS, &message)
}

pub fn locked(actor: &str, user_id: &str, reason: &str, until: Option<DateTime<Utc>>) -> NewEvent {
    let message = pb::UserLocked {
        user_id: user_id.to_owned(),
        reason: reason.to_owned(),
        until: until.map(timestamp),
    };
    user_event("auth.user.locked", actor, user_id, &message)
}

pub fn unlocked(actor: &str, user_id: &str) -> NewEvent {
    let message = pb::UserUnlocked {
        user_id: user_id.to_owned(),
    };
    user_event("auth.user.unlocked", actor, user_id, &message)
}

pub fn roles_changed(actor: &str, user_id: &str, now_held: &[Role]) -> NewEvent {
    let message = pb::RolesChanged {
        user_id: user_id.to_owned(),
        roles: roles(now_held),
    };
    user_event("auth.user.roles_changed", actor, user_id, &message)
}

pub fn password_changed(user_id: &str, sessions_revoked: u64) -> NewEvent {
    let message = pb::PasswordChanged {
        user_id: user_id.to_owned(),
        sessions_revoked: i64::try_from(sessions_revoked).unwrap_or(i64::MAX),
    };
    user_event("auth.user.password_changed", user_id, user_id, &message)
}

pub fn totp_enabled(user_id: &str) -> NewEvent {
    let message = pb::TotpEnabled {
        user_id: user_id.to_owned(),
    };
    user_event("auth.user.totp_enabled", user_id, user_id, &message)
}

pub fn api_key_created(
    user_id: &str,
    api_key_id: &str,
    name: &str,
    scopes: &[String],
    expires_at: Option<DateTime<Utc>>,
) -> NewEvent {
    let message = pb::ApiKeyCreated {
        user_id: user_id.to_owned(),
        api_key_id: api_key_id.to_owned(),
        name: name.to_owned(),
        scopes: scopes.to_vec(),
        expires_at: expires_at.map(timestamp),
    };
    NewEvent::protobuf(
        "auth.api_key.created",
        "api_key",
        api_key_id,
        user_id,
        &message,
    )
}

pub fn api_key_revoked(user_id: &str, api_key_id: &str) -> NewEvent {
    let message = pb::ApiKeyRevoked {
        user_id: user_id.to_owned(),
        api_key_id: api_key_id.to_owned(),
    };
    NewEvent::protobuf(
        "auth.api_key.revoked",
        "api_key",
        api_key_id,
        user_id,
        &message,
    )
}

/// Why sessions ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    Logout,
    LogoutAll,
    Revoked,
    PasswordChanged,
    Locked,
    RefreshTokenReused,
}

impl Revocation {
    fn as_str(self) -> &'static str {
        match self {
            Revocation::Logout => "logout",
            Revocation::LogoutAll => "logout_all",
            Revocation::Revoked => "revoked",
            Revocation::PasswordChanged => "password_changed",
            Revocation::Locked => "locked",
            Revocation::RefreshTokenReused => "refresh_token_reused",
        }
    }
}

/// `count` sessions of `user_id` revoked (one named by `session_id`, or several).
pub fn sessions_revoked(
    actor: &str,
    user_id: &str,
    session_id: Option<&str>,
    count: u64,
    reason: Revocation,
) -> NewEvent {
    let message = pb::SessionsRevoked {
        user_id: user_id.to_owned(),
        session_id: session_id.unwrap_or_default().to_owned(),
        count: i64::try_from(count).unwrap_or(i64::MAX),
        reason: reason.as_str().to_owned(),
    };
    user_event("auth.session.revoked", actor, user_id, &message)
}

pub fn signing_key_rotated(key_id: &str) -> NewEvent {
    let message = pb::SigningKeyRotated {
        key_id: key_id.to_owned(),
    };
    NewEvent::protobuf(
        "auth.signing_key.rotated",
        "signing_key",
        key_id,
        AUTH_SERVICE,
        &message,
    )
}

pub fn user_deleted(user_id: &str) -> NewEvent {
    let message = pb::UserDeleted {
        user_id: user_id.to_owned(),
    };
    user_event("auth.user.deleted", user_id, user_id, &message)
}
