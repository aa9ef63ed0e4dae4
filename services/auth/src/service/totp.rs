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
                if !self.store.use_totp_step(&user.id, step).await? {
                    return Err(AuthError::InvalidCredentials);
                }
                self.reseal_if_old(&user.id, &state.sealed_secret, &secret)
                    .await;
                Ok(())
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

    /// Re-seals a TOTP secret that was sealed under an older key (or before envelopes), so older
    /// master keys can eventually be dropped; TOTP secrets are otherwise never rewritten. Done
    /// after a successful code only, and best effort: a failure here must not fail the login.
    async fn reseal_if_old(&self, user_id: &str, sealed: &Sealed, secret: &[u8]) {
        if self.sealing.is_current(sealed.expose()) {
            return;
        }
        let result = match self.sealing.seal(secret) {
            Ok(new) => self
                .store
                .reseal_totp(user_id, sealed, &Sealed::new(new))
                .await
                .map_err(|err| crate::error_chain(&err)),
            Err(err) => Err(crate::error_chain(&err)),
        };
        match result {
            Ok(_) => tracing::info!(user_id, "TOTP secret re-sealed under the current key"),
            Err(error) => tracing::warn!(user_id, %error, "cannot re-seal a TOTP secret"),
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
        let event = crate::events::totp_enabled(user_id);
        if !self
            .store
            .enable_totp(user_id, step, &hashes, event)
            .await?
        {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use aes_gcm::aead::{Aead, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    use ironmesh_sealing::{Key, Keyring};

    use super::*;
    use crate::domain::Role;
    use crate::keys::SigningKeys;
    use crate::password::Hasher;
    use crate::service::TokenSettings;
    use crate::store::Store;
    use crate::throttle::{Lockout, Policy, Throttle};

    const MASTER: [u8; 32] = [0x42; 32];

    /// Seals like auth did before envelopes: `nonce || ciphertext`, no associated data.
    fn legacy_seal(plaintext: &[u8]) -> Vec<u8> {
        let nonce = [9u8; 12];
        let mut out = nonce.to_vec();
        out.extend(
            Aes256Gcm::new(&MASTER.into())
                .encrypt(Nonce::from_slice(&nonce), plaintext)
                .unwrap(),
        );
        out
    }

    /// A TOTP secret stored in the pre-envelope format still verifies a login code, and that
    /// login re-seals it as an envelope under the current key (so the legacy reading can one
    /// day go). On SQLite: the statements are the portable ones every backend runs.
    #[tokio::test]
    async fn a_legacy_totp_secret_works_and_is_resealed() {
        let (_dir, store) = Store::for_test().await;
        let sealing = Keyring::new(Key::derived(&MASTER)).accept_legacy();
        let policy = Policy {
            threshold: 5,
            window: Duration::from_secs(60),
            base: Duration::from_secs(1),
            max: Duration::from_secs(1),
        };
        let accounts = Accounts::new(
            store.clone(),
            Hasher::default(),
            Arc::new(SigningKeys::new(
                store.clone(),
                sealing.clone(),
                Duration::from_secs(3600),
                Duration::from_secs(30),
                Duration::from_secs(60),
                Duration::from_secs(5),
            )),
            TokenSettings {
                issuer: "test".into(),
                audience: "test".into(),
                access_ttl: chrono::Duration::minutes(5),
                refresh_ttl: chrono::Duration::days(1),
                race_window: chrono::Duration::seconds(2),
            },
            Lockout {
                throttle: Throttle::in_memory(),
                account: policy,
                address: policy,
            },
            sealing.clone(),
        );

        let hash = crate::domain::PasswordHash::new("$argon2id$unused");
        let now = Utc::now();
        assert!(
            store
                .insert_user(
                    "u1",
                    "ada@example.com",
                    &hash,
                    "Ada",
                    &[Role::Customer],
                    now,
                    crate::events::registered("u1", "u1", &[Role::Customer]),
                )
                .await
                .unwrap()
        );
        let secret = totp::new_secret().unwrap();
        let legacy = Sealed::new(legacy_seal(&secret));
        assert!(store.start_totp("u1", &legacy, now).await.unwrap());
        let enabled = crate::events::totp_enabled("u1");
        assert!(store.enable_totp("u1", 0, &[], enabled).await.unwrap());

        let user = accounts.me("u1").await.unwrap();
        let code = totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            6,
            1,
            30,
            secret.clone(),
            None,
            "check".into(),
        )
        .unwrap()
        .generate(unix_seconds(now));
        accounts
            .check_second_factor(&user, Some(SecondFactor::Totp(code)), now)
            .await
            .expect("the legacy-sealed secret verifies the code");

        let stored = store.totp("u1").await.unwrap().unwrap().sealed_secret;
        assert_ne!(stored, legacy, "re-sealed");
        assert!(sealing.is_current(stored.expose()));
        assert_eq!(sealing.open(stored.expose()).unwrap(), secret);
    }
}
