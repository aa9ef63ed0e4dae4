//! The `internal` level over real servers, on `AuthService.AuthenticateApiKey`: only a service
//! identity passes; end users and API keys are refused; bad service tokens are
//! UNAUTHENTICATED. (That other services' API-key authentication — which calls it as the
//! service — keeps working is `api_keys_authenticate_machines_until_revoked` in `auth.rs`.)

use ironmesh_interceptors::auth::service::{ServiceSecret, ServiceTokens, now_secs};
use ironmesh_proto::ironmesh::auth::v1 as pb;
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{TestMesh, authed, backends};
use tonic::Code;

/// On both backends: a customer's access token and an API key calling `AuthenticateApiKey`
/// get PERMISSION_DENIED, no credential UNAUTHENTICATED; `service:orders`'s token (minted
/// with the mesh's secret) resolves the key; a token signed with another secret, an expired
/// one, and one addressed to another service are UNAUTHENTICATED.
#[tokio::test]
async fn only_service_identities_call_internal_methods() {
    for backend in backends() {
        let mesh = TestMesh::start(backend, &[ServiceKind::Auth]).await;
        let owner = mesh.customer().await;
        let mut auth = mesh.auth().await;
        let key = auth
            .create_api_key(authed(
                pb::CreateApiKeyRequest {
                    name: "ci".to_owned(),
                    scopes: vec!["orders:read".to_owned()],
                    expires_at: None,
                },
                &owner.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .secret;
        let lookup = || pb::AuthenticateApiKeyRequest {
            api_key: key.clone(),
        };
        let code = |result: Result<_, tonic::Status>| result.map(|_| ()).map_err(|s| s.code());

        let anonymous = auth.authenticate_api_key(lookup()).await;
        assert_eq!(code(anonymous), Err(Code::Unauthenticated), "{backend:?}");
        for (who, credential) in [("user", &owner.access_token), ("api key", &key)] {
            let refused = auth
                .authenticate_api_key(authed(lookup(), credential))
                .await;
            assert_eq!(
                code(refused),
                Err(Code::PermissionDenied),
                "{backend:?}: {who}"
            );
        }

        let secret = ServiceSecret::decode_base64(
            mesh.config()
                .service_identity
                .secret
                .as_deref()
                .expect("the testkit configures a secret"),
        )
        .expect("a valid secret");
        let service = ServiceTokens::new(&secret, "orders", "auth").token();
        let answer = auth
            .authenticate_api_key(authed(lookup(), &service))
            .await
            .expect("a service identity passes")
            .into_inner();
        assert_eq!(answer.principal_id, owner.user_id, "{backend:?}");
        assert_eq!(answer.scopes, vec!["orders:read"]);

        let now = now_secs();
        let bad = [
            (
                "forged",
                ServiceTokens::new(&ServiceSecret::generate().unwrap(), "orders", "auth").token(),
            ),
            (
                "expired",
                ServiceTokens::new(&secret, "orders", "auth")
                    .mint(now - 900, now - 600)
                    .into(),
            ),
            (
                "wrong audience",
                ServiceTokens::new(&secret, "orders", "inventory").token(),
            ),
        ];
        for (what, token) in bad {
            let refused = auth.authenticate_api_key(authed(lookup(), &token)).await;
            assert_eq!(
                code(refused),
                Err(Code::Unauthenticated),
                "{backend:?}: {what}"
            );
        }
        assert!(mesh.shutdown().await.is_empty());
    }
}
