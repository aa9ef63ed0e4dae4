//! `AuthService.GetUserContact` over real servers, on both backends: the notification service's
//! identity learns where to email a user; unknown and deleted users are NOT_FOUND; any other
//! caller — another service, an end user, an API key — is PERMISSION_DENIED; a malformed id is
//! INVALID_ARGUMENT naming `user_id`.

use ironmesh_interceptors::auth::service::{ServiceSecret, ServiceTokens};
use ironmesh_proto::ironmesh::auth::v1 as pb;
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{PASSWORD, TestMesh, authed, backends, violations};
use tonic::Code;

/// A service token of `service` for auth, minted with the mesh's service identity secret (what
/// that service's channels present).
fn service_token(mesh: &TestMesh, service: &str) -> String {
    let secret = ServiceSecret::decode_base64(
        mesh.config()
            .service_identity
            .secret
            .as_deref()
            .expect("the testkit configures a secret"),
    )
    .expect("a valid secret");
    ServiceTokens::new(&secret, service, "auth")
        .token()
        .to_string()
}

fn lookup(user_id: &str) -> pb::GetUserContactRequest {
    pb::GetUserContactRequest {
        user_id: user_id.to_owned(),
    }
}

/// Notification's identity gets a registered user's id, normalised email and display name, and
/// `locked` follows an administrator's lock.
#[tokio::test]
async fn notification_gets_a_users_contact() {
    for backend in backends() {
        let mesh = TestMesh::start(backend, &[ServiceKind::Auth]).await;
        let user = mesh.sign_up("  Ada@Example.COM ").await;
        let notification = service_token(&mesh, "notification");
        let mut auth = mesh.auth().await;

        let contact = auth
            .get_user_contact(authed(lookup(&user.user_id), &notification))
            .await
            .unwrap_or_else(|s| panic!("{backend:?}: {s:?}"))
            .into_inner();
        assert_eq!(
            contact,
            pb::GetUserContactResponse {
                user_id: user.user_id.clone(),
                email: "ada@example.com".to_owned(),
                display_name: "Test User".to_owned(),
                locked: false,
            },
            "{backend:?}"
        );

        let admin = mesh.admin().await;
        auth.lock_user(authed(
            pb::LockUserRequest {
                user_id: user.user_id.clone(),
                reason: "chargeback".to_owned(),
                locked_until: None,
            },
            &admin.access_token,
        ))
        .await
        .unwrap();
        let locked = auth
            .get_user_contact(authed(lookup(&user.user_id), &notification))
            .await
            .unwrap()
            .into_inner();
        assert!(locked.locked, "{backend:?}");
        assert_eq!(locked.email, "ada@example.com");
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// A well-formed id nobody has, and the id of an account deleted with DeleteMyAccount, are both
/// NOT_FOUND (the contact was there before the deletion).
#[tokio::test]
async fn unknown_and_deleted_users_are_not_found() {
    for backend in backends() {
        let mesh = TestMesh::start(backend, &[ServiceKind::Auth]).await;
        let notification = service_token(&mesh, "notification");
        let mut auth = mesh.auth().await;

        let unknown = uuid::Uuid::now_v7().to_string();
        let status = auth
            .get_user_contact(authed(lookup(&unknown), &notification))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{backend:?}: {status:?}");

        let user = mesh.customer().await;
        auth.get_user_contact(authed(lookup(&user.user_id), &notification))
            .await
            .expect("the contact exists before the deletion");
        auth.delete_my_account(authed(
            pb::DeleteMyAccountRequest {
                password: PASSWORD.to_owned(),
                totp_code: String::new(),
            },
            &user.access_token,
        ))
        .await
        .unwrap();
        let status = auth
            .get_user_contact(authed(lookup(&user.user_id), &notification))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{backend:?}: {status:?}");
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Only `service:notification` gets addresses: another service's identity (`service:orders`),
/// an end user's access token and an API key are PERMISSION_DENIED, and no credential is
/// UNAUTHENTICATED — also for the caller's own id, and before the id is even looked at.
#[tokio::test]
async fn only_notification_may_ask() {
    for backend in backends() {
        let mesh = TestMesh::start(backend, &[ServiceKind::Auth]).await;
        let user = mesh.customer().await;
        let mut auth = mesh.auth().await;
        let key = auth
            .create_api_key(authed(
                pb::CreateApiKeyRequest {
                    name: "ci".to_owned(),
                    scopes: vec!["orders:read".to_owned()],
                    expires_at: None,
                },
                &user.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .secret;
        let orders = service_token(&mesh, "orders");

        let anonymous = auth
            .get_user_contact(lookup(&user.user_id))
            .await
            .unwrap_err();
        assert_eq!(anonymous.code(), Code::Unauthenticated, "{backend:?}");
        for (who, credential) in [
            ("another service", orders.as_str()),
            ("end user", user.access_token.as_str()),
            ("api key", key.as_str()),
        ] {
            for id in [user.user_id.as_str(), "not-a-uuid"] {
                let refused = auth
                    .get_user_contact(authed(lookup(id), credential))
                    .await
                    .unwrap_err();
                assert_eq!(
                    refused.code(),
                    Code::PermissionDenied,
                    "{backend:?}: {who}, {id}"
                );
                assert!(
                    !refused.message().contains(&user.email),
                    "{backend:?}: {who}"
                );
            }
        }
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// A missing or malformed id is INVALID_ARGUMENT with a `google.rpc.BadRequest` violation on
/// `user_id`.
#[tokio::test]
async fn a_bad_user_id_is_invalid_argument() {
    for backend in backends() {
        let mesh = TestMesh::start(backend, &[ServiceKind::Auth]).await;
        let notification = service_token(&mesh, "notification");
        let mut auth = mesh.auth().await;
        for id in [
            "",
            "not-a-uuid",
            "0190f5a37c1e7b0a9c4e2f1d3b5a6c7d",
            "' OR 1=1 --",
        ] {
            let status = auth
                .get_user_contact(authed(lookup(id), &notification))
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{backend:?}: {id:?}: {status:?}"
            );
            assert_eq!(violations(&status), vec!["user_id"], "{backend:?}: {id:?}");
        }
        assert!(mesh.shutdown().await.is_empty());
    }
}
