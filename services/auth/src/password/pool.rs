//! Where argon2 runs: one dedicated OS thread per core at the lowest scheduling priority (nice
//! +19), fed from a bounded queue. At full load the hashing threads still use every idle cycle —
//! login throughput stays near the argon2 bound — but the kernel gives the service's async
//! threads the CPU first whenever they have work, so a login flood no longer starves the cheap
//! RPCs beside it. A full queue answers at once ([`HashError::Busy`], RESOURCE_EXHAUSTED with
//! RetryInfo) instead of letting waits grow without bound.
//!
//! Why not tokio's blocking pool: its threads run at the async threads' priority and its queue
//! is unbounded. No maintained crate offers a bounded, prioritised pool for blocking work, so
//! this one is a channel and threads; the priority is `thread-priority`'s.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use parking_lot::Mutex;

use super::HashError;

/// Hashes waiting per hashing thread before new ones are refused.
pub const QUEUE_PER_THREAD: usize = 64;
/// How long a refused caller is told to wait (about one queue's worth of hashes).
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
/// The hashing threads' priority: the lowest (niceness +19; 0 is the default).
const NICENESS_STEP: u8 = 0;

type Job = Box<dyn FnOnce() + Send>;

/// See the module docs. Cloning shares the pool; its threads end once every clone is dropped.
#[derive(Clone)]
pub struct HashPool {
    jobs: SyncSender<Job>,
}

impl HashPool {
    /// `threads` hashing threads (at least one) with room for `queue` waiting hashes.
    pub fn new(threads: usize, queue: usize) -> Self {
        let (jobs, waiting) = sync_channel::<Job>(queue);
        let waiting = Arc::new(Mutex::new(waiting));
        for n in 0..threads.max(1) {
            let waiting = waiting.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&waiting));
            if let Err(err) = spawned {
                tracing::error!(error = %err, "a password hashing thread could not start");
            }
        }
        Self { jobs }
    }

    /// One thread per core, [`QUEUE_PER_THREAD`] waiting hashes each.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, cores * QUEUE_PER_THREAD)
    }

    /// Runs `work` on a hashing thread; `Busy` at once when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(HashError::Closed),
        }
        result.await.map_err(|_| HashError::Closed)
    }
}

/// A hashing thread: lower its priority, then run jobs until the pool is dropped.
fn work(waiting: &Mutex<Receiver<Job>>) {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    // Crossplatform 0 of 0..=99 is niceness +19 for the normal policy (-20..=19).
    let lowered = ThreadPriorityValue::try_from(NICENESS_STEP)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            set_current_thread_priority(ThreadPriority::Crossplatform(p))
                .map_err(|e| format!("{e:?}"))
        });
    if let Err(err) = lowered {
        tracing::warn!(error = %err, "password hashing runs at normal priority");
    }
    loop {
        // One thread waits on the queue at a time; the others wait for the lock.
        let job = waiting.lock().recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work runs off the async threads at a lower priority, and a full queue is refused at once
    /// rather than waited on.
    #[tokio::test]
    async fn hashes_run_niced_and_a_full_queue_is_refused() {
        let pool = HashPool::new(1, 1);
        let nice = pool
            .run(|| std::fs::read_to_string("/proc/thread-self/stat"))
            .await
            .unwrap()
            .unwrap();
        // Field 19 of stat is the niceness (after the parenthesised name).
        let after_name = nice.rsplit(')').next().unwrap();
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        assert_eq!(fields[16], "19", "niceness of the hashing thread: {nice}");
        // One job holds the thread, one waits in the queue; the third is refused.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = started.send(());
                    let _ = hold.recv();
                })
                .await
            }
        });
        running.await.unwrap();
        // Two more: one waits in the queue, the other is refused at once — so the first to
        // answer is the refusal, while the queued one answers only once the thread is free.
        let mut a = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|| 2).await }
        });
        let mut b = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|| 3).await }
        });
        let (first, other) = tokio::select! {
            r = &mut a => (r.unwrap(), b),
            r = &mut b => (r.unwrap(), a),
        };
        assert!(matches!(first, Err(HashError::Busy)), "{first:?}");
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert!(other.await.unwrap().is_ok());
    }
}
