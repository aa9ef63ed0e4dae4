//! Password hashing: argon2id at the OWASP parameters (m = 19 MiB, t = 2, p = 1), PHC strings.
//!
//! Hashing is deliberately slow, so it never runs on the async threads: each hash runs on tokio's
//! blocking pool, and a semaphore sized to the machine's cores bounds how many run at once (a
//! login flood queues here instead of starving every other task of CPU). Unknown accounts are
//! checked against a dummy hash so they take as long as a wrong password.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

use crate::domain::AuthError;

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Mismatch,
    Match,
    /// Correct, but hashed with other parameters: store a fresh hash.
    MatchNeedsRehash,
}

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            dummy: Arc::new(OnceCell::new()),
        }
    }
}

impl Hasher {
    /// Runs `work` on the blocking pool, at most one per core at a time.
    async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self.permits.acquire().await.map_err(AuthError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(AuthError::internal)
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let password = password.to_owned();
        self.offload(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(AuthError::internal)
        })
        .await?
    }

    /// Checks `password` against `stored`.
    pub async fn verify(&self, stored: &str, password: &str) -> Result<Verdict, AuthError> {
        let stored = stored.to_owned();
        let password = password.to_owned();
        self.offload(move || {
            let parsed = PasswordHash::new(&stored).map_err(AuthError::internal)?;
            if argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_err()
            {
                return Ok(Verdict::Mismatch);
            }
            let current = parsed.algorithm.as_str() == "argon2id"
                && Params::try_from(&parsed).is_ok_and(|p| {
                    p.m_cost() == MEMORY_KIB
                        && p.t_cost() == ITERATIONS
                        && p.p_cost() == PARALLELISM
                });
            Ok(if current {
                Verdict::Match
            } else {
                Verdict::MatchNeedsRehash
            })
        })
        .await?
    }

    /// Spends the time of one verification for an account that does not exist.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), AuthError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| self.hash("ironmesh dummy password for timing"))
            .await?
            .clone();
        self.verify(&dummy, password).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_old_parameters_ask_for_a_rehash() {
        let hasher = Hasher::default();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            hasher.verify(&hash, "correct horse battery").await.unwrap(),
            Verdict::Match
        );
        assert_eq!(
            hasher.verify(&hash, "wrong horse battery").await.unwrap(),
            Verdict::Mismatch
        );

        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let old = weak
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            hasher.verify(&old, "correct horse battery").await.unwrap(),
            Verdict::MatchNeedsRehash
        );
    }
}
