//! The relay: one task per subscriber, inside the producing process, delivering that
//! subscriber's due pairs in batches and recording each pair's outcome.
//!
//! A task wakes when [`crate::Outbox::wake`] is called after a local commit, when a retry it
//! scheduled falls due, or every [`RelayConfig::poll_interval`] for rows other replicas wrote.
//! Pairs are leased ([`RelayConfig::lease`]) before the call, so replicas sharing a PostgreSQL
//! outbox never deliver one pair at the same time, and a relay that dies mid-call only delays its
//! pairs until the lease runs out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ironmesh_proto::ironmesh::events::v1::{DeliverRequest, DeliverResponse, Event};
use ironmesh_runtime::Database;
use prost::Message;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::event;
use crate::metrics::Metrics;
use crate::store::{self, Claimed, Outcome};
use crate::subscriber::Subscriber;
use crate::write::Outbox;

/// Most events in one `Deliver` call (the contract's limit).
pub const MAX_BATCH_EVENTS: usize = 500;
/// Most encoded bytes in one `Deliver` request (the contract's limit).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// What a lease outlives the call timeout by, at least.
pub const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// How the relay runs. The defaults suit production; tests shorten the waits.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// How often to look for rows without a wake-up (written by other replicas).
    pub poll_interval: Duration,
    /// Events per `Deliver` call, at most [`MAX_BATCH_EVENTS`].
    pub batch_size: usize,
    /// Encoded bytes per `Deliver` call, at most [`MAX_BATCH_BYTES`].
    pub batch_bytes: usize,
    /// Deadline of one `Deliver` call.
    pub call_timeout: Duration,
    /// How long a claim holds its pairs. Raised to `call_timeout` + [`LEASE_MARGIN`] if shorter,
    /// so a lease cannot run out while its call may still be in flight.
    pub lease: Duration,
    /// Backoff between attempts of one pair: full jitter in `[0, min(cap, base·2^attempts))`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Attempts after which a pair that keeps failing becomes a dead letter. With the default
    /// backoff a sink has to be down for about two hours before its pairs go there.
    pub max_attempts: i32,
    /// Fully delivered events older than this are purged.
    pub retention: Duration,
    /// How often retention runs.
    pub purge_every: Duration,
    /// How often the pending gauges are refreshed.
    pub gauge_every: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            batch_size: MAX_BATCH_EVENTS,
            batch_bytes: MAX_BATCH_BYTES,
            call_timeout: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(300),
            max_attempts: 50,
            retention: Duration::from_secs(7 * 24 * 3600),
            purge_every: Duration::from_secs(3600),
            gauge_every: Duration::from_secs(5),
        }
    }
}

/// Delivers an [`Outbox`]'s rows; [`Relay::run`] until cancelled.
pub struct Relay {
    outbox: Outbox,
    db: Database,
    config: RelayConfig,
}

impl Relay {
    pub(crate) fn new(outbox: Outbox, db: Database, mut config: RelayConfig) -> Self {
        config.batch_size = config.batch_size.clamp(1, MAX_BATCH_EVENTS);
        config.batch_bytes = config.batch_bytes.clamp(1, MAX_BATCH_BYTES);
        config.max_attempts = config.max_attempts.max(1);
        config.lease = config.lease.max(config.call_timeout + LEASE_MARGIN);
        Self { outbox, db, config }
    }

    /// Runs one task per subscriber plus retention until `shutdown` is cancelled; a batch in
    /// flight finishes (bounded by the call timeout) so its outcome is recorded.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        for index in 0..self.outbox.inner.subscribers.len() {
            let worker = Worker {
                outbox: self.outbox.clone(),
                index,
                db: self.db.clone(),
                config: self.config.clone(),
                backoff: Backoff::new(self.config.backoff_base, self.config.backoff_cap),
            };
            tasks.spawn(worker.run(shutdown.clone()));
        }
        tasks.spawn(purge_loop(
            self.db.clone(),
            self.config.clone(),
            shutdown.clone(),
        ));
        while let Some(done) = tasks.join_next().await {
            if let Err(err) = done {
                tracing::error!(error = %err, "outbox relay task failed");
            }
        }
    }
}

