//! Leases and their fencing on both backends: a lapsed lease is reclaimed by another worker and
//! the first worker's late CompleteJob gets LEASE_LOST; cancelling a running request makes its
//! token answer REQUEST_CANCELLED; Complete and Fail repeated with one token answer the same;
//! failures up to max_attempts end FAILED with a dead letter that a replay runs once more.

mod common;

use std::time::Duration;

use common::{One, claim, reason, seconds, submit};
use ironmesh_proto::ironmesh::provisioning::v1::{self as pb, PriorityTier, RequestState};
use ironmesh_testkit::backends;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_is_claimed_again_and_the_late_completion_is_refused() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let mut client = one.client().await;
        let request = client
            .submit_request(one.op(submit("starter", PriorityTier::Standard, "")))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let mut asked = claim("slow", Duration::ZERO);
        asked.lease_duration = seconds(5);
        let first = client
            .claim_job(one.work(asked))
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        // The first worker goes quiet: after its lease the reaper requeues the request and a
        // second worker (waiting) claims it — attempt 2, a new token.
        let second = client
            .claim_job(one.work(claim("quick", Duration::from_secs(20))))
            .await
            .unwrap()
            .into_inner()
            .job
            .expect("claimed again once the first lease lapsed");
        assert_eq!(second.request_id, request.request_id, "{backend:?}");
        assert_eq!(second.attempt, 2);
        assert_ne!(second.lease_token, first.lease_token);
        let late = client
            .complete_job(one.work(pb::CompleteJobRequest {
                job_id: first.job_id.clone(),
                lease_token: first.lease_token.clone(),
                result: Default::default(),
            }))
            .await
            .unwrap_err();
        assert_eq!(
            (late.code(), reason(&late).as_str()),
            (Code::FailedPrecondition, "LEASE_LOST")
        );
        let beat = client
            .heartbeat(one.work(pb::HeartbeatRequest {
                job_id: first.job_id,
                lease_token: first.lease_token,
                lease_duration: None,
                progress: "still here".into(),
            }))
            .await
            .unwrap_err();
        assert_eq!(reason(&beat), "LEASE_LOST");
        // The second worker's lease is live: heartbeat and complete; a repeat answers the same.
        client
            .heartbeat(one.work(pb::HeartbeatRequest {
                job_id: second.job_id.clone(),
                lease_token: second.lease_token.clone(),
                lease_duration: seconds(60),
                progress: "halfway".into(),
            }))
            .await
            .unwrap();
        let done = pb::CompleteJobRequest {
            job_id: second.job_id,
            lease_token: second.lease_token,
            result: [("tenant_id".to_owned(), "t-42".to_owned())].into(),
        };
        let a = client
            .complete_job(one.work(done.clone()))
            .await
            .unwrap()
            .into_inner();
        let b = client
            .complete_job(one.work(done))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a, b, "a repeat with the same token answers the same");
        let r = a.request.unwrap();
        assert_eq!((r.state(), r.attempts), (RequestState::Succeeded, 2));
        assert_eq!(r.result.get("tenant_id").map(String::as_str), Some("t-42"));
        assert!(r.finished_at.is_some());
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_request_revokes_its_lease() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        let request = client
            .submit_request(ironmesh_testkit::authed(
                submit("starter", PriorityTier::Standard, ""),
                &ada.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let job = client
            .claim_job(one.work(claim("w", Duration::ZERO)))
            .await
            .unwrap();
        let job = job.into_inner().job.unwrap();
        let cancel = || pb::CancelRequestRequest {
            request_id: request.request_id.clone(),
            reason: "changed my mind".into(),
        };
        let cancelled = client
            .cancel_request(ironmesh_testkit::authed(cancel(), &ada.access_token))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        assert_eq!(cancelled.state(), RequestState::Cancelled, "{backend:?}");
        let again = client
            .cancel_request(one.op(cancel()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            again.request.unwrap(),
            cancelled,
            "cancelling again changes nothing"
        );
        let beat = client
            .heartbeat(one.work(pb::HeartbeatRequest {
                job_id: job.job_id.clone(),
                lease_token: job.lease_token.clone(),
                lease_duration: None,
                progress: String::new(),
            }))
            .await
            .unwrap_err();
        assert_eq!(
            (beat.code(), reason(&beat).as_str()),
            (Code::FailedPrecondition, "REQUEST_CANCELLED")
        );
        let fail = client
            .fail_job(one.work(pb::FailJobRequest {
                job_id: job.job_id,
                lease_token: job.lease_token,
                error: "killed".into(),
                retryable: true,
                retry_after: None,
            }))
            .await
            .unwrap_err();
        assert_eq!(reason(&fail), "REQUEST_CANCELLED");
        // A finished request cannot be cancelled.
        let done = client
            .submit_request(one.op(submit("starter", PriorityTier::Standard, "")))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let job = client
            .claim_job(one.work(claim("w", Duration::ZERO)))
            .await
            .unwrap();
        let job = job.into_inner().job.unwrap();
        client
            .complete_job(one.work(pb::CompleteJobRequest {
                job_id: job.job_id,
                lease_token: job.lease_token,
                result: Default::default(),
            }))
            .await
            .unwrap();
        let refused = client
            .cancel_request(one.op(pb::CancelRequestRequest {
                request_id: done.request_id,
                reason: String::new(),
            }))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition);
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_attempts_dead_letter_the_request_and_a_replay_runs_it_once_more() {
    for backend in backends() {
        let one = One::start(backend, |s| s.max_attempts = 3).await;
        let mut client = one.client().await;
        let request = client
            .submit_request(one.op(submit("starter", PriorityTier::Expedited, "")))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let mut last = None;
        for attempt in 1..=3 {
            let job = client
                .claim_job(one.work(claim("w", Duration::from_secs(10))))
                .await
                .unwrap()
                .into_inner()
                .job
                .expect("requeued after each retryable failure");
            assert_eq!(job.attempt, attempt, "{backend:?}");
            let fail = pb::FailJobRequest {
                job_id: job.job_id,
                lease_token: job.lease_token,
                error: format!("quota exceeded (attempt {attempt})"),
                retryable: true,
                retry_after: None,
            };
            let answered = client
                .fail_job(one.work(fail.clone()))
                .await
                .unwrap()
                .into_inner();
            let repeat = client.fail_job(one.work(fail)).await.unwrap().into_inner();
            assert_eq!(answered, repeat, "a repeated FailJob answers the same");
            last = Some(answered);
        }
        let last = last.unwrap();
        let failed = last.request.unwrap();
        assert_eq!((failed.state(), failed.attempts), (RequestState::Failed, 3));
        let dead = last.dead_letter.expect("a dead letter");
        assert_eq!(dead.last_error, "quota exceeded (attempt 3)");
        assert_eq!(
            (dead.request_id.as_str(), dead.attempts),
            (request.request_id.as_str(), 3)
        );

        let listed = client
            .list_dead_letters(one.op(pb::ListDeadLettersRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.dead_letters, std::slice::from_ref(&dead));
        let replay = || pb::ReplayDeadLetterRequest {
            dead_letter_id: dead.dead_letter_id.clone(),
        };
        let replayed = client
            .replay_dead_letter(one.op(replay()))
            .await
            .unwrap()
            .into_inner();
        let requeued = replayed.request.unwrap();
        assert_eq!(
            (requeued.state(), requeued.attempts),
            (RequestState::Queued, 0)
        );
        assert!(replayed.dead_letter.as_ref().unwrap().replayed_at.is_some());
        let twice = client
            .replay_dead_letter(one.op(replay()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            twice.dead_letter, replayed.dead_letter,
            "replaying again changes nothing"
        );
        let unreplayed = client
            .list_dead_letters(one.op(pb::ListDeadLettersRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(
            unreplayed.dead_letters.is_empty(),
            "replayed letters are hidden by default"
        );

        // It runs once more, and succeeds.
        let job = client
            .claim_job(one.work(claim("w", Duration::from_secs(10))))
            .await
            .unwrap()
            .into_inner()
            .job
            .expect("the replayed request");
        assert_eq!(
            (job.request_id.as_str(), job.attempt),
            (request.request_id.as_str(), 1)
        );
        client
            .complete_job(one.work(pb::CompleteJobRequest {
                job_id: job.job_id,
                lease_token: job.lease_token,
                result: Default::default(),
            }))
            .await
            .unwrap();
        let none = client
            .claim_job(one.work(claim("w", Duration::ZERO)))
            .await
            .unwrap();
        assert!(none.into_inner().job.is_none(), "ran exactly once more");

        // A non-retryable failure dead-letters at once.
        client
            .submit_request(one.op(submit("starter", PriorityTier::Standard, "")))
            .await
            .unwrap();
        let job = client
            .claim_job(one.work(claim("w", Duration::ZERO)))
            .await
            .unwrap();
        let job = job.into_inner().job.unwrap();
        let fatal = client
            .fail_job(one.work(pb::FailJobRequest {
                job_id: job.job_id,
                lease_token: job.lease_token,
                error: "plan not offered in region".into(),
                retryable: false,
                retry_after: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(fatal.request.unwrap().state(), RequestState::Failed);
        assert!(fatal.dead_letter.is_some());
        one.stop().await;
    }
}
