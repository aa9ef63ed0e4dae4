//! No double claim, exactly once: workers hammer the queue concurrently — on both backends
//! through one replica, and on PostgreSQL through two replicas of provisioning on one database —
//! and every request is claimed once and SUCCEEDED once, none lost, none twice.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Client, One, Two, claim, submit};
use futures_util::future::join_all;
use ironmesh_proto::ironmesh::provisioning::v1::{self as pb, PriorityTier, RequestState};
use ironmesh_testkit::{Backend, authed, backends};

/// Submits `n` requests through `clients` (round-robin, concurrently 16 at a time) as the
/// operator `admin`; their ids.
async fn fill(clients: &[Client], admin: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
        let calls = chunk.iter().map(|&i| {
            let mut c = clients[i % clients.len()].clone();
            let tier = [
                PriorityTier::Standard,
                PriorityTier::Expedited,
                PriorityTier::Critical,
            ][i % 3];
            let request = authed(submit("starter", tier, &format!("fill-{i}")), admin);
            async move { c.submit_request(request).await }
        });
        for r in join_all(calls).await {
            ids.push(
                r.expect("submitted")
                    .into_inner()
                    .request
                    .unwrap()
                    .request_id,
            );
        }
    }
    ids
}

/// `workers` workers over `clients` claim and complete until the queue is empty; every
/// request id each of them completed.
async fn drain(clients: &[Client], worker: &str, workers: usize) -> Vec<String> {
    let tasks = (0..workers).map(|w| {
        let mut c = clients[w % clients.len()].clone();
        let token = worker.to_owned();
        tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let job = c
                    .claim_job(authed(claim(&format!("w{w}"), Duration::ZERO), &token))
                    .await
                    .expect("claim")
                    .into_inner()
                    .job;
                let Some(job) = job else { return done };
                c.complete_job(authed(
                    pb::CompleteJobRequest {
                        job_id: job.job_id,
                        lease_token: job.lease_token,
                        result: Default::default(),
                    },
                    &token,
                ))
                .await
                .expect("a live lease completes");
                done.push(job.request_id);
            }
        })
    });
    join_all(tasks)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect()
}

async fn assert_exactly_once(client: &mut Client, admin: &str, ids: &[String], done: &[String]) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in done {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(done.len(), ids.len(), "every request completed, none twice");
    assert!(
        ids.iter().all(|id| counts.get(id.as_str()) == Some(&1)),
        "each exactly once"
    );
    for id in ids.iter().step_by(25) {
        let r = client
            .get_request(authed(
                pb::GetRequestRequest {
                    request_id: id.clone(),
                },
                admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        assert_eq!(
            (r.state(), r.attempts),
            (RequestState::Succeeded, 1),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_workers_complete_every_request_exactly_once() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let client = one.client().await;
        let ids = fill(std::slice::from_ref(&client), &one.admin.access_token, 200).await;
        let done = drain(std::slice::from_ref(&client), &one.worker, 8).await;
        assert_exactly_once(&mut client.clone(), &one.admin.access_token, &ids, &done).await;
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_workers_across_two_replicas_on_postgres_claim_each_request_once() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let two = Two::start().await;
    let clients = [
        two.first.provisioning().await,
        two.second.provisioning().await,
    ];
    let ids = fill(&clients, &two.admin.access_token, 500).await;
    let done = drain(&clients, &two.worker, 8).await;
    assert_exactly_once(
        &mut clients[1].clone(),
        &two.admin.access_token,
        &ids,
        &done,
    )
    .await;
    two.stop().await;
}
