//! API keys: creation (the secret is shown once), listing, revocation, and resolving a presented
//! key for the authentication layer.

use chrono::{DateTime, Utc};
use ironmesh_interceptors::auth::api_key::API_KEY_PREFIX;
use subtle::ConstantTimeEq;

use super::Accounts;
use crate::domain::{ApiKey, AuthError, Violation, valid_scope};
use crate::events;
use crate::tokens::{api_key_secret, hash_secret};

impl Accounts {
    /// Creates an API key for the user; the secret is in the returned string only, never stored.
    pub async fn create_api_key(
        &self,
        user_id: &str,
        name: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(ApiKey, String), AuthError> {
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
        AuthError::check(violations)?;
        let (prefix, secret) = api_key_secret()?;
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let row = ApiKey {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_owned(),
            secret_hash: hash_secret(&secret),
            prefix: prefix.clone(),
            name: name.to_owned(),
            scopes,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let event =
            events::api_key_created(user_id, &row.id, &row.name, &row.scopes, row.expires_at);
        self.store.insert_api_key(&row, event).await?;
        Ok((row, format!("{API_KEY_PREFIX}{prefix}_{secret}")))
    }

    pub async fn api_keys(
        &self,
        user_id: &str,
        include_inactive: bool,
    ) -> Result<Vec<ApiKey>, AuthError> {
        let now = Utc::now();
        let mut keys = self.store.api_keys(user_id).await?;
        if !include_inactive {
            keys.retain(|k| k.is_active(now));
        }
        Ok(keys)
    }

    /// Revokes one of the user's keys; another user's key reads as not found.
    pub async fn revoke_api_key(&self, user_id: &str, id: &str) -> Result<ApiKey, AuthError> {
        self.store
            .revoke_api_key(
                user_id,
                id,
                Utc::now(),
                events::api_key_revoked(user_id, id),
            )
            .await?
            .ok_or(AuthError::NotFound)
    }

    /// Resolves a presented API key: the key's row if it exists, matches, is active, and its
    /// owner is not locked. Every other case is the same `InvalidCredentials`.
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<ApiKey, AuthError> {
        if presented.is_empty() {
            return Err(AuthError::invalid("api_key", "required"));
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
        // Constant time: the prefix is public, the comparison must not say how much matched.
        let matches: bool = key
            .secret_hash
            .expose()
            .as_bytes()
            .ct_eq(hash_secret(secret).expose().as_bytes())
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
}
