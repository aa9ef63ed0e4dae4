//! The authentication/authorization layer (see the module docs of [`crate::auth`]).
//!
//! What each method requires comes from the policy table, i.e. from the contract's
//! `option (ironmesh.api.v1.access)`: public methods pass without credentials; every other one
//! needs a valid credential (UNAUTHENTICATED otherwise) whose principal satisfies one of the
//! method's levels, and — for an API key — holds one of its scopes when it lists any
//! (PERMISSION_DENIED otherwise):
//! - authenticated: any principal;
//! - operator: the `operator` or `admin` role; admin: the `admin` role;
//! - internal: service principals only ([`PrincipalKind::Service`], authenticated by a service
//!   token, see [`crate::auth::service`]); every end user and API key is refused, admins included.
//!
//! Authentication is asynchronous (a JWKS refresh may be needed), so unlike most layers this one
//! cannot call the inner service synchronously; it follows tower's pattern of taking the service
//! that was made ready and leaving a clone in its place.

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tower::{Layer, Service};

use super::api_key::API_KEY_PREFIX;
use super::{Authenticator, Principal, PrincipalKind, ROLE_ADMIN, ROLE_OPERATOR};
use crate::policy::{Access, Level, PolicyTable};
use crate::{BoxError, BoxFuture, Request, Response};

/// Credentials longer than this are rejected before any parsing.
const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

#[derive(Clone)]
pub struct AuthLayer {
    policy: PolicyTable,
    authenticator: Arc<dyn Authenticator>,
}

impl AuthLayer {
    pub fn new(policy: PolicyTable, authenticator: Arc<dyn Authenticator>) -> Self {
        Self {
            policy,
            authenticator,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            policy: self.policy.clone(),
            authenticator: self.authenticator.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    policy: PolicyTable,
    authenticator: Arc<dyn Authenticator>,
}

fn unauthenticated() -> BoxError {
    Box::new(Status::unauthenticated("missing or invalid credentials"))
}

/// The bearer credential of `request`, if well-formed.
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?;
    if value.len() > MAX_CREDENTIAL_BYTES {
        return None;
    }
    let text = value.to_str().ok()?;
    let (scheme, credential) = text.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential.trim())
}

/// Whether `principal` (an API key's when `api_key`) may call a method with `access`.
fn permitted(access: &Access, principal: &Principal, api_key: bool) -> bool {
    match access {
        Access::Public | Access::Authenticated => true,
        Access::Require { levels, scopes } => {
            let level = levels.iter().any(|level| satisfies(*level, principal));
            // Keys act through their scopes, never their owner's roles, and tokens through their
            // roles: so scopes narrow which keys pass, and a token is judged by its level alone.
            let scoped = !api_key
                || scopes.is_empty()
                || scopes.iter().any(|scope| principal.has_scope(scope));
            level && scoped
        }
    }
}

/// Whether `principal` meets `level` (see the module docs).
fn satisfies(level: Level, principal: &Principal) -> bool {
    match level {
        Level::Authenticated => true,
        Level::Operator => principal.has_role(ROLE_OPERATOR) || principal.has_role(ROLE_ADMIN),
        Level::Admin => principal.has_role(ROLE_ADMIN),
        // Judged by how the principal authenticated, never by its name or roles: only a valid
        // service token makes a service principal.
        Level::Internal => principal.kind == PrincipalKind::Service,
    }
}

impl<S> Service<Request> for AuthService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let access = match self.policy.get(request.uri().path()) {
            // Unknown methods go on to be answered UNIMPLEMENTED; public ones need nothing.
            None => None,
            Some(policy) if policy.access == Access::Public => None,
            Some(policy) => Some(policy.access.clone()),
        };
        let Some(access) = access else {
            let future = self.inner.call(request);
            return Box::pin(async move { future.await.map_err(Into::into) });
        };
        if bearer(request.headers()).is_none() {
            return Box::pin(async { Err(unauthenticated()) });
        }
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            // Read where it is, in the request's own header: no copy of the token.
            let credential = bearer(request.headers()).unwrap_or_default();
            // The same test that routes the credential to the API-key verifier (`Credentials`).
            let api_key = credential.starts_with(API_KEY_PREFIX);
            let principal = match authenticator.authenticate(credential).await {
                Ok(principal) => principal,
                Err(failure) => {
                    tracing::info!(reason = %failure, "authentication failed");
                    return Err(unauthenticated());
                }
            };
            if !permitted(&access, &principal, api_key) {
                return Err(
                    Box::new(Status::permission_denied("not allowed to call this method"))
                        as BoxError,
                );
            }
            tracing::Span::current().record("principal", &*principal.subject);
            request.extensions_mut().insert(principal);
            inner.call(request).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    //! Each access level enforced, with the real contracts' table and a fake authenticator.

    use std::future::Future;
    use std::pin::Pin;
    use std::time::Duration;

    use tonic::Code;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::AuthFailure;

    /// Credentials by name: `customer`, `operator`, `admin` (access tokens with that role),
    /// `imk_orders_read` / `imk_other` (API keys with those scopes and no roles) and
    /// `service:orders` (a service principal).
    struct Named;

    impl Authenticator for Named {
        fn authenticate<'a>(
            &'a self,
            credential: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>> {
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
            let answer = match credential {
                "customer" => Ok(principal(&["customer"], &[])),
                "operator" => Ok(principal(&[ROLE_OPERATOR], &[])),
                "admin" => Ok(principal(&[ROLE_ADMIN], &[])),
                "imk_orders_read" => Ok(principal(&[], &["orders:read"])),
                "imk_other" => Ok(principal(&[], &["inventory:write"])),
                "service:orders" => Ok(principal(&[], &[])),
                _ => Err(AuthFailure::Rejected("unknown test credential")),
            };
            Box::pin(async move { answer })
        }
    }

    fn contracts() -> PolicyTable {
        PolicyTable::from_descriptor_sets(&[ironmesh_proto::FILE_DESCRIPTOR_SET])
            .expect("the contracts state access")
    }

    /// The code `credential` (none: no `authorization`) gets calling `path` through the layer
    /// with `policy`; OK when the call reached the inner service.
    async fn code(policy: &PolicyTable, path: &str, credential: Option<&str>) -> Code {
        let inner = tower::service_fn(|_: Request| async {
            Ok::<_, BoxError>(Response::new(tonic::body::Body::empty()))
        });
        let service = AuthLayer::new(policy.clone(), Arc::new(Named)).layer(inner);
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
}
