//! What the credential tests share: a set to submit, a customer's request, reading it back,
//! the worker's GetJobCredentials, and provisioning's database opened beside the service.

use ironmesh_proto::ironmesh::provisioning::v1::{self as pb, PriorityTier};
use ironmesh_runtime::{Database, ServiceKind, with_pool};
use ironmesh_testkit::{Session, authed};

use super::{Client, One, submit};

/// A secret no other part of the test data contains.
pub fn secret() -> String {
    format!("wJalrXUtnFEMI-K7MDENG-{}", uuid::Uuid::now_v7().simple())
}

pub fn credentials(request_id: &str, kind: &str, secret: &str) -> pb::SubmitCredentialsRequest {
    pb::SubmitCredentialsRequest {
        request_id: request_id.to_owned(),
        kind: kind.to_owned(),
        material: [
            ("access_key_id".to_owned(), "AKIAEXAMPLE".to_owned()),
            ("secret_access_key".to_owned(), secret.to_owned()),
        ]
        .into(),
    }
}

pub async fn request_of(client: &mut Client, who: &Session) -> pb::ProvisioningRequest {
    client
        .submit_request(authed(
            submit("starter", PriorityTier::Standard, ""),
            &who.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap()
}

pub async fn get(one: &One, client: &mut Client, id: &str) -> pb::ProvisioningRequest {
    client
        .get_request(one.op(pb::GetRequestRequest {
            request_id: id.to_owned(),
        }))
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap()
}

pub async fn job_credentials(
    one: &One,
    client: &mut Client,
    job: &pb::Job,
) -> Result<Vec<pb::JobCredential>, tonic::Status> {
    client
        .get_job_credentials(one.work(pb::GetJobCredentialsRequest {
            job_id: job.job_id.clone(),
            lease_token: job.lease_token.clone(),
        }))
        .await
        .map(|r| r.into_inner().credentials)
}

/// Provisioning's database, opened beside the running service.
pub async fn database(one: &One) -> Database {
    let url = one.mesh.config().database_url(ServiceKind::Provisioning);
    Database::connect(&url, ServiceKind::Provisioning.name())
        .await
        .unwrap()
}

pub async fn stored_rows(db: &Database, request_id: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM provisioning_credentials WHERE request_id = $1";
    with_pool!(db, pool => sqlx::query_scalar(sql).bind(request_id).fetch_one(pool).await).unwrap()
}

/// Runs `sql` with `a` as `$1`.
pub async fn execute(db: &Database, sql: &str, a: &str) {
    with_pool!(db, pool => sqlx::query(sql).bind(a).execute(pool).await.map(drop)).unwrap();
}

/// The job a claim by `worker` (a worker's token) gets now; there must be one.
pub async fn next_job(client: &mut Client, worker: &str) -> pb::Job {
    client
        .claim_job(authed(super::claim("w", std::time::Duration::ZERO), worker))
        .await
        .unwrap()
        .into_inner()
        .job
        .expect("a claimable job")
}

/// Stores `request` (a set for one of `who`'s requests); the stored set's metadata.
pub async fn store(
    client: &mut Client,
    who: &Session,
    request: pb::SubmitCredentialsRequest,
) -> pb::CredentialInfo {
    client
        .submit_credentials(authed(request, &who.access_token))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap()
}
