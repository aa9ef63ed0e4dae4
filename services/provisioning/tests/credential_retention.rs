//! A failed request keeps its credentials while it can still be replayed — until its last
//! dead letter is purged — on both backends.

mod common;

use common::One;
use common::creds::{
    credentials, database, get, job_credentials, next_job, request_of, secret, store, stored_rows,
};
use ironmesh_proto::ironmesh::provisioning::v1::{self as pb, RequestState};
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::backends;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_keeps_its_credentials_for_a_replay_until_its_dead_letter_goes() {
    for backend in backends() {
        let one = One::start(backend, |s| s.max_attempts = 1).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        let id = request_of(&mut client, &ada).await.request_id;
        let token = secret();
        store(&mut client, &ada, credentials(&id, "api_token", &token)).await;
        let db = database(&one).await;
        let mut dead_letter = String::new();
        for round in 0..2 {
            let job = next_job(&mut client, &one.worker).await;
            let sets = job_credentials(&one, &mut client, &job).await.unwrap();
            assert_eq!(
                sets[0].material["secret_access_key"], token,
                "{backend:?} round {round}"
            );
            let failed = client
                .fail_job(one.work(pb::FailJobRequest {
                    job_id: job.job_id.clone(),
                    lease_token: job.lease_token.clone(),
                    error: "the cloud said no".into(),
                    retryable: false,
                    retry_after: None,
                }))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(failed.request.unwrap().state(), RequestState::Failed);
            dead_letter = failed.dead_letter.unwrap().dead_letter_id;
            // FAILED, but replayable: the credentials stay.
            assert_eq!(stored_rows(&db, &id).await, 1);
            if round == 0 {
                client
                    .replay_dead_letter(one.op(pb::ReplayDeadLetterRequest {
                        dead_letter_id: dead_letter.clone(),
                    }))
                    .await
                    .unwrap();
            }
        }
        // Retention passes for the replayed dead letter only: the last one can still replay.
        let store = ironmesh_provisioning::store::Store::new(
            db.clone(),
            ironmesh_outbox::Events::writer(one.mesh.config(), ServiceKind::Provisioning).unwrap(),
        );
        let live = store.dead_letter(&dead_letter).await.unwrap().unwrap();
        store
            .purge_dead_letters(live.dead_lettered_at)
            .await
            .unwrap();
        assert_eq!(
            stored_rows(&db, &id).await,
            1,
            "{backend:?}: still replayable"
        );
        // Once the last dead letter is gone, nothing can run the request again.
        let later = live.dead_lettered_at + chrono::Duration::seconds(1);
        assert_eq!(store.purge_dead_letters(later).await.unwrap(), 1);
        assert_eq!(stored_rows(&db, &id).await, 0, "{backend:?}");
        assert!(
            get(&one, &mut client, &id)
                .await
                .credential_kinds
                .is_empty()
        );
        db.close().await;
        one.stop().await;
    }
}
