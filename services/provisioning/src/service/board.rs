//! The position board: ONE computation of every QUEUED request's position per refresh, shared
//! by all `WatchQueuePosition` streams of this process, so a thousand watchers cost one query
//! a refresh, not a thousand. It queries only while someone watches (`watch` receivers), and
//! each watcher reads its own position from the latest snapshot; only a watch's first message
//! and its last (the request left QUEUED: its new state) read the request itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Caller, Position, Queue, THROUGHPUT_WINDOW, duration_ms, now_ms, wait_estimate};
use crate::domain::{Failure, State};
use crate::metrics;

/// A keep-alive repeat of an unchanged position this often (the contract's 30 s).
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Every QUEUED request's 1-based position at one instant.
#[derive(Debug)]
pub struct Snapshot {
    /// When the query began: it saw every request submitted before.
    pub taken: Instant,
    pub observed_at: DateTime<Utc>,
    pub positions: HashMap<String, i64>,
    pub recent_claims: i64,
}

impl Snapshot {
    fn empty() -> Self {
        Self {
            taken: Instant::now(),
            observed_at: ironmesh_runtime::storage::now(),
            positions: HashMap::new(),
            recent_claims: 0,
        }
    }

    fn position(&self, id: &str) -> Option<Position> {
        let position = *self.positions.get(id)?;
        Some(Position {
            request_id: id.to_owned(),
            state: State::Queued,
            position,
            queue_length: i64::try_from(self.positions.len()).unwrap_or(i64::MAX),
            estimated_wait: wait_estimate(position, self.recent_claims),
            observed_at: self.observed_at,
        })
    }
}

/// The shared board of one process.
pub struct Board {
    latest: watch::Sender<Arc<Snapshot>>,
}

impl Default for Board {
    fn default() -> Self {
        Self {
            latest: watch::Sender::new(Arc::new(Snapshot::empty())),
        }
    }
}

impl Queue {
    /// Refreshes the board every `position_refresh` while anyone watches, until cancelled.
    pub async fn run_board(self, token: CancellationToken) {
        let every = self.settings.position_refresh();
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if self.board.latest.receiver_count() == 0 {
                continue;
            }
            let taken = Instant::now();
            let since = now_ms() - duration_ms(THROUGHPUT_WINDOW);
            metrics::position_query("board");
            match self.store.queued_order(since).await {
                Ok((ids, recent_claims)) => {
                    let positions = ids.into_iter().zip(1..).collect();
                    self.board.latest.send_replace(Arc::new(Snapshot {
                        taken,
                        observed_at: ironmesh_runtime::storage::now(),
                        positions,
                        recent_claims,
                    }));
                }
                Err(err) => tracing::warn!(error = %err, "refreshing queue positions failed"),
            }
        }
    }

    /// WatchQueuePosition: the position now, then one message per change (a board refresh),
    /// a keep-alive repeat every 30 s, and a last message when the request leaves QUEUED.
    pub async fn watch(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<mpsc::Receiver<Result<Position, Failure>>, Failure> {
        let mut board = self.board.latest.subscribe();
        let started = Instant::now();
        let first = self.position(caller, id).await?;
        let (tx, rx) = mpsc::channel(4);
        let queue = self.clone();
        let caller = caller.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            metrics::watchers(1);
            let _gone = scopeguard(|| metrics::watchers(-1));
            let queued = first.state == State::Queued;
            let mut last = first.clone();
            let mut sent_at = Instant::now();
            if tx.send(Ok(first)).await.is_err() || !queued {
                return;
            }
            loop {
                tokio::select! {
                    changed = board.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = tokio::time::sleep_until(sent_at + KEEP_ALIVE) => {
                        let again = Position { observed_at: ironmesh_runtime::storage::now(), ..last.clone() };
                        if tx.send(Ok(again)).await.is_err() {
                            return;
                        }
                        sent_at = Instant::now();
                        continue;
                    }
                    () = tx.closed() => return,
                }
                let snapshot = board.borrow_and_update().clone();
                if snapshot.taken <= started {
                    continue;
                }
                match snapshot.position(&id) {
                    Some(now)
                        if (now.position, now.queue_length)
                            == (last.position, last.queue_length) => {}
                    Some(now) => {
                        last = now.clone();
                        sent_at = Instant::now();
                        if tx.send(Ok(now)).await.is_err() {
                            return;
                        }
                    }
                    None => {
                        // It left QUEUED: its new state, then the stream ends with OK.
                        let _ = tx.send(queue.position(&caller, &id).await).await;
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
