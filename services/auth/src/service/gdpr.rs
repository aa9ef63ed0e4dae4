//! GDPR: exporting everything stored about a user (art. 15/20) and deleting the account (art. 17)
//! with the event that lets other services anonymise.

use chrono::{DateTime, Utc};
use ironmesh_interceptors::auth::api_key::API_KEY_PREFIX;

use super::{Accounts, SecondFactor};
use crate::domain::{AuthError, Fault, check_login_password};
use crate::password::Verdict;

impl Accounts {
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
        Ok(serde_json::to_vec_pretty(&document).map_err(Fault::Export)?)
    }

    /// Deletes the account after re-checking the password (and TOTP code when enabled), and
    /// emits `auth.user.deleted` through the outbox so other services can anonymise.
    pub async fn delete_account(
        &self,
        user_id: &str,
        password: &str,
        totp_code: &str,
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
        let deleted = self
            .store
            .delete_user(&user.id, crate::events::user_deleted(&user.id))
            .await?;
        if !deleted {
            return Err(AuthError::NotFound);
        }
        tracing::info!(user_id = %user.id, "account deleted");
        Ok(())
    }
}
