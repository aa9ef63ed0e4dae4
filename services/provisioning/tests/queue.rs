//! The queue on both backends: claims strictly by tier then FIFO, positions right after each
//! claim, `not_before` respected, a long-poll woken by a submit, who may submit what, and bad
//! input named by field with nothing stored.

mod common;

use std::time::Duration;

use common::{One, claim, reason, seconds, submit};
use ironmesh_proto::ironmesh::provisioning::v1::{self as pb, PriorityTier};
use ironmesh_testkit::{authed, backends};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_come_by_tier_then_in_submission_order_with_positions_that_follow() {
    use PriorityTier::{Critical, Expedited, Standard};
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let mut client = one.client().await;
        let order = [Standard, Expedited, Standard, Critical, Expedited, Standard];
        let mut ids = Vec::new();
        for (i, tier) in order.iter().enumerate() {
            let submitted = client
                .submit_request(one.op(submit("starter", *tier, &format!("k{i}"))))
                .await
                .unwrap()
                .into_inner();
            let request = submitted.request.unwrap();
            assert_eq!(request.state(), pb::RequestState::Queued);
            assert_eq!(submitted.position.unwrap().queue_length, i as i64 + 1);
            ids.push((request.request_id, *tier));
        }
        // Critical, then the expedited in order, then the standard in order.
        let expected: Vec<String> = [3, 1, 4, 0, 2, 5]
            .iter()
            .map(|&i| ids[i].0.clone())
            .collect();
        for (n, want) in expected.iter().enumerate() {
            for (k, later) in expected[n..].iter().enumerate() {
                let p = client
                    .get_queue_position(one.op(pb::GetQueuePositionRequest {
                        request_id: later.clone(),
                    }))
                    .await
                    .unwrap()
                    .into_inner()
                    .position
                    .unwrap();
                assert_eq!(p.position, k as i64 + 1, "{backend:?}: position of {later}");
                assert_eq!(p.queue_length, (expected.len() - n) as i64);
            }
            let job = client
                .claim_job(one.work(claim("w1", Duration::ZERO)))
                .await
                .unwrap()
                .into_inner()
                .job
                .expect("a job");
            assert_eq!(&job.request_id, want, "{backend:?}: claim {n}");
            assert_eq!(job.attempt, 1);
            let p = client
                .get_queue_position(one.op(pb::GetQueuePositionRequest {
                    request_id: want.clone(),
                }))
                .await
                .unwrap()
                .into_inner()
                .position
                .unwrap();
            assert_eq!((p.state(), p.position), (pb::RequestState::Running, 0));
            assert!(p.estimated_wait.is_none());
        }
        let none = client
            .claim_job(one.work(claim("w1", Duration::ZERO)))
            .await
            .unwrap();
        assert!(none.into_inner().job.is_none(), "the queue is empty");
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_before_holds_a_retry_back_and_a_waiting_claim_is_woken_by_a_submit() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let mut client = one.client().await;
        let first = client
            .submit_request(one.op(submit("starter", PriorityTier::Standard, "")))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let job = client
            .claim_job(one.work(claim("w1", Duration::ZERO)))
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        let failed = client
            .fail_job(one.work(pb::FailJobRequest {
                job_id: job.job_id,
                lease_token: job.lease_token,
                error: "the cloud said try later".into(),
                retryable: true,
                retry_after: seconds(2),
            }))
            .await
            .unwrap()
            .into_inner();
        let request = failed.request.unwrap();
        assert_eq!(request.state(), pb::RequestState::Queued, "{backend:?}");
        assert!(failed.dead_letter.is_none());
        let not_before = request.not_before.expect("backing off");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(not_before.seconds > now, "at least retry_after ahead");
        // Not claimable yet: a claim that does not wait gets nothing.
        let early = client
            .claim_job(one.work(claim("w1", Duration::ZERO)))
            .await
            .unwrap();
        assert!(
            early.into_inner().job.is_none(),
            "{backend:?}: held back by not_before"
        );
        // A waiting claim gets it once not_before has passed.
        let again = client
            .claim_job(one.work(claim("w1", Duration::from_secs(10))))
            .await
            .unwrap()
            .into_inner()
            .job
            .expect("claimable after not_before");
        assert_eq!(
            (again.request_id.as_str(), again.attempt),
            (first.request_id.as_str(), 2)
        );
        let late = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(late >= not_before.seconds, "not claimed before not_before");

        // A claim waiting on an empty queue is woken by a submit through this replica.
        let mut waiting = client.clone();
        let worker = one.worker.clone();
        let waiter = tokio::spawn(async move {
            waiting
                .claim_job(authed(claim("w2", Duration::from_secs(25)), &worker))
                .await
                .map(|r| r.into_inner().job)
        });
        let second = client
            .submit_request(one.op(submit("starter", PriorityTier::Standard, "")))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let woken = waiter
            .await
            .unwrap()
            .unwrap()
            .expect("the waiting claim got the job");
        assert_eq!(woken.request_id, second.request_id);
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_submit_what_and_bad_input_names_the_field() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let (ada, bob) = (one.mesh.customer().await, one.mesh.customer().await);
        let mut client = one.client().await;
        macro_rules! as_ada {
            ($m:expr) => {
                authed($m, &ada.access_token)
            };
        }
        let critical = client
            .submit_request(as_ada!(submit("starter", PriorityTier::Critical, "")))
            .await
            .unwrap_err();
        assert_eq!(
            critical.code(),
            Code::PermissionDenied,
            "{backend:?}: {critical:?}"
        );
        let mut for_bob = submit("starter", PriorityTier::Standard, "");
        for_bob.customer_id = bob.user_id.clone();
        let other = client
            .submit_request(as_ada!(for_bob.clone()))
            .await
            .unwrap_err();
        assert_eq!(other.code(), Code::PermissionDenied);
        let by_op = client
            .submit_request(one.op(for_bob))
            .await
            .unwrap()
            .into_inner();
        let bobs = by_op.request.unwrap();
        assert_eq!(bobs.customer_id, bob.user_id);

        let bad = client
            .submit_request(as_ada!(pb::SubmitRequestRequest {
                customer_id: "nobody".into(),
                plan: "Gold Plan".into(),
                priority_tier: 0,
                idempotency_key: "k".repeat(65),
            }))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert_eq!(
            ironmesh_testkit::violations(&bad),
            ["customer_id", "plan", "priority_tier", "idempotency_key"]
        );
        let unknown = client
            .submit_request(as_ada!(submit("platinum", PriorityTier::Standard, "")))
            .await
            .unwrap_err();
        assert_eq!(ironmesh_testkit::violations(&unknown), ["plan"]);

        // Ada sees only her own: none so far; Bob's is NOT_FOUND to her.
        let mine = client
            .list_requests(as_ada!(pb::ListRequestsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(mine.requests.is_empty(), "nothing of Ada's was stored");
        let hidden = client
            .get_request(as_ada!(pb::GetRequestRequest {
                request_id: bobs.request_id.clone()
            }))
            .await
            .unwrap_err();
        assert_eq!(hidden.code(), Code::NotFound);
        let cancel = client
            .cancel_request(as_ada!(pb::CancelRequestRequest {
                request_id: bobs.request_id.clone(),
                reason: String::new(),
            }))
            .await
            .unwrap_err();
        assert_eq!(cancel.code(), Code::NotFound);

        // Customers cannot act as workers, and workers need a valid lease.
        let not_worker = client
            .claim_job(as_ada!(claim("w1", Duration::ZERO)))
            .await
            .unwrap_err();
        assert_eq!(not_worker.code(), Code::PermissionDenied, "{not_worker:?}");
        let forged = client
            .heartbeat(one.work(pb::HeartbeatRequest {
                job_id: uuid::Uuid::now_v7().to_string(),
                lease_token: "0".repeat(32),
                lease_duration: None,
                progress: String::new(),
            }))
            .await
            .unwrap_err();
        assert_eq!(
            (forged.code(), reason(&forged).as_str()),
            (Code::FailedPrecondition, "LEASE_LOST")
        );
        let short = client
            .claim_job(one.work(pb::ClaimJobRequest {
                worker_id: String::new(),
                lease_duration: seconds(1),
                wait_timeout: seconds(31),
            }))
            .await
            .unwrap_err();
        assert_eq!(
            ironmesh_testkit::violations(&short),
            ["worker_id", "lease_duration", "wait_timeout"]
        );
        one.stop().await;
    }
}
