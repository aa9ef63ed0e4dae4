//! Password hashing: argon2id at the OWASP parameters (m = 19 MiB, t = 2, p = 1), PHC strings.
//!
//! Hashing is deliberately slow, so it never runs on the async threads: each hash runs on the
//! [`pool::HashPool`] — a thread per core at a lower OS priority behind a bounded queue — so a
//! login flood uses the idle CPU but not the CPU other RPCs need, and a full queue is refused
//! with RESOURCE_EXHAUSTED instead of waiting without bound. Unknown accounts are checked
//! against a dummy hash so they take as long as a wrong password.
//!
//! Each hash needs 19 MiB of working memory. Allocating (and the kernel zeroing) it per hash cost
//! about a fifth of a login under load (`make bench`), so the buffers are pooled: at most one per
//! concurrent hash, reused. argon2's `PasswordHasher` always allocates, so hashing and verifying
//! go through `hash_password_into_with_memory` here, producing and checking standard PHC strings.

use std::sync::Arc;

use argon2::password_hash::{Output, ParamsString, PasswordHash as Phc, SaltString};

use crate::domain::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::domain::{AuthError, Fault};

pub mod pool;

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// Why hashing or verifying could not run (a stored hash that does not parse, argon2 refusing
/// its input, the blocking pool gone). Never "the password is wrong": that is a [`Verdict`].
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2 failed: {0}")]
    Argon2(argon2::Error),
    #[error("the stored hash is not a usable PHC string: {0}")]
    Phc(argon2::password_hash::Error),
    #[error("the stored hash has no {0}")]
    Incomplete(&'static str),
    #[error("the hashing pool is closed")]
    Closed,
    /// Every hashing thread is busy and the queue is full: try again shortly.
    #[error("too many password hashes waiting")]
    Busy,
}

impl From<argon2::Error> for HashError {
    fn from(err: argon2::Error) -> Self {
        HashError::Argon2(err)
    }
}

impl From<argon2::password_hash::Error> for HashError {
    fn from(err: argon2::password_hash::Error) -> Self {
        HashError::Phc(err)
    }
}

impl From<HashError> for AuthError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => AuthError::Busy(pool::RETRY_AFTER),
            err => AuthError::Internal(Fault::Hashing(Box::new(err))),
        }
    }
}

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
    pool: pool::HashPool,
    dummy: Arc<OnceCell<PasswordHash>>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid params")
}

impl Default for Hasher {
    fn default() -> Self {
        Self {
            pool: pool::HashPool::for_this_machine(),
            dummy: Arc::new(OnceCell::new()),
            memory: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

/// Runs `work` with at least `blocks` blocks of working memory from `pool` (or new ones).
fn with_memory<T>(
    pool: &Mutex<Vec<Vec<Block>>>,
    blocks: usize,
    work: impl FnOnce(&mut [Block]) -> T,
) -> T {
    let mut memory = pool
        .lock()
        .pop()
        .filter(|m| m.len() >= blocks)
        .unwrap_or_else(|| vec![Block::default(); blocks]);
    let result = work(&mut memory[..blocks]);
    // Only buffers of the current size are worth keeping.
    if memory.len() == params().block_count() {
        pool.lock().push(memory);
    }
    result
}

fn hash_with(pool: &Mutex<Vec<Vec<Block>>>, password: &[u8]) -> Result<String, HashError> {
    let params = params();
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    with_memory(pool, params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password, salt_bytes, &mut out, memory)
    })?;
    let phc = Phc {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

fn verify_with(
    pool: &Mutex<Vec<Vec<Block>>>,
    stored: &str,
    password: &[u8],
) -> Result<Verdict, HashError> {
    let parsed = Phc::new(stored)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed)?;
    let expected = parsed.hash.ok_or(HashError::Incomplete("output"))?;
    let salt = parsed.salt.ok_or(HashError::Incomplete("salt"))?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    with_memory(pool, params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password, salt_bytes, &mut out, memory)
    })?;
    if !bool::from(out.as_slice().ct_eq(expected.as_bytes())) {
        return Ok(Verdict::Mismatch);
    }
    let current = algorithm == Algorithm::Argon2id
        && version == Version::V0x13
        && params.m_cost() == MEMORY_KIB
        && params.t_cost() == ITERATIONS
        && params.p_cost() == PARALLELISM;
    Ok(if current {
        Verdict::Match
    } else {
        Verdict::MatchNeedsRehash
    })
}

impl Hasher {
    /// Runs `work` on the hashing pool.
    async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        self.pool.run(work).await
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<PasswordHash, HashError> {
        let password = password.to_owned();
        let memory = self.memory.clone();
        let phc = self
            .offload(move || hash_with(&memory, password.as_bytes()))
            .await??;
        Ok(PasswordHash::new(phc))
    }

    /// Checks `password` against `stored`.
    pub async fn verify(
        &self,
        stored: &PasswordHash,
        password: &str,
    ) -> Result<Verdict, HashError> {
        let stored = stored.expose().clone();
        let password = password.to_owned();
        let memory = self.memory.clone();
        self.offload(move || verify_with(&memory, &stored, password.as_bytes()))
            .await?
    }

    /// Spends the time of one verification for an account that does not exist.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), HashError> {
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
            hash.expose().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.expose()
        );
        assert_eq!(
            hasher.verify(&hash, "correct horse battery").await.unwrap(),
            Verdict::Match
        );
        assert_eq!(
            hasher.verify(&hash, "wrong horse battery").await.unwrap(),
            Verdict::Mismatch
        );

        // Interoperable with the reference implementation both ways.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let parsed = Phc::new(hash.expose()).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            hasher
                .verify(&PasswordHash::new(reference), "correct horse battery")
                .await
                .unwrap(),
            Verdict::Match
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
            hasher
                .verify(&PasswordHash::new(old), "correct horse battery")
                .await
                .unwrap(),
            Verdict::MatchNeedsRehash
        );
    }
}
