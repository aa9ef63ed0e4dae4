//! The argon2 bound: production argon2id hashing timed in the bench process, one hash after
//! another on one thread in reused memory (what the bound is made of), and for diagnosis the way
//! the server computes them (on a worker thread, allocating per hash) and on every core at once.

use std::time::{Duration, Instant};

use ::argon2::{Algorithm, Argon2, Params, Version};

use super::PASSWORD;
use crate::error::BenchError;
use crate::token;

/// Production argon2id parameters (`services/auth/src/password.rs`): 19 MiB, 2 passes, 1 lane.
pub(super) const MEMORY_KIB: u32 = 19 * 1024;
pub(super) const ITERATIONS: u32 = 2;
pub(super) const PARALLELISM: u32 = 1;

/// Production argon2id hashing timed in the bench process.
#[derive(Clone, Copy, Debug)]
pub(super) struct HashTiming {
    /// Mean and fastest time of one hash, one after another on one thread, in reused memory:
    /// the cost of argon2 itself, what the bound is made of.
    pub secs_per_hash: f64,
    pub fastest_secs_per_hash: f64,
    /// Mean time of one hash as the server computes it: on a worker thread, allocating (and
    /// the kernel faulting in) 19 MiB per hash (diagnostic).
    pub server_way_secs_per_hash: f64,
    /// Hashes per second with one thread per core hashing at once, the server's way (diagnostic).
    pub parallel_rate: f64,
}

/// Times `n` production hashes on this thread into one reused block of memory (the bound), `n`
/// as the server computes them (allocating per hash, on a spawned thread), then `n` on each of
/// `cores` threads at once, also as the server computes them.
pub(super) fn time_hashing(n: u32, cores: usize) -> Result<HashTiming, BenchError> {
    let (secs_per_hash, fastest_secs_per_hash) = time_argon2(n, true)?;
    let (server_way_secs_per_hash, _) = std::thread::scope(|scope| {
        scope
            .spawn(|| time_argon2(n, false))
            .join()
            .map_err(|_| BenchError::Failed("the argon2 thread panicked".to_owned()))
    })??;
    Ok(HashTiming {
        secs_per_hash,
        fastest_secs_per_hash,
        server_way_secs_per_hash,
        parallel_rate: parallel_hash_rate(cores, n)?,
    })
}

/// Seconds per production argon2id hash on the calling thread: (mean, fastest) of `n` after
/// one unmeasured hash. With `reuse_memory`, every hash works in one block of memory allocated
/// up front (`hash_password_into_with_memory`): argon2's own work and nothing else. Without,
/// each hash allocates and zeroes its 19 MiB (`hash_password_into`, what `verify_password`
/// does for a login).
fn time_argon2(n: u32, reuse_memory: bool) -> Result<(f64, f64), BenchError> {
    let argon2 = production_argon2()?;
    let salt = token::random_bytes(16).map_err(BenchError::Failed)?;
    let mut memory = if reuse_memory {
        vec![::argon2::Block::default(); argon2.params().block_count()]
    } else {
        Vec::new()
    };
    let mut out = [0u8; 32];
    let mut hash = || {
        let started = Instant::now();
        let result = if reuse_memory {
            argon2.hash_password_into_with_memory(
                PASSWORD.as_bytes(),
                &salt,
                &mut out,
                &mut memory[..],
            )
        } else {
            argon2.hash_password_into(PASSWORD.as_bytes(), &salt, &mut out)
        };
        result.map_err(|err| BenchError::Failed(format!("argon2: {err}")))?;
        Ok::<_, BenchError>(started.elapsed())
    };
    hash()?;
    let mut total = Duration::ZERO;
    let mut fastest = Duration::MAX;
    for _ in 0..n {
        let took = hash()?;
        total += took;
        fastest = fastest.min(took);
    }
    Ok((total.as_secs_f64() / f64::from(n), fastest.as_secs_f64()))
}

/// Hashes per second with `threads` threads hashing at once as the server does (allocating per
/// hash), `per_thread` each after one unmeasured hash per thread (no target).
fn parallel_hash_rate(threads: usize, per_thread: u32) -> Result<f64, BenchError> {
    let argon2 = production_argon2()?;
    let salt = token::random_bytes(16).map_err(BenchError::Failed)?;
    let barrier = std::sync::Barrier::new(threads + 1);
    let hash = || {
        let mut out = [0u8; 32];
        argon2
            .hash_password_into(PASSWORD.as_bytes(), &salt, &mut out)
            .map_err(|err| format!("argon2: {err}"))
    };
    let elapsed = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let warm = hash();
                    barrier.wait();
                    warm?;
                    (0..per_thread).try_for_each(|_| hash())
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "an argon2 thread panicked".to_owned())??;
        }
        Ok::<_, String>(started.elapsed())
    })
    .map_err(BenchError::Failed)?;
    Ok(threads as f64 * f64::from(per_thread) / elapsed.as_secs_f64())
}

fn production_argon2() -> Result<Argon2<'static>, BenchError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|err| BenchError::Failed(format!("argon2 parameters: {err}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}
