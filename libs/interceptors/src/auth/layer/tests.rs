//! Each access level enforced, with the real contracts' table and a fake authenticator.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tonic::Code;
use tower::ServiceExt;

use super::*;

/// Credentials by name: `customer`, `operator`, `admin` (access tokens with that role),
/// `imk_orders_read` / `imk_other` (API keys with those scopes and no roles) and
/// `service:orders` (a service principal). With `remembers`, every answer is also known at
/// once ([`Authenticator::verify_now`]), so the layer judges it without a future.
struct Named {
    remembers: bool,
}

impl Named {
    fn answer(credential: &str) -> Result<Principal, AuthFailure> {
        let kind = if credential.starts_with("imk_") {
            PrincipalKind::ApiKey
        } else if credential.starts_with("service:") {
            PrincipalKind::Service
        } else {
            PrincipalKind::User
        };
        let principal = |roles: &[&str], scopes: &[&str]| Principal {
            subject: credential.into(),
            session: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            kind,
        };
        match credential {
            "customer" => Ok(principal(&["customer"], &[])),
            "operator" => Ok(principal(&[ROLE_OPERATOR], &[])),
            "admin" => Ok(principal(&[ROLE_ADMIN], &[])),
            "imk_orders_read" => Ok(principal(&[], &["orders:read"])),
            "imk_other" => Ok(principal(&[], &["inventory:write"])),
            "service:orders" => Ok(principal(&[], &[])),
            _ => Err(AuthFailure::Rejected("unknown test credential")),
        }
    }
}

impl Authenticator for Named {
    fn verify_now(&self, credential: &str) -> Option<Result<Principal, AuthFailure>> {
        self.remembers.then(|| Self::answer(credential))
    }

    fn authenticate<'a>(
        &'a self,
        credential: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>> {
        let answer = Self::answer(credential);
        Box::pin(async move { answer })
    }
}

fn contracts() -> PolicyTable {
    PolicyTable::from_descriptor_sets(&[ironmesh_proto::FILE_DESCRIPTOR_SET])
        .expect("the contracts state access")
}

/// The code `credential` (none: no `authorization`) gets calling `path` through the layer
/// with `policy`; OK when the call reached the inner service. Asked both ways — the credential
/// verified asynchronously and known at once — which must agree.
async fn code(policy: &PolicyTable, path: &str, credential: Option<&str>) -> Code {
    let later = code_with(Named { remembers: false }, policy, path, credential).await;
    let now = code_with(Named { remembers: true }, policy, path, credential).await;
    assert_eq!(
        later, now,
        "{path} with {credential:?}: waited for vs known at once"
    );
    later
}

async fn code_with(
    named: Named,
    policy: &PolicyTable,
    path: &str,
    credential: Option<&str>,
) -> Code {
    let inner = tower::service_fn(|_: Request| async {
        Ok::<_, BoxError>(Response::new(tonic::body::Body::empty()))
    });
    let service = AuthLayer::new(policy.clone(), Arc::new(named)).layer(inner);
    let mut request = http::Request::builder().uri(format!("http://test{path}"));
    if let Some(credential) = credential {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {credential}"));
    }
    let request = request
        .body(tonic::body::Body::empty())
        .expect("a valid request");
    let outcome = tokio::time::timeout(Duration::from_secs(5), service.oneshot(request))
        .await
        .expect("the layer answers at once");
    match outcome {
        Ok(_) => Code::Ok,
        Err(error) => error
            .downcast_ref::<Status>()
            .map(Status::code)
            .unwrap_or_else(|| panic!("not a status: {error}")),
    }
}

const FULFILL: &str = "/ironmesh.orders.v1.OrdersService/FulfillOrder";
const LIST_USERS: &str = "/ironmesh.auth.v1.AuthService/ListUsers";
const RESERVE: &str = "/ironmesh.inventory.v1.InventoryService/Reserve";
const DELIVER: &str = "/ironmesh.events.v1.EventSinkService/Deliver";
const SEND: &str = "/ironmesh.notification.v1.NotificationService/Send";
const GET_ME: &str = "/ironmesh.auth.v1.AuthService/GetMe";
const LOGIN: &str = "/ironmesh.auth.v1.AuthService/Login";
const API_KEY: &str = "/ironmesh.auth.v1.AuthService/AuthenticateApiKey";

