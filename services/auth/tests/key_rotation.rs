//! Signing-key rotation while auth answers the key set from memory: a new key is published
//! before it signs, so a verifier meeting its `kid` finds it in the JWKS of any replica; tokens
//! signed before stay valid until they expire. On both backends, and on PostgreSQL with two auth
//! replicas (tokens from one, the JWKS from the other).

use chrono::Utc;
use ironmesh_auth::ScheduledKey;
use ironmesh_proto::ironmesh::auth::v1 as pb;
use ironmesh_runtime::{Config, ServiceKind};
use ironmesh_testkit::{Backend, TestDatabase, TestMesh, backends, test_config};

mod common;
use common::orders_accepts;

/// Short periods for the tests: each replica re-reads its key set every 300 ms; a new key
/// signs 2 s after it is made. Verifiers may refetch the JWKS on every unknown `kid`.
fn periods(config: &mut Config) {
    config.tokens.jwks_cache_ms = 300;
    config.tokens.key_publish_secs = 2;
    config.tokens.jwks_refresh_secs = 0;
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn jwks(mesh: &TestMesh) -> Vec<String> {
    let keys = mesh
        .auth()
        .await
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(
        keys.iter()
            .all(|k| k.kty == "OKP" && k.crv == "Ed25519" && k.alg == "EdDSA")
    );
    keys.into_iter().map(|k| k.kid).collect()
}

/// Refreshes the session (a new access token from `issuer`, no password hashing) until a token
/// names the new key, checking each against the schedule: a token issued wholly before
/// `signs_from` names the old key, one asked for after it names the new one. Every token is
/// accepted by orders (behind `verifier`'s JWKS) at once. Returns the first new-key token.
async fn refresh_until_new_key(
    issuer: &TestMesh,
    verifier: &TestMesh,
    mut refresh_token: String,
    old: &str,
    new: &ScheduledKey,
) -> String {
    let mut auth = issuer.auth().await;
    let mut saw_old = false;
    let deadline = new.signs_from + chrono::Duration::seconds(20);
    loop {
        assert!(Utc::now() < deadline, "no token with the new key by then");
        let asked = Utc::now();
        let tokens = auth
            .refresh(pb::RefreshRequest { refresh_token })
            .await
            .unwrap()
            .into_inner()
            .tokens
            .unwrap();
        let answered = Utc::now();
        let signed_by = kid(&tokens.access_token);
        if answered < new.signs_from {
            assert_eq!(signed_by, old, "signed with the new key before its time");
            saw_old = true;
        }
        if asked >= new.signs_from {
            assert_eq!(
                signed_by, new.kid,
                "still the old key after {}",
                new.signs_from
            );
        }
        // Any JWKS fetched now, from any replica, lists the key this token names.
        assert!(
            orders_accepts(verifier, &tokens.access_token).await,
            "a token signed with {signed_by} was refused"
        );
        if signed_by == new.kid {
            assert!(saw_old, "no token was issued before the new key's time");
            return tokens.access_token;
        }
        refresh_token = tokens.refresh_token;
    }
}

/// `ironmesh admin rotate-signing-key` (another process, as a second replica would be) makes a
/// key that the running auth lists before it signs with it and signs with from its time; the
/// old key's tokens stay valid and both keys are published.
#[tokio::test]
async fn a_new_key_is_published_before_it_signs_and_old_tokens_stay_valid() {
    for backend in backends() {
        let mesh = TestMesh::start_with(
            backend,
            &[ServiceKind::Auth, ServiceKind::Orders],
            false,
            periods,
        )
        .await;
        let before = mesh.customer().await;
        let old = kid(&before.access_token);
        assert!(orders_accepts(&mesh, &before.access_token).await);

        let made = Utc::now();
        let new = ironmesh_auth::rotate_signing_key(mesh.config())
            .await
            .unwrap();
        assert_ne!(new.kid, old);
        assert!(
            new.signs_from >= made + chrono::Duration::seconds(2),
            "{backend:?}: scheduled, not at once"
        );
        // The running replica's set, read from memory, lists the key within its cache period.
        loop {
            let kids = jwks(&mesh).await;
            assert!(kids.contains(&old), "{kids:?}");
            if kids.contains(&new.kid) {
                break;
            }
            assert!(
                Utc::now() < new.signs_from,
                "{backend:?}: not published before it signs"
            );
            tokio::task::yield_now().await;
        }

        let after =
            refresh_until_new_key(&mesh, &mesh, before.refresh_token.clone(), &old, &new).await;
        assert!(orders_accepts(&mesh, &after).await);
        assert!(
            orders_accepts(&mesh, &before.access_token).await,
            "{backend:?}: a token of the old key stays valid"
        );
        let kids = jwks(&mesh).await;
        assert!(kids.contains(&old) && kids.contains(&new.kid), "{kids:?}");
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Two auth replicas on one PostgreSQL database, each with the key set in memory: tokens come
/// from the second, orders verifies against the first's JWKS — and accepts the first token of the
/// new key at once, because the first listed it before the second signed with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_publish_a_key_before_either_signs_with_it() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipped: needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    }
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), Some(database.url()));
    periods(&mut config);
    let first = TestMesh::start_on(config, &[ServiceKind::Auth, ServiceKind::Orders], false).await;
    let mut config = first.config().clone();
    let own = config.service_mut(ServiceKind::Auth);
    own.grpc_port = 0;
    own.admin_port = 0;
    own.endpoint = None;
    let second = TestMesh::start_on(config, &[ServiceKind::Auth], false).await;

    let session = second.customer().await;
    let old = kid(&session.access_token);
    assert!(orders_accepts(&first, &session.access_token).await);
    assert!(jwks(&first).await.contains(&old), "one key set for both");

    let new = ironmesh_auth::rotate_signing_key(second.config())
        .await
        .unwrap();
    let after = refresh_until_new_key(&second, &first, session.refresh_token, &old, &new).await;
    assert!(jwks(&first).await.contains(&new.kid));
    assert!(orders_accepts(&first, &after).await);
    assert!(orders_accepts(&first, &session.access_token).await);
    assert!(second.shutdown().await.is_empty());
    assert!(first.shutdown().await.is_empty());
    database.drop_database().await;
}
