//! WatchQueuePosition on both backends: the position now, then one message per change as the
//! jobs ahead finish, a last message when the request leaves QUEUED, then the end (OK) — over
//! gRPC and over REST through the gateway (NDJSON); and 1,000 watchers share one position
//! computation per refresh (the query counter stays bounded, not ×1000).

mod common;

use std::time::Duration;

use common::{LIMIT, One, claim, submit};
use futures_util::StreamExt as _;
use ironmesh_proto::ironmesh::provisioning::v1::{self as pb, PriorityTier, RequestState};
use ironmesh_testkit::{TestMesh, authed, backends};

/// Claims the next job and completes it.
async fn finish_next(one: &One, client: &mut common::Client) -> String {
    let job = client
        .claim_job(one.work(claim("w", Duration::ZERO)))
        .await
        .unwrap()
        .into_inner()
        .job
        .expect("a job ahead");
    client
        .complete_job(one.work(pb::CompleteJobRequest {
            job_id: job.job_id,
            lease_token: job.lease_token,
            result: Default::default(),
        }))
        .await
        .unwrap();
    job.request_id
}

async fn queue_of(one: &One, client: &mut common::Client, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let r = client
            .submit_request(one.op(submit("starter", PriorityTier::Standard, "")))
            .await
            .unwrap()
            .into_inner();
        ids.push(r.request.unwrap().request_id);
    }
    ids
}

fn quick(s: &mut ironmesh_provisioning::settings::ProvisioningConfig) {
    s.position_refresh_ms = 100;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_follows_the_position_down_then_ends_when_claimed() {
    for backend in backends() {
        let one = One::start(backend, quick).await;
        let mut client = one.client().await;
        let ids = queue_of(&one, &mut client, 3).await;
        let mut stream = client
            .watch_queue_position(one.op(pb::WatchQueuePositionRequest {
                request_id: ids[2].clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        let mut next = async || {
            tokio::time::timeout(LIMIT, stream.next())
                .await
                .expect("a message within the limit")
                .map(|m| m.expect("no error").position.unwrap())
        };
        let first = next().await.unwrap();
        assert_eq!(
            (first.state(), first.position, first.queue_length),
            (RequestState::Queued, 3, 3)
        );
        for ahead in [2, 1] {
            finish_next(&one, &mut client).await;
            let p = next().await.unwrap();
            assert_eq!((p.position, p.queue_length), (ahead, ahead), "{backend:?}");
        }
        let claimed = client
            .claim_job(one.work(claim("w", Duration::ZERO)))
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        assert_eq!(claimed.request_id, ids[2]);
        let last = next().await.unwrap();
        assert_eq!((last.state(), last.position), (RequestState::Running, 0));
        assert!(
            next().await.is_none(),
            "the stream ends after the request left QUEUED"
        );
        one.stop().await;
    }
}

/// The NDJSON lines of a REST stream, each parsed as it arrives.
struct Lines {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Lines {
    async fn next(&mut self) -> Option<serde_json::Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("a JSON line"));
            }
            let chunk = tokio::time::timeout(LIMIT, self.response.chunk())
                .await
                .expect("a chunk within the limit")
                .expect("a readable stream")?;
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rest_the_gateway_streams_one_json_object_per_position() {
    for backend in backends() {
        // The gateway is ready only when every service is: the whole mesh.
        let mesh = TestMesh::start_with(backend, &ironmesh_runtime::ServiceKind::ALL, true, |c| {
            common::settings(c, quick)
        })
        .await;
        let admin = mesh.admin().await;
        let one = One {
            worker: common::worker_token(mesh.config()),
            mesh,
            admin,
        };
        let mut client = one.client().await;
        let ids = queue_of(&one, &mut client, 2).await;
        let url = format!(
            "http://{}/v1/provisioning/requests/{}/position:watch",
            one.mesh.gateway_addr(),
            ids[1]
        );
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(&one.admin.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{backend:?}");
        let mut lines = Lines {
            response,
            buffer: Vec::new(),
        };
        let first = lines.next().await.unwrap();
        assert_eq!(first["result"]["position"]["position"], "2", "{first}");
        finish_next(&one, &mut client).await;
        let second = lines.next().await.unwrap();
        assert_eq!(second["result"]["position"]["position"], "1", "{second}");
        let _ = client
            .cancel_request(one.op(pb::CancelRequestRequest {
                request_id: ids[1].clone(),
                reason: String::new(),
            }))
            .await
            .unwrap();
        let last = lines.next().await.unwrap();
        assert_eq!(
            last["result"]["position"]["state"], "REQUEST_STATE_CANCELLED",
            "{last}"
        );
        assert!(lines.next().await.is_none(), "the stream ends");
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_watchers_share_one_computation_per_refresh() {
    const WATCHERS: usize = 1000;
    let backend = backends().pop().expect("a backend");
    let one = One::start(backend, quick).await;
    let mut client = one.client().await;
    let ids = queue_of(&one, &mut client, 6).await;
    let watched = ids[5].clone();
    // Ten connections of a hundred streams each.
    let mut channels = Vec::new();
    for _ in 0..10 {
        channels.push(one.mesh.provisioning().await);
    }
    let mut streams = Vec::new();
    for i in 0..WATCHERS {
        let mut c = channels[i % channels.len()].clone();
        let request = authed(
            pb::WatchQueuePositionRequest {
                request_id: watched.clone(),
            },
            &one.admin.access_token,
        );
        let mut stream = c.watch_queue_position(request).await.unwrap().into_inner();
        let first = stream.next().await.unwrap().unwrap().position.unwrap();
        assert_eq!(first.position, 6);
        streams.push(stream);
    }
    let before = ironmesh_provisioning::metrics::position_queries();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        finish_next(&one, &mut client).await;
    }
    // Every watcher sees the position fall to 3.
    let seen = futures_util::future::join_all(streams.iter_mut().map(|s| async move {
        loop {
            let p = tokio::time::timeout(LIMIT, s.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if p.position.unwrap().position == 3 {
                return;
            }
        }
    }));
    seen.await;
    let queries = ironmesh_provisioning::metrics::position_queries() - before;
    let refreshes = started.elapsed().as_millis() as u64 / 100 + 2;
    eprintln!("{WATCHERS} watchers: {queries} position queries over {refreshes} refreshes");
    assert!(
        queries <= refreshes,
        "one shared query per refresh, not one per watcher: {queries} > {refreshes}"
    );
    drop(streams);
    one.stop().await;
}
