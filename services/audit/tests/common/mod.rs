//! Helpers both test files use: a mesh with audit and auth, entries, bounded waits.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use ironmesh_audit::domain::{NewEntry, Outcome};
use ironmesh_audit::keys::SigningKeys;
use ironmesh_audit::service::Audit;
use ironmesh_audit::store::Store;
use ironmesh_proto::ironmesh::audit::v1 as pb;
use ironmesh_runtime::{Database, ServiceKind};
use ironmesh_testkit::{Backend, TestMesh, authed};

/// The most any direct store call in these tests may take.
pub const LIMIT: Duration = Duration::from_secs(30);

pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("bounded by the test limit")
}

/// A mesh with audit (and auth, for an administrator's token), an admin token, and a second
/// connection pool to audit's database (what another replica would hold). Auth subscribes
/// nobody here, so the log holds exactly what a test appends (auth's events reaching audit are
/// cli/tests/events.rs's business).
pub async fn mesh(backend: Backend) -> (TestMesh, String, Database) {
    let mesh = TestMesh::start_with(
        backend,
        &[ServiceKind::Audit, ServiceKind::Auth],
        false,
        |config| {
            config
                .update_section::<ironmesh_outbox::EventsConfig>(|events| {
                    events.subscribers.clear()
                })
                .expect("valid events section")
        },
    )
    .await;
    let admin = mesh.admin().await.access_token;
    let url = mesh.config().database_url(ServiceKind::Audit);
    let db = Database::connect(&url, "audit").await.expect("connect");
    (mesh, admin, db)
}

pub fn entry(key: &str) -> NewEntry {
    NewEntry {
        occurred_at: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap(),
        actor: "user-1".into(),
        action: "orders.order.cancel".into(),
        resource: "orders/0190".into(),
        outcome: Outcome::Success,
        source_service: "orders".into(),
        request_id: format!("req-{key}"),
        idempotency_key: key.into(),
        details: BTreeMap::from([("reason".into(), "asked".into())]),
    }
}

pub async fn verify(mesh: &TestMesh, admin: &str, start: i64, end: i64) -> pb::VerifyChainResponse {
    mesh.audit()
        .await
        .verify_chain(authed(
            pb::VerifyChainRequest {
                start_sequence: start,
                end_sequence: end,
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The audit operations over `db` (another replica of the mesh's audit), sealing its signing
/// key with the mesh's master key.
pub fn audit(mesh: &TestMesh, db: Database) -> Audit {
    let store = Store::new(db);
    let sealing = ironmesh_audit::keys::sealing(mesh.config()).expect("the test config seals");
    Audit::new(store.clone(), SigningKeys::new(store, sealing))
}
