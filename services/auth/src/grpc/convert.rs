//! Domain ⇄ proto, as plain functions: no logic beyond the shape of the messages.

use chrono::{DateTime, Utc};
use ironmesh_proto::ironmesh::auth::v1 as pb;

use crate::domain::{ApiKey, AuthError, Contact, Role, Session, User};
use crate::keys::PublicKey;
use crate::service::{SecondFactor, Tokens};

pub fn time(field: &'static str, at: &prost_types::Timestamp) -> Result<DateTime<Utc>, AuthError> {
    DateTime::<Utc>::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(u32::MAX))
        .ok_or_else(|| AuthError::invalid(field, "not a valid time"))
}

pub fn api_key(row: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        api_key_id: row.id,
        user_id: row.user_id,
        name: row.name,
        prefix: format!("imk_{}", row.prefix),
        scopes: row.scopes,
        created_at: Some(timestamp(row.created_at)),
        expires_at: row.expires_at.map(timestamp),
        last_used_at: row.last_used_at.map(timestamp),
        revoked_at: row.revoked_at.map(timestamp),
    }
}

pub use ironmesh_runtime::time::timestamp;

pub fn role(role: Role) -> i32 {
    match role {
        Role::Customer => pb::Role::Customer as i32,
        Role::Operator => pb::Role::Operator as i32,
        Role::Admin => pb::Role::Admin as i32,
    }
}

/// A proto role to a domain role: `None` for ROLE_UNSPECIFIED, an error for unknown values.
pub fn role_filter(value: i32) -> Result<Option<Role>, AuthError> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Unspecified) => Ok(None),
        Ok(pb::Role::Customer) => Ok(Some(Role::Customer)),
        Ok(pb::Role::Operator) => Ok(Some(Role::Operator)),
        Ok(pb::Role::Admin) => Ok(Some(Role::Admin)),
        Err(_) => Err(AuthError::invalid("role", "unknown role")),
    }
}

pub fn user(row: User) -> pb::User {
    pb::User {
        user_id: row.id,
        email: row.email,
        display_name: row.display_name,
        roles: row.roles.into_iter().map(role).collect(),
        totp_enabled: row.totp_enabled,
        locked: row.locked,
        locked_reason: row.locked_reason,
        locked_until: row.locked_until.map(timestamp),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        last_login_at: row.last_login_at.map(timestamp),
    }
}

/// `locked` says whether the lock is in force at `now`.
pub fn contact(row: Contact, now: DateTime<Utc>) -> pb::GetUserContactResponse {
    pb::GetUserContactResponse {
        locked: row.is_locked(now),
        user_id: row.user_id,
        email: row.email,
        display_name: row.display_name,
    }
}

pub fn tokens(tokens: Tokens) -> pb::TokenPair {
    let now = Utc::now();
    pb::TokenPair {
        access_token: tokens.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: (tokens.access_expires_at - now).num_seconds().max(0),
        access_token_expires_at: Some(timestamp(tokens.access_expires_at)),
        refresh_token: tokens.refresh_token,
        refresh_token_expires_at: Some(timestamp(tokens.refresh_expires_at)),
        session_id: tokens.session_id,
    }
}

pub fn session(row: Session, current: Option<&str>) -> pb::Session {
    pb::Session {
        current: current == Some(row.id.as_str()),
        session_id: row.id,
        label: row.label,
        user_agent: row.user_agent.unwrap_or_default(),
        ip_address: row.client_ip.unwrap_or_default(),
        created_at: Some(timestamp(row.created_at)),
        last_used_at: Some(timestamp(row.last_used_at)),
        expires_at: Some(timestamp(row.expires_at)),
    }
}

pub fn jwk(key: PublicKey) -> pb::Jwk {
    pb::Jwk {
        kty: "OKP".to_owned(),
        crv: "Ed25519".to_owned(),
        x: key.x,
        kid: key.kid,
        alg: "EdDSA".to_owned(),
        r#use: "sig".to_owned(),
    }
}

pub fn second_factor(factor: &pb::login_request::SecondFactor) -> SecondFactor {
    match factor {
        pb::login_request::SecondFactor::TotpCode(code) => SecondFactor::Totp(code.clone()),
        pb::login_request::SecondFactor::RecoveryCode(code) => SecondFactor::Recovery(code.clone()),
    }
}
