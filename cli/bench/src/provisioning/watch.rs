//! The watchers: one `WatchQueuePosition` stream per queued request, as the operator, spread
//! over the suite's channels (1,000 streams on 10 connections: 100 each, well within HTTP/2's
//! concurrent-stream limits), each opened and its first message read before the drain starts;
//! then one task per stream follows it to its end, counting what it receives and noting what
//! is wrong with it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironmesh_proto::ironmesh::provisioning::v1 as pb;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tonic::Streaming;

use super::calls::Calls;
use crate::calls::grpc_failure;
use crate::calls::rpc_failed;
use crate::error::BenchError;

/// Streams being opened at once.
const OPENING: usize = 100;
/// How long a stream may stay silent: past the contract's 30 s keep-alive.
const MESSAGE_LIMIT: Duration = Duration::from_secs(45);

/// A stream opened, its first message read.
pub struct Opened {
    request_id: String,
    first: i64,
    stream: Streaming<pb::WatchQueuePositionResponse>,
}

/// What one watcher saw.
#[derive(Debug)]
pub struct Seen {
    pub request_id: String,
    /// The position of the first message.
    pub first: i64,
    /// The lowest position it saw while its request was QUEUED.
    pub lowest: i64,
    /// Messages after the first.
    pub messages: u64,
    /// The state of the last message.
    pub last_state: i32,
    /// What was wrong with the stream, if anything.
    pub problem: Option<String>,
    /// When the stream ended (or failed).
    pub ended: Instant,
}

/// Opens one stream per id in `ids` (the `i`-th on channel `i`), reading each first message:
/// its request must be QUEUED.
pub async fn open(calls: &Calls, ids: &[String]) -> Result<Vec<Opened>, BenchError> {
    let opening = Arc::new(Semaphore::new(OPENING));
    let tasks: Vec<JoinHandle<Result<Opened, BenchError>>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (calls, opening, id) = (calls.clone(), opening.clone(), id.clone());
            tokio::spawn(async move {
                let _turn = opening.acquire().await;
                let request = calls.as_operator(pb::WatchQueuePositionRequest {
                    request_id: id.clone(),
                })?;
                let mut stream = calls
                    .client(i)
                    .watch_queue_position(request)
                    .await
                    .map_err(rpc_failed("WatchQueuePosition"))?
                    .into_inner();
                let first = next_position(&mut stream)
                    .await
                    .map_err(|why| BenchError::Failed(format!("watching {id}: {why}")))?
                    .ok_or_else(|| {
                        BenchError::Failed(format!("watching {id}: the stream ended at once"))
                    })?;
                if first.state != pb::RequestState::Queued as i32 {
                    return Err(BenchError::Failed(format!(
                        "watching {id}: the request is not QUEUED ({:?})",
                        pb::RequestState::try_from(first.state)
                    )));
                }
                Ok(Opened {
                    request_id: id,
                    first: first.position,
                    stream,
                })
            })
        })
        .collect();
    let mut opened = Vec::with_capacity(ids.len());
    for task in tasks {
        opened.push(
            task.await
                .map_err(|err| BenchError::Failed(format!("a watcher panicked: {err}")))??,
        );
    }
    Ok(opened)
}

/// One task per stream, following it to its end.
pub fn follow(opened: Vec<Opened>) -> Vec<JoinHandle<Seen>> {
    opened
        .into_iter()
        .map(|o| tokio::spawn(follow_one(o)))
        .collect()
}

/// What every watcher saw, once all streams have ended.
pub async fn seen(followers: Vec<JoinHandle<Seen>>) -> Result<Vec<Seen>, BenchError> {
    let mut seen = Vec::with_capacity(followers.len());
    for follower in followers {
        seen.push(
            follower
                .await
                .map_err(|err| BenchError::Failed(format!("a watcher panicked: {err}")))?,
        );
    }
    Ok(seen)
}

async fn follow_one(mut o: Opened) -> Seen {
    let mut seen = Seen {
        request_id: o.request_id,
        first: o.first,
        lowest: o.first,
        messages: 0,
        last_state: pb::RequestState::Queued as i32,
        problem: None,
        ended: Instant::now(),
    };
    let queued = pb::RequestState::Queued as i32;
    seen.problem = loop {
        let position = match next_position(&mut o.stream).await {
            Ok(Some(position)) => position,
            Ok(None) if seen.last_state == queued => {
                break Some("the stream ended while the request was QUEUED".to_owned());
            }
            Ok(None) => break None,
            Err(why) => break Some(why),
        };
        seen.messages += 1;
        if seen.last_state != queued {
            break Some("a message came after the one saying it left QUEUED".to_owned());
        }
        seen.last_state = position.state;
        if position.state == queued {
            if position.position > seen.lowest {
                break Some(format!(
                    "its position rose from {} to {}",
                    seen.lowest, position.position
                ));
            }
            seen.lowest = position.position;
        }
    };
    seen.ended = Instant::now();
    seen
}

/// The stream's next position; None once it ended with OK.
async fn next_position(
    stream: &mut Streaming<pb::WatchQueuePositionResponse>,
) -> Result<Option<pb::QueuePosition>, String> {
    match tokio::time::timeout(MESSAGE_LIMIT, stream.message()).await {
        Err(_) => Err(format!("no message within {MESSAGE_LIMIT:?}")),
        Ok(Err(status)) => Err(grpc_failure("WatchQueuePosition", &status)),
        Ok(Ok(None)) => Ok(None),
        Ok(Ok(Some(message))) => message
            .position
            .map(Some)
            .ok_or_else(|| "a message without a position".to_owned()),
    }
}