/// Public methods need nothing; authenticated ones any valid credential, tokens and keys.
#[tokio::test]
async fn public_and_authenticated() {
    let policy = contracts();
    assert_eq!(code(&policy, LOGIN, None).await, Code::Ok);
    assert_eq!(code(&policy, LOGIN, Some("forged")).await, Code::Ok);
    assert_eq!(code(&policy, GET_ME, None).await, Code::Unauthenticated);
    assert_eq!(
        code(&policy, GET_ME, Some("forged")).await,
        Code::Unauthenticated
    );
    for who in ["customer", "operator", "admin", "imk_orders_read"] {
        assert_eq!(code(&policy, GET_ME, Some(who)).await, Code::Ok, "{who}");
    }
}

/// Operator methods: refused to a customer and to API keys (no roles), allowed to operators
/// and admins; without a credential the answer stays UNAUTHENTICATED.
#[tokio::test]
async fn operator_methods_need_the_operator_or_admin_role() {
    let policy = contracts();
    assert_eq!(code(&policy, FULFILL, None).await, Code::Unauthenticated);
    for refused in ["customer", "imk_orders_read"] {
        assert_eq!(
            code(&policy, FULFILL, Some(refused)).await,
            Code::PermissionDenied,
            "{refused}"
        );
    }
    for allowed in ["operator", "admin"] {
        assert_eq!(
            code(&policy, FULFILL, Some(allowed)).await,
            Code::Ok,
            "{allowed}"
        );
    }
}

/// Admin methods: only the admin role; an operator is refused.
#[tokio::test]
async fn admin_methods_need_the_admin_role() {
    let policy = contracts();
    for refused in ["customer", "operator", "imk_orders_read"] {
        assert_eq!(
            code(&policy, LIST_USERS, Some(refused)).await,
            Code::PermissionDenied,
            "{refused}"
        );
    }
    assert_eq!(code(&policy, LIST_USERS, Some("admin")).await, Code::Ok);
}

/// Internal methods refuse every end-user credential and API key, admins included;
/// "operator or internal" admits operators.
#[tokio::test]
async fn internal_methods_refuse_end_users() {
    let policy = contracts();
    for path in [RESERVE, DELIVER, API_KEY] {
        assert_eq!(
            code(&policy, path, None).await,
            Code::Unauthenticated,
            "{path}"
        );
        for who in ["customer", "operator", "admin", "imk_orders_read"] {
            assert_eq!(
                code(&policy, path, Some(who)).await,
                Code::PermissionDenied,
                "{who} on {path}"
            );
        }
    }
    assert_eq!(
        code(&policy, SEND, Some("customer")).await,
        Code::PermissionDenied
    );
    assert_eq!(code(&policy, SEND, Some("operator")).await, Code::Ok);
}

/// A service principal passes internal methods (and "operator or internal" ones), but not
/// operator or admin methods: it holds no roles.
#[tokio::test]
async fn internal_methods_admit_service_principals() {
    let policy = contracts();
    for path in [RESERVE, DELIVER, SEND, API_KEY] {
        assert_eq!(
            code(&policy, path, Some("service:orders")).await,
            Code::Ok,
            "{path}"
        );
    }
    for path in [FULFILL, LIST_USERS] {
        assert_eq!(
            code(&policy, path, Some("service:orders")).await,
            Code::PermissionDenied,
            "{path}"
        );
    }
}

/// Scopes narrow API keys only: a key needs one of the listed scopes, an access token is
/// judged by its level alone.
#[tokio::test]
async fn scopes_narrow_api_keys() {
    let path = "/ironmesh.orders.v1.OrdersService/ListOrders";
    let policy = contracts().with(
        path,
        true,
        Access::Require {
            levels: vec![Level::Authenticated],
            scopes: vec!["orders:read".to_owned(), "orders:write".to_owned()],
        },
    );
    assert_eq!(code(&policy, path, Some("imk_orders_read")).await, Code::Ok);
    assert_eq!(
        code(&policy, path, Some("imk_other")).await,
        Code::PermissionDenied
    );
    assert_eq!(code(&policy, path, Some("customer")).await, Code::Ok);
    // The contract names `orders:read` for it: a key without it is refused.
    assert_eq!(
        code(&contracts(), path, Some("imk_other")).await,
        Code::PermissionDenied
    );
    assert_eq!(
        code(&contracts(), path, Some("imk_orders_read")).await,
        Code::Ok
    );
    // Without scopes listed, any key passes an authenticated level.
    let unscoped = "/ironmesh.auth.v1.AuthService/GetMe";
    assert_eq!(
        code(&contracts(), unscoped, Some("imk_other")).await,
        Code::Ok
    );
}

/// Methods the table does not know pass on (to be answered UNIMPLEMENTED by the router).
#[tokio::test]
async fn unknown_methods_pass_on() {
    let policy = contracts();
    assert_eq!(code(&policy, "/x.Unknown/Method", None).await, Code::Ok);
}
