//! TOTP: the second factor at login (a code or a recovery code), enrollment and confirmation.

use chrono::{DateTime, Utc};

use super::{Accounts, SecondFactor, unix_seconds};
use crate::domain::{AuthError, Fault, Sealed, TokenHash, User};
use crate::tokens::hash_secret;
use crate::totp;

/// How long a TOTP enrollment waits for its confirming code.
const TOTP_ENROLLMENT_MINUTES: i64 = 10;

impl Accounts {
    pub(super) async fn check_second_factor(
        &self,
        user: &User,
        factor: Option<SecondFactor>,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        match factor {
            None => Err(AuthError::SecondFactorRequired),
            Some(SecondFactor::Totp(code)) => {
                let state = self
                    .store
                    .totp(&user.id)
                    .await?
                    .ok_or(AuthError::InvalidCredentials)?;
                let secret = self.sealing.open(state.sealed_secret.expose())?;
                let step = totp::matching_step(&secret, &code, unix_seconds(now))?
                    .ok_or(AuthError::InvalidCredentials)?;
                // A code is accepted once; a replay inside its window fails.
                let step = i64::try_from(step).map_err(|err| Fault::Totp(Box::new(err)))?;
                if self.store.use_totp_step(&user.id, step).await? {
                    Ok(())
                } else {
                    Err(AuthError::InvalidCredentials)
                }
            }
            Some(SecondFactor::Recovery(code)) => {
                let hash = hash_secret(&totp::normalise_recovery_code(&code));
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
            .start_totp(user_id, &Sealed::new(self.sealing.seal(&secret)?), now)
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
        let state = self
            .store
            .totp(user_id)
            .await?
            .ok_or(AuthError::TotpNotPending)?;
        if state.enabled {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        let fresh = state
            .pending_at
            .is_some_and(|at| now - at <= chrono::Duration::minutes(TOTP_ENROLLMENT_MINUTES));
        if !fresh {
            return Err(AuthError::TotpNotPending);
        }
        let secret = self.sealing.open(state.sealed_secret.expose())?;
        let Some(step) = totp::matching_step(&secret, code, unix_seconds(now))? else {
            return Err(AuthError::invalid(
                "totp_code",
                "does not match; check the authenticator's clock",
            ));
        };
        let codes = totp::recovery_codes()?;
        let hashes: Vec<TokenHash> = codes
            .iter()
            .map(|c| hash_secret(&totp::normalise_recovery_code(c)))
            .collect();
        let step = i64::try_from(step).map_err(|err| Fault::Totp(Box::new(err)))?;
        if !self.store.enable_totp(user_id, step, &hashes).await? {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        Ok(codes)
    }
}
