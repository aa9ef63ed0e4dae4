//! Dead letters: pairs that a sink refused for good or that ran out of attempts. They stay in
//! `outbox_deliveries` (state `dead`, with the last error) until an operator replays them, which
//! makes them pending again with a fresh attempt count.
//!
//! A dead pair no longer holds back later versions of its aggregate (that is what dead means), so
//! a replayed event reaches its subscriber after those; consumers see it by `aggregate_version`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ironmesh_proto::ironmesh::events::v1::Event;
use ironmesh_runtime::{Database, with_pool};

use crate::OutboxError;
use crate::event::{EVENT_COLUMNS, EventRow, from_row};

/// Largest page [`list`] returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// One dead (event, subscriber) pair.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub subscriber: String,
    pub attempts: i32,
    pub last_error: String,
    /// When the pair became dead.
    pub dead_at: DateTime<Utc>,
    pub event: Event,
}

/// One page of [`list`]; `next_page_token` is empty on the last page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub dead_letters: Vec<DeadLetter>,
    pub next_page_token: String,
}

/// Dead letters in outbox order, of one subscriber or (`None`) all, `page_size` at a time
/// (1..=[`MAX_PAGE_SIZE`]); pass the previous page's token to continue.
pub async fn list(
    db: &Database,
    subscriber: Option<&str>,
    page_size: u32,
    page_token: &str,
) -> Result<Page, OutboxError> {
    let limit = i64::from(page_size.clamp(1, MAX_PAGE_SIZE));
    let (after_seq, after_subscriber) = parse_token(page_token)?;
    const DEAD: &str = "SELECT d.event_seq, d.subscriber, d.attempts, d.last_error, d.updated_at \
         FROM outbox_deliveries d \
         WHERE d.state = 'dead' AND ($1 = '' OR d.subscriber = $1) \
           AND (d.event_seq > $2 OR (d.event_seq = $2 AND d.subscriber > $3)) \
         ORDER BY d.event_seq, d.subscriber LIMIT $4";
    // The events of that page, by seq range (a second query: sqlx rows decode into at most 16
    // columns). A pair replayed in between has no event here and is left out of the page.
    let events = format!(
        "SELECT {EVENT_COLUMNS} FROM outbox_events e WHERE e.seq >= $1 AND e.seq <= $2 \
         AND EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.event_seq = e.seq AND d.state = 'dead')"
    );
    let fetched: Result<(Vec<DeadRow>, Vec<EventRow>), sqlx::Error> = with_pool!(db, pool => {
        async {
            let dead: Vec<DeadRow> = sqlx::query_as(DEAD)
                .bind(subscriber.unwrap_or(""))
                .bind(after_seq)
                .bind(after_subscriber.as_str())
                .bind(limit + 1)
                .fetch_all(pool)
                .await?;
            let (Some(first), Some(last)) = (dead.first(), dead.last()) else {
                return Ok((dead, Vec::new()));
            };
            let rows: Vec<EventRow> = sqlx::query_as(&events)
                .bind(first.0)
                .bind(last.0)
                .fetch_all(pool)
                .await?;
            Ok((dead, rows))
        }
        .await
    });
    let (mut dead, rows) = fetched.map_err(OutboxError::Database)?;
    let by_seq: HashMap<i64, Event> = rows.into_iter().map(from_row).collect();
    let more = dead.len() as i64 > limit;
    dead.truncate(usize::try_from(limit).unwrap_or(0));
    let next_page_token = match dead.last() {
        Some((seq, subscriber, ..)) if more => format!("{seq}:{subscriber}"),
        _ => String::new(),
    };
    let dead_letters = dead
        .into_iter()
        .filter_map(|(seq, subscriber, attempts, last_error, dead_at)| {
            let event = by_seq.get(&seq)?.clone();
            Some(DeadLetter {
                subscriber,
                attempts,
                last_error,
                dead_at,
                event,
            })
        })
        .collect();
    Ok(Page {
        dead_letters,
        next_page_token,
    })
}

type DeadRow = (i64, String, i32, String, DateTime<Utc>);
fn parse_token(token: &str) -> Result<(i64, String), OutboxError> {
    if token.is_empty() {
        return Ok((0, String::new()));
    }
    let (seq, subscriber) = token.split_once(':').ok_or(OutboxError::InvalidPageToken)?;
    let seq = seq.parse().map_err(|_| OutboxError::InvalidPageToken)?;
    Ok((seq, subscriber.to_owned()))
}

/// Which dead letters [`replay`] makes pending again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replay<'a> {
    /// One event's pair for one subscriber.
    Event {
        subscriber: &'a str,
        event_id: &'a str,
    },
    /// Every dead letter of one subscriber.
    AllFor { subscriber: &'a str },
}

/// Makes the chosen dead letters pending again (attempts reset, due now; the last error is kept
/// until the next attempt). Returns how many; call `Outbox::wake` so the relay sends them now.
pub async fn replay(db: &Database, which: Replay<'_>) -> Result<u64, OutboxError> {
    const REPLAY: &str = "UPDATE outbox_deliveries SET state = 'pending', attempts = 0, \
         next_attempt_at = $3, lease_owner = NULL, lease_until = NULL, updated_at = $3 \
         WHERE state = 'dead' AND subscriber = $1 \
           AND ($2 = '' OR event_seq = (SELECT seq FROM outbox_events WHERE id = $2))";
    let (subscriber, event_id) = match which {
        Replay::Event {
            subscriber,
            event_id,
        } => {
            if event_id.is_empty() {
                return Err(OutboxError::MissingField("event_id"));
            }
            (subscriber, event_id)
        }
        Replay::AllFor { subscriber } => (subscriber, ""),
    };
    let now = crate::event::now();
    let done = with_pool!(db, pool => sqlx::query(REPLAY)
        .bind(subscriber)
        .bind(event_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
    done.map_err(OutboxError::Database)
}
