//! Service → service calls carry the calling service's own identity, never the end user's token
//! the call was made on behalf of; only the gateway's channels forward that token.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Last, client_with, start};
use ironmesh_interceptors::auth::service::{ServiceAuthenticator, ServiceSecret, ServiceTokens};
use ironmesh_interceptors::auth::{Authenticator, PrincipalKind};
use ironmesh_interceptors::client::Credentials;
use ironmesh_interceptors::context::CallContext;
use tonic_health::pb::HealthCheckRequest;

const LIMIT: Duration = Duration::from_secs(20);
const USER_TOKEN: &str = "Bearer the-end-users-token";

/// Inside a call made by an end user, a channel with the service's credentials presents
/// `service:orders`'s token to the upstream — the upstream's metadata never holds the user's
/// token — and that token verifies there as a service principal. A forwarding (gateway)
/// channel passes the user's token instead, and a channel with no credentials sends none.
#[tokio::test]
async fn service_calls_carry_the_service_identity_not_the_users_token() {
    let mut hops = start(1, Last::Answer).await;
    let secret = ServiceSecret::generate().unwrap();
    let tokens = Arc::new(ServiceTokens::new(&secret, "orders", "inventory"));
    let context = CallContext {
        authorization: Some(USER_TOKEN.parse().unwrap()),
        ..Default::default()
    };
    let seen_with = |credentials| {
        let mut client = client_with("orders", hops.first, credentials);
        let context = context.clone();
        async move {
            tokio::time::timeout(
                LIMIT,
                context.scope(client.check(HealthCheckRequest::default())),
            )
            .await
            .expect("answered in time")
            .expect("the hop answers");
        }
    };

    seen_with(Credentials::Service(tokens.clone())).await;
    let seen = tokio::time::timeout(LIMIT, hops.seen.recv())
        .await
        .unwrap()
        .unwrap();
    let authorization = seen.authorization.expect("a credential was sent");
    assert_ne!(authorization, USER_TOKEN, "the user's token was borrowed");
    let token = authorization
        .strip_prefix("Bearer ")
        .expect("a bearer token");
    let principal = ServiceAuthenticator::new(&secret, "inventory")
        .authenticate(token)
        .await
        .expect("the upstream verifies the service token");
    assert_eq!(&*principal.subject, "service:orders");
    assert_eq!(principal.kind, PrincipalKind::Service);

    seen_with(Credentials::ForwardCaller).await;
    let seen = tokio::time::timeout(LIMIT, hops.seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.authorization.as_deref(), Some(USER_TOKEN));

    seen_with(Credentials::None).await;
    let seen = tokio::time::timeout(LIMIT, hops.seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.authorization, None);
    hops.stop();
}

/// The runtime's service channel (`clients::channel`) is the service-identity kind: it needs a
/// secret, refuses a malformed one at config validation, and never prints it.
#[test]
fn the_secret_is_validated_and_never_printed() {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let mut config = ironmesh_runtime::Config::default();
    config.service_identity.secret = Some(secret.clone());
    config.validate().expect("a valid secret");
    let shown = format!("{config:?}");
    assert!(!shown.contains(&secret), "the secret leaked into Debug");
    let loaded = ironmesh_runtime::auth::service_secret(&config).unwrap();
    assert!(!format!("{loaded:?}").contains(&secret));
    config.service_identity.secret = Some("too-short".to_owned());
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("service_identity.secret"), "{err}");
    assert!(!err.contains("too-short"), "{err}");
}
