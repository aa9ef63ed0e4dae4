//! Key rotation for credentials: `ironmesh admin rotate-credential-key` (its library call)
//! makes new sets use the new key id, every replica's rewrap task moves the older rows until
//! the report shows none under the old key, and every set still decrypts; replicas creating
//! the first key or rotating at once agree on one linear sequence of keys.

mod common;

use std::collections::BTreeSet;

use common::creds::{next_job, request_of, store};
use common::{Client, LIMIT, One, Two};
use ironmesh_outbox::Events;
use ironmesh_proto::ironmesh::provisioning::v1 as pb;
use ironmesh_provisioning::credentials::CredentialKeys;
use ironmesh_provisioning::operator::{self, master_keyring};
use ironmesh_provisioning::store::Store;
use ironmesh_runtime::{Config, Database, ServiceKind};
use ironmesh_testkit::{Backend, Session, authed, backends, eventually};

async fn with_credentials(client: &mut Client, who: &Session) -> (String, String) {
    let id = request_of(client, who).await.request_id;
    let request = pb::SubmitCredentialsRequest {
        request_id: id.clone(),
        kind: "api_token".into(),
        material: [("token".to_owned(), format!("secret-for-{id}"))].into(),
    };
    let info = store(client, who, request).await;
    (id, info.key_id)
}

/// Rows per key id, as the operator's report shows them.
async fn report(config: &Config) -> Vec<(String, i64)> {
    let report = operator::credential_key_report(config).await.unwrap();
    report.into_iter().map(|k| (k.key_id, k.rows)).collect()
}

/// Every claimable job's credentials decrypt to what was submitted.
async fn all_open(client: &mut Client, worker: &str, n: usize) {
    for _ in 0..n {
        let job = next_job(client, worker).await;
        let sets = client
            .get_job_credentials(authed(
                pb::GetJobCredentialsRequest {
                    job_id: job.job_id.clone(),
                    lease_token: job.lease_token.clone(),
                },
                worker,
            ))
            .await
            .unwrap()
            .into_inner()
            .credentials;
        assert_eq!(sets.len(), 1);
        assert_eq!(
            sets[0].material["token"],
            format!("secret-for-{}", job.request_id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rotation_and_rewrap_no_row_uses_the_old_key() {
    for backend in backends() {
        let one = One::start(backend, |s| s.credential_rewrap_interval_ms = 50).await;
        let ada = one.mesh.customer().await;
        let mut client = one.client().await;
        for _ in 0..3 {
            assert_eq!(with_credentials(&mut client, &ada).await.1, "kek-1");
        }
        let (new, after) = operator::rotate_credential_key(one.mesh.config())
            .await
            .unwrap();
        assert_eq!(new, "kek-2");
        assert_eq!(after.iter().map(|k| k.rows).sum::<i64>(), 3);
        assert_eq!(
            with_credentials(&mut client, &ada).await.1,
            "kek-2",
            "{backend:?}"
        );
        let config = one.mesh.config().clone();
        eventually("the rewrap task moves every row", LIMIT, || {
            let config = config.clone();
            async move {
                let now = report(&config).await;
                (now == [("kek-1".to_owned(), 0), ("kek-2".to_owned(), 4)]).then_some(())
            }
        })
        .await;
        all_open(&mut client, &one.worker, 4).await;
        one.stop().await;
    }
}

/// The store and keys of `config`'s provisioning database, as a replica has them.
async fn keys(config: &Config) -> (CredentialKeys, Database) {
    let url = config.database_url(ServiceKind::Provisioning);
    let db = Database::connect(&url, ServiceKind::Provisioning.name())
        .await
        .unwrap();
    let store = Store::new(
        db.clone(),
        Events::writer(config, ServiceKind::Provisioning).unwrap(),
    );
    (
        CredentialKeys::new(store, master_keyring(config).unwrap()),
        db,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_keys_and_rotations_make_one_sequence() {
    for backend in backends() {
        let one = One::start(backend, |s| s.credential_rewrap_interval_ms = 86_400_000).await;
        let (keys, db) = keys(one.mesh.config()).await;
        let firsts = futures_util::future::join_all((0..8).map(|_| {
            let keys = keys.clone();
            async move { keys.keyring().await.unwrap().current_id().to_owned() }
        }))
        .await;
        assert!(
            firsts.iter().all(|id| id == "kek-1"),
            "{backend:?}: {firsts:?}"
        );
        let rotated: BTreeSet<String> = futures_util::future::join_all((0..4).map(|_| {
            let keys = keys.clone();
            async move { keys.rotate().await.unwrap() }
        }))
        .await
        .into_iter()
        .collect();
        let want: BTreeSet<String> = (2..=5).map(|n| format!("kek-{n}")).collect();
        assert_eq!(rotated, want, "{backend:?}");
        assert_eq!(keys.keyring().await.unwrap().current_id(), "kek-5");
        db.close().await;
        one.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_keys_and_rewrap_together() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let two = Two::start_with(|s| s.credential_rewrap_interval_ms = 50).await;
    let ada = two.first.customer().await;
    let mut first = two.first.provisioning().await;
    let mut second = two.second.provisioning().await;
    for n in 0..20 {
        let client = if n % 2 == 0 { &mut first } else { &mut second };
        with_credentials(client, &ada).await;
    }
    operator::rotate_credential_key(two.first.config())
        .await
        .unwrap();
    let config = two.first.config().clone();
    eventually("both replicas' rewrap tasks move every row", LIMIT, || {
        let config = config.clone();
        async move {
            let now = report(&config).await;
            (now == [("kek-1".to_owned(), 0), ("kek-2".to_owned(), 20)]).then_some(())
        }
    })
    .await;
    all_open(&mut second, &two.worker, 20).await;
    two.stop().await;
}