async fn purge_loop(db: Database, config: RelayConfig, shutdown: CancellationToken) {
    loop {
        let before = event::now()
            - chrono::Duration::from_std(config.retention).unwrap_or(chrono::Duration::MAX);
        match store::purge_delivered(&db, before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(events = n, "purged delivered outbox events"),
            Err(err) => tracing::warn!(error = %err, "outbox retention failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.purge_every) => {}
        }
    }
}

struct Worker {
    outbox: Outbox,
    index: usize,
    db: Database,
    config: RelayConfig,
    backoff: Backoff,
}

impl Worker {
    fn subscriber(&self) -> &Subscriber {
        &self.outbox.inner.subscribers[self.index]
    }

    async fn run(self, shutdown: CancellationToken) {
        let metrics = Metrics::get();
        let mut gauges_at = tokio::time::Instant::now();
        self.refresh_gauges().await;
        // The earliest retry this task scheduled that no round has looked at since it fell due:
        // the task wakes for it instead of waiting out the poll interval.
        let mut next_due: Option<DateTime<Utc>> = None;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            if gauges_at.elapsed() >= self.config.gauge_every {
                gauges_at = tokio::time::Instant::now();
                self.refresh_gauges().await;
            }
            let started = Utc::now();
            let (sent, retry) = match self.round().await {
                Ok(round) => round,
                Err(err) => {
                    metrics.relay_errors(self.outbox.source(), &self.subscriber().name);
                    tracing::warn!(subscriber = %self.subscriber().name, error = %err, "outbox relay round failed");
                    (0, None)
                }
            };
            next_due = next_due
                .filter(|at| *at > started)
                .into_iter()
                .chain(retry)
                .min();
            if sent > 0 {
                continue;
            }
            let wait = next_due.map_or(self.config.poll_interval, |at| {
                let until = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                until.min(self.config.poll_interval)
            });
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.outbox.inner.wake[self.index].notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn refresh_gauges(&self) {
        match store::pending(&self.db, &self.subscriber().name).await {
            Ok((count, oldest)) => {
                let age = oldest
                    .map(|at| (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0)
                    .unwrap_or(0.0);
                Metrics::get().set_pending(
                    self.outbox.source(),
                    &self.subscriber().name,
                    count,
                    age,
                );
            }
            Err(err) => tracing::warn!(error = %err, "outbox pending gauge query failed"),
        }
    }

    /// Claims, delivers and settles one batch. Returns how many pairs were sent and the earliest
    /// retry this round scheduled.
    async fn round(&self) -> Result<(usize, Option<DateTime<Utc>>), sqlx::Error> {
        let subscriber = self.subscriber();
        let owner = uuid::Uuid::now_v7().to_string();
        let now = event::now();
        let lease_until = now + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        let claimed = store::claim(
            &self.db,
            &subscriber.name,
            &owner,
            now,
            lease_until,
            i64::try_from(self.config.batch_size).unwrap_or(500),
        )
        .await?;
        if claimed.is_empty() {
            return Ok((0, None));
        }
        let (batch, released) = split_batch(claimed, self.config.batch_bytes);
        let request = DeliverRequest {
            events: batch.iter().map(|c| c.event.clone()).collect(),
        };
        let call = subscriber.sink.deliver(request, self.config.call_timeout);
        let answer = match tokio::time::timeout(self.config.call_timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(tonic::Status::deadline_exceeded("deliver timed out")),
        };
        let outcomes = self.judge(&batch, answer);
        let next_retry = outcomes
            .iter()
            .filter_map(|(_, o)| match o {
                Outcome::Retry { at, .. } => Some(*at),
                _ => None,
            })
            .min();
        let mut all: Vec<(i64, Outcome)> = outcomes;
        all.extend(released.iter().map(|c| (c.seq, Outcome::Released)));
        store::settle(&self.db, &subscriber.name, &owner, event::now(), &all).await?;
        self.count(&all);
        Ok((batch.len(), next_retry))
    }

    /// The outcome of each pair of `batch` from the sink's answer, per the contract.
    fn judge(
        &self,
        batch: &[Claimed],
        answer: Result<DeliverResponse, tonic::Status>,
    ) -> Vec<(i64, Outcome)> {
        let retry = |claimed: &Claimed, error: String| {
            if claimed.attempts + 1 >= self.config.max_attempts {
                Outcome::Dead {
                    error: format!("{error} (after {} attempts)", claimed.attempts + 1),
                }
            } else {
                let delay = self.backoff.delay(claimed.attempts);
                Outcome::Retry {
                    at: event::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
                    error,
                }
            }
        };
        match answer {
            // An RPC error means nothing was accepted: the whole batch is retried.
            Err(status) => {
                let error = format!("rpc {:?}: {}", status.code(), status.message());
                tracing::debug!(subscriber = %self.subscriber().name, %error, events = batch.len(), "deliver failed");
                batch
                    .iter()
                    .map(|c| (c.seq, retry(c, error.clone())))
                    .collect()
            }
            Ok(response) => batch
                .iter()
                .map(|c| {
                    let id = c.event.id.as_str();
                    let outcome = if response.accepted_ids.iter().any(|a| a == id)
                        || response.duplicate_ids.iter().any(|a| a == id)
                    {
                        Outcome::Delivered
                    } else if let Some(r) = response.rejected.iter().find(|r| r.event_id == id) {
                        if r.retryable {
                            retry(c, format!("rejected: {}", r.reason))
                        } else {
                            Outcome::Dead {
                                error: format!("rejected: {}", r.reason),
                            }
                        }
                    } else {
                        // The contract puts every id in one list; a sink that forgot one has not
                        // recorded it.
                        retry(c, "missing from the sink's answer".to_owned())
                    };
                    (c.seq, outcome)
                })
                .collect(),
        }
    }

    fn count(&self, outcomes: &[(i64, Outcome)]) {
        let metrics = Metrics::get();
        let (source, name) = (self.outbox.source(), self.subscriber().name.as_str());
        for (_, outcome) in outcomes {
            match outcome {
                Outcome::Delivered => metrics.delivered.with_label_values(&[source, name]).inc(),
                Outcome::Retry { .. } => metrics.failed.with_label_values(&[source, name]).inc(),
                Outcome::Dead { .. } => {
                    metrics.failed.with_label_values(&[source, name]).inc();
                    metrics
                        .dead_lettered
                        .with_label_values(&[source, name])
                        .inc();
                }
                Outcome::Released => {}
            }
        }
    }
}

/// Keeps the longest prefix of `claimed` whose request fits in `max_bytes` (always at least one
/// event: a payload is at most 256 KiB); the rest is handed back.
fn split_batch(mut claimed: Vec<Claimed>, max_bytes: usize) -> (Vec<Claimed>, Vec<Claimed>) {
    let mut total = 0usize;
    let mut keep = 0usize;
    for c in &claimed {
        let size = field_len(&c.event);
        if keep > 0 && total + size > max_bytes {
            break;
        }
        total += size;
        keep += 1;
    }
    let released = claimed.split_off(keep);
    (claimed, released)
}

/// Bytes one event adds to a `DeliverRequest` (tag, length prefix and message).
fn field_len(event: &Event) -> usize {
    let len = event.encoded_len();
    1 + prost::length_delimiter_len(len) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(seq: i64, payload: usize) -> Claimed {
        Claimed {
            seq,
            attempts: 0,
            event: Event {
                id: seq.to_string(),
                payload: vec![0; payload],
                ..Event::default()
            },
        }
    }

    #[test]
    fn batches_stop_before_the_byte_limit() {
        let all = (1..=20).map(|i| claimed(i, 256 * 1024)).collect();
        let (batch, rest) = split_batch(all, MAX_BATCH_BYTES);
        assert_eq!(batch.len(), 15);
        assert_eq!(rest.len(), 5);
        let request = DeliverRequest {
            events: batch.into_iter().map(|c| c.event).collect(),
        };
        assert!(request.encoded_len() <= MAX_BATCH_BYTES);
    }

    #[test]
    fn one_event_is_always_sent() {
        let (batch, rest) = split_batch(vec![claimed(1, 100)], 10);
        assert_eq!((batch.len(), rest.len()), (1, 0));
    }
}
