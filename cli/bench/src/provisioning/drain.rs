//! Workers draining the queue: each a tonic task that claims (ClaimJob with a short long-poll)
//! and completes (CompleteJob with a result map) until a claim finds nothing — as fast as
//! they can, or paced to a total claim rate (the watchers run, so positions change through a
//! fixed period). What each claimed and completed is kept for the checks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironmesh_proto::ironmesh::provisioning::v1 as pb;
use tokio::sync::Semaphore;

use super::calls::{Calls, proto_duration};
use crate::calls::rpc_failed;
use crate::error::BenchError;

/// ClaimJob's long-poll: short, so a worker that finds the queue empty stops soon.
const CLAIM_WAIT: Duration = Duration::from_millis(100);
/// How often the pacer hands out the claims that have come due.
const PACE_TICK: Duration = Duration::from_millis(10);

/// What one drain did.
#[derive(Debug, Default)]
pub struct Drained {
    /// CompleteJobs answered OK.
    pub completed: u64,
    /// Start of the drain → the last CompleteJob answered.
    pub secs: f64,
    /// Jobs handed out per request id.
    pub claims: HashMap<String, u32>,
    /// CompleteJobs answered OK per request id.
    pub completions: HashMap<String, u32>,
}

/// What one worker did.
#[derive(Default)]
struct Worked {
    claimed: Vec<String>,
    completed: Vec<String>,
    last: Option<Instant>,
}

/// `workers` workers drain the queue; with `rate`, their claims together start at most
/// `rate` per second.
pub async fn drain(
    calls: &Calls,
    workers: usize,
    rate: Option<f64>,
) -> Result<Drained, BenchError> {
    let permits = rate.map(|_| Arc::new(Semaphore::new(0)));
    let started = Instant::now();
    let pacer = rate.zip(permits.clone()).map(|(rate, permits)| {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PACE_TICK);
            let mut given = 0u64;
            loop {
                ticks.tick().await;
                let due = (started.elapsed().as_secs_f64() * rate) as u64;
                if due > given {
                    permits.add_permits(usize::try_from(due - given).unwrap_or(usize::MAX));
                    given = due;
                }
            }
        })
    });
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (calls, permits) = (calls.clone(), permits.clone());
            tokio::spawn(async move { work(&calls, w, permits.as_deref()).await })
        })
        .collect();
    let mut drained = Drained::default();
    let mut last = started;
    let mut failure = None;
    for task in tasks {
        let worked = match task.await {
            Ok(Ok(worked)) => worked,
            Ok(Err(err)) => {
                failure.get_or_insert(err);
                continue;
            }
            Err(err) => {
                failure.get_or_insert(BenchError::Failed(format!("a worker panicked: {err}")));
                continue;
            }
        };
        last = last.max(worked.last.unwrap_or(started));
        drained.completed += worked.completed.len() as u64;
        for id in worked.claimed {
            *drained.claims.entry(id).or_default() += 1;
        }
        for id in worked.completed {
            *drained.completions.entry(id).or_default() += 1;
        }
    }
    if let Some(pacer) = pacer {
        pacer.abort();
    }
    if let Some(err) = failure {
        return Err(err);
    }
    drained.secs = (last - started).as_secs_f64();
    Ok(drained)
}

/// One worker: claim, complete, until a claim finds nothing.
async fn work(calls: &Calls, w: usize, permits: Option<&Semaphore>) -> Result<Worked, BenchError> {
    let mut client = calls.client(w);
    let worker_id = format!("bench-worker-{w}");
    let mut worked = Worked::default();
    loop {
        if let Some(permits) = permits {
            permits
                .acquire()
                .await
                .map_err(|_| BenchError::Failed("the pacer stopped".into()))?
                .forget();
        }
        let claim = pb::ClaimJobRequest {
            worker_id: worker_id.clone(),
            wait_timeout: Some(proto_duration(CLAIM_WAIT)),
            ..Default::default()
        };
        let Some(job) = client
            .claim_job(calls.as_worker(claim)?)
            .await
            .map_err(rpc_failed("ClaimJob"))?
            .into_inner()
            .job
        else {
            return Ok(worked);
        };
        worked.claimed.push(job.request_id.clone());
        let complete = pb::CompleteJobRequest {
            job_id: job.job_id,
            lease_token: job.lease_token,
            result: [
                ("tenant_id".to_owned(), job.request_id.clone()),
                ("worker".to_owned(), worker_id.clone()),
            ]
            .into(),
        };
        let request = client
            .complete_job(calls.as_worker(complete)?)
            .await
            .map_err(rpc_failed("CompleteJob"))?
            .into_inner()
            .request;
        if request.is_none_or(|r| r.state != pb::RequestState::Succeeded as i32) {
            return Err(BenchError::Failed(format!(
                "CompleteJob of request {} did not answer it SUCCEEDED",
                job.request_id
            )));
        }
        worked.completed.push(job.request_id);
        worked.last = Some(Instant::now());
    }
}
