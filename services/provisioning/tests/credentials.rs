//! Customer credentials on both backends: stored encrypted for the customer's own request,
//! readable only by the worker holding the live lease, never shown by any other RPC or in the
//! database (a dump holds no plaintext), replaced per kind, deleted when the request succeeds
//! or is cancelled; a changed stored byte or a row moved to another request does not decrypt.
//! (Retention for failed requests: `credential_retention.rs`; keys: `credential_keys.rs`.)

mod common;

use common::creds::{
    credentials, database, execute, get, job_credentials, next_job, request_of, secret, store,
    stored_rows,
};
use common::{One, dump, reason};
use ironmesh_proto::ironmesh::provisioning::v1::{self as pb, RequestState};
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{authed, backends, preconditions, violations};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_reach_only_the_live_lease_and_are_deleted_on_success() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let (ada, bob) = (one.mesh.customer().await, one.mesh.customer().await);
        let mut client = one.client().await;
        let request = request_of(&mut client, &ada).await;
        let id = request.request_id.clone();
        let (first, second) = (secret(), secret());
        let stored = store(
            &mut client,
            &ada,
            credentials(&id, "aws_access_key", &first),
        )
        .await;
        assert_eq!(stored.field_names, ["access_key_id", "secret_access_key"]);
        assert_eq!(
            (stored.kind.as_str(), stored.key_id.as_str()),
            ("aws_access_key", "kek-1")
        );
        // The same kind again replaces the set; another kind adds one.
        store(
            &mut client,
            &ada,
            credentials(&id, "aws_access_key", &second),
        )
        .await;
        store(&mut client, &ada, credentials(&id, "api_token", &first)).await;
        let shown = get(&one, &mut client, &id).await;
        assert_eq!(
            shown.credential_kinds,
            ["api_token", "aws_access_key"],
            "{backend:?}"
        );
        // Another customer's request is NOT_FOUND; an operator is not the customer.
        let theirs = client
            .submit_credentials(authed(credentials(&id, "x", "y"), &bob.access_token))
            .await
            .unwrap_err();
        assert_eq!(theirs.code(), Code::NotFound);
        let operator = client
            .submit_credentials(one.op(credentials(&id, "x", "y")))
            .await
            .unwrap_err();
        assert_eq!(operator.code(), Code::PermissionDenied);
        // Bad input names every field and stores nothing.
        let bad = pb::SubmitCredentialsRequest {
            request_id: id.clone(),
            kind: "AWS Key!".into(),
            material: Default::default(),
        };
        let bad = client
            .submit_credentials(authed(bad, &ada.access_token))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert_eq!(violations(&bad), ["kind", "material"]);
        let big = pb::SubmitCredentialsRequest {
            request_id: id.clone(),
            kind: "big".into(),
            material: (0..17).map(|i| (format!("k{i}"), "v".to_owned())).collect(),
        };
        let big = client
            .submit_credentials(authed(big, &ada.access_token))
            .await
            .unwrap_err();
        assert_eq!(violations(&big), ["material"]);
        assert_eq!(get(&one, &mut client, &id).await.credential_kinds.len(), 2);
        // Nothing the API shows, and nothing in the database, holds the material.
        let everything = format!("{shown:?} {stored:?}");
        assert!(!everything.contains(&first) && !everything.contains(&second));
        let db = database(&one).await;
        let url = one.mesh.config().database_url(ServiceKind::Provisioning);
        dump::assert_absent(&db, &url, &[&first, &second]).await;
        // The worker with the live lease sees the metadata in the job, the material through
        // GetJobCredentials; a stale token gets nothing.
        let job = next_job(&mut client, &one.worker).await;
        let kinds: Vec<&str> = job.credentials.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["api_token", "aws_access_key"]);
        let sets = job_credentials(&one, &mut client, &job).await.unwrap();
        let aws = sets
            .iter()
            .find(|s| s.info.as_ref().unwrap().kind == "aws_access_key")
            .unwrap();
        assert_eq!(aws.material["secret_access_key"], second, "the replacement");
        assert_eq!(aws.material["access_key_id"], "AKIAEXAMPLE");
        let mut stale = job.clone();
        stale.lease_token = "not-the-token".into();
        let lost = job_credentials(&one, &mut client, &stale)
            .await
            .unwrap_err();
        assert_eq!(
            (lost.code(), reason(&lost).as_str()),
            (Code::FailedPrecondition, "LEASE_LOST")
        );
        // A customer cannot call the worker's RPC.
        let denied = client
            .get_job_credentials(authed(
                pb::GetJobCredentialsRequest {
                    job_id: job.job_id.clone(),
                    lease_token: job.lease_token.clone(),
                },
                &ada.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        // Success deletes them, in the same transaction; a terminal request takes none.
        client
            .complete_job(one.work(pb::CompleteJobRequest {
                job_id: job.job_id.clone(),
                lease_token: job.lease_token.clone(),
                result: Default::default(),
            }))
            .await
            .unwrap();
        let done = get(&one, &mut client, &id).await;
        assert_eq!(done.state(), RequestState::Succeeded);
        assert!(done.credential_kinds.is_empty());
        assert_eq!(stored_rows(&db, &id).await, 0, "{backend:?}");
        let late = client
            .submit_credentials(authed(
                credentials(&id, "aws_access_key", "z"),
                &ada.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(late.code(), Code::FailedPrecondition);
        assert_eq!(preconditions(&late)[0].0, "REQUEST_STATE");
        db.close().await;
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_byte_or_a_moved_row_does_not_decrypt_and_cancel_deletes() {
    for backend in backends() {
        let one = One::start(backend, |_| {}).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        let a = request_of(&mut client, &ada).await.request_id;
        let b = request_of(&mut client, &ada).await.request_id;
        for id in [&a, &b] {
            client
                .submit_credentials(authed(
                    credentials(id, "api_token", &secret()),
                    &ada.access_token,
                ))
                .await
                .unwrap();
        }
        let db = database(&one).await;
        // Request a's row moved onto request b (b's own deleted first): b's job cannot open it.
        execute(
            &db,
            "DELETE FROM provisioning_credentials WHERE request_id = $1",
            &b,
        )
        .await;
        let moved =
            format!("UPDATE provisioning_credentials SET request_id = '{b}' WHERE request_id = $1");
        execute(&db, &moved, &a).await;
        let first = next_job(&mut client, &one.worker).await;
        let second = next_job(&mut client, &one.worker).await;
        let on_b = if first.request_id == b {
            &first
        } else {
            &second
        };
        let failed = job_credentials(&one, &mut client, on_b).await.unwrap_err();
        assert_eq!(failed.code(), Code::Internal, "{backend:?}: a moved row");
        assert!(!failed.message().contains("api_token"));
        // Put it back and flip one bit of the ciphertext, then of the wrapped key.
        let back = "UPDATE provisioning_credentials SET request_id = $1";
        execute(&db, back, &a).await;
        let on_a = if first.request_id == a {
            &first
        } else {
            &second
        };
        assert_eq!(
            job_credentials(&one, &mut client, on_a)
                .await
                .unwrap()
                .len(),
            1
        );
        // The nonce, the ciphertext proper, the tag; the wrapped key's header and tag.
        for (column, at) in [
            ("ciphertext", 0),
            ("ciphertext", 13),
            ("ciphertext", -1),
            ("wrapped_key", 0),
            ("wrapped_key", -1),
        ] {
            dump::flip(&db, column, &a, at).await;
            let tampered = job_credentials(&one, &mut client, on_a).await.unwrap_err();
            assert_eq!(
                tampered.code(),
                Code::Internal,
                "{backend:?}: {column}[{at}]"
            );
            dump::flip(&db, column, &a, at).await;
        }
        assert_eq!(
            job_credentials(&one, &mut client, on_a)
                .await
                .unwrap()
                .len(),
            1
        );
        // Cancelling a running request deletes its credentials with it.
        client
            .cancel_request(authed(
                pb::CancelRequestRequest {
                    request_id: a.clone(),
                    reason: String::new(),
                },
                &ada.access_token,
            ))
            .await
            .unwrap();
        assert_eq!(stored_rows(&db, &a).await, 0);
        assert!(get(&one, &mut client, &a).await.credential_kinds.is_empty());
        let gone = job_credentials(&one, &mut client, on_a).await.unwrap_err();
        assert_eq!(reason(&gone), "REQUEST_CANCELLED");
        db.close().await;
        one.stop().await;
    }
}
