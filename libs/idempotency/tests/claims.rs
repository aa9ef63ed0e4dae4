//! Claims on both backends: concurrent claimers of one key make one change, a different request
//! is refused, an expired key is claimed afresh, purge removes what is past retention.

use std::time::Duration;

use ironmesh_idempotency::{Claim, claim, fingerprint, lookup, purge};
use ironmesh_runtime::storage::MigrationSet;
use ironmesh_runtime::{Database, with_pool};
use ironmesh_test_support::postgres::{Backend, TestDatabase, backends};

const MIGRATIONS: MigrationSet = ironmesh_runtime::migrations![
    1, "idempotency keys", (ironmesh_idempotency::schema::KEYS);
];
const LIMIT: Duration = Duration::from_secs(30);

struct Store {
    db: Database,
    pg: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

async fn open(backend: Backend) -> Store {
    let dir = tempfile::tempdir().unwrap();
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(TestDatabase::create().await),
    };
    let url = match &pg {
        Some(pg) => pg.url().to_owned(),
        None => format!("sqlite://{}", dir.path().join("keys.db").display()),
    };
    let db = Database::connect(&url, "keys").await.unwrap();
    db.migrate("keys", &MIGRATIONS).await.unwrap();
    Store { db, pg, _dir: dir }
}

/// Claims in its own transaction, holding it open for a moment of work before committing.
async fn claim_and_commit(db: &Database, key: &str, print: &str, resource: &str) -> Claim {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await.unwrap();
        let found = claim(&mut *tx, "customer-1", key, print, resource).await.unwrap();
        tokio::task::yield_now().await;
        tx.commit().await.unwrap();
        found
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_one_key_make_one_fresh_and_repeats_of_it() {
    for backend in backends() {
        let store = open(backend).await;
        let print = fingerprint(b"order body");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let db = store.db.clone();
                let print = print.clone();
                tokio::spawn(async move {
                    claim_and_commit(&db, "key-1", &print, &format!("order-{i}")).await
                })
            })
            .collect();
        let mut fresh = 0;
        let mut resources = Vec::new();
        for task in tasks {
            match tokio::time::timeout(LIMIT, task).await.unwrap().unwrap() {
                Claim::Fresh => fresh += 1,
                Claim::Repeat { resource } => resources.push(resource),
                Claim::Mismatch => panic!("{backend:?}: same body seen as a mismatch"),
            }
        }
        assert_eq!(
            fresh, 1,
            "{backend:?}: exactly one claimer makes the change"
        );
        let (winner,): (String,) = with_pool!(&store.db, pool => sqlx::query_as(
            "SELECT resource FROM idempotency_keys WHERE key = 'key-1'").fetch_one(pool).await.unwrap());
        assert!(
            resources.iter().all(|r| *r == winner),
            "{backend:?}: every repeat names the first claimer's resource"
        );
        if let Some(pg) = store.pg {
            store.db.close().await;
            pg.drop_database().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatch_rollback_scopes_expiry_and_purge() {
    for backend in backends() {
        let store = open(backend).await;
        let db = &store.db;
        let a = fingerprint(b"a");
        assert_eq!(claim_and_commit(db, "k", &a, "r1").await, Claim::Fresh);
        assert_eq!(
            claim_and_commit(db, "k", &fingerprint(b"b"), "r2").await,
            Claim::Mismatch,
            "{backend:?}: another body under the same key"
        );
        // Read without claiming: the repeat, the mismatch, nothing for an unused key.
        assert_eq!(
            lookup(db, "customer-1", "k", &a).await.unwrap(),
            Some(Claim::Repeat {
                resource: "r1".into()
            })
        );
        assert_eq!(
            lookup(db, "customer-1", "k", &fingerprint(b"b"))
                .await
                .unwrap(),
            Some(Claim::Mismatch)
        );
        assert_eq!(lookup(db, "customer-2", "k", &a).await.unwrap(), None);
        // Another scope does not collide.
        let other = with_pool!(db, pool => {
            let mut tx = pool.begin().await.unwrap();
            let found = claim(&mut *tx, "customer-2", "k", &a, "r3").await.unwrap();
            tx.commit().await.unwrap();
            found
        });
        assert_eq!(other, Claim::Fresh, "{backend:?}: keys are per scope");
        // A claim rolled back leaves no key behind.
        with_pool!(db, pool => {
            let mut tx = pool.begin().await.unwrap();
            assert_eq!(claim(&mut *tx, "customer-1", "rolled", &a, "r4").await.unwrap(), Claim::Fresh);
            tx.rollback().await.unwrap();
        });
        assert_eq!(claim_and_commit(db, "rolled", &a, "r5").await, Claim::Fresh);
        // Past retention (aged in place, as a day passing would): claimed afresh, then purged.
        with_pool!(db, pool => sqlx::query(
            "UPDATE idempotency_keys SET created_at_ms = created_at_ms - 90000000 WHERE key = 'k'")
            .execute(pool).await.map(|_| ()).unwrap());
        assert_eq!(
            lookup(db, "customer-1", "k", &a).await.unwrap(),
            None,
            "{backend:?}: an expired key reads as unused"
        );
        assert_eq!(
            claim_and_commit(db, "k", &fingerprint(b"b"), "r6").await,
            Claim::Fresh,
            "{backend:?}: an expired key is free again"
        );
        with_pool!(db, pool => sqlx::query(
            "UPDATE idempotency_keys SET created_at_ms = created_at_ms - 90000000 WHERE scope = 'customer-2'")
            .execute(pool).await.map(|_| ()).unwrap());
        assert_eq!(purge(db, ironmesh_idempotency::RETENTION).await.unwrap(), 1);
        let (left,): (i64,) = with_pool!(db, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM idempotency_keys").fetch_one(pool).await.unwrap());
        assert_eq!(left, 2, "{backend:?}: k (renewed) and rolled remain");
        if let Some(pg) = store.pg {
            store.db.close().await;
            pg.drop_database().await;
        }
    }
}
