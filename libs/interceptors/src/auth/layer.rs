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

use futures_util::TryFutureExt;
use futures_util::future::{Either, ErrInto};
use tonic::Status;
use tower::{Layer, Service};

use super::api_key::API_KEY_PREFIX;
use super::{AuthFailure, Authenticator, Principal, PrincipalKind, ROLE_ADMIN, ROLE_OPERATOR};
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

/// Whether `principal` may go on: the inner call's request carries it from here.
fn admit(access: &Access, principal: Principal, api_key: bool, request: &mut Request) -> bool {
    if !permitted(access, &principal, api_key) {
        return false;
    }
    tracing::Span::current().record("principal", &*principal.subject);
    request.extensions_mut().insert(principal);
    true
}

fn permission_denied() -> BoxError {
    Box::new(Status::permission_denied("not allowed to call this method"))
}

fn refused(failure: &AuthFailure) -> BoxError {
    tracing::info!(reason = %failure, "authentication failed");
    unauthenticated()
}

/// The inner call's future as is (public methods, and credentials answered from memory), or
/// boxed when the answer needs a wait or is a refusal.
pub type AuthFuture<F> = Either<ErrInto<F, BoxError>, BoxFuture<Response>>;

impl<S> Service<Request> for AuthService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = AuthFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let refuse = |err: BoxError| Either::Right(Box::pin(async { Err(err) }) as BoxFuture<_>);
        let access = match self.policy.get(request.uri().path()) {
            // Unknown methods go on to be answered UNIMPLEMENTED; public ones need nothing.
            None => None,
            Some(policy) if policy.access == Access::Public => None,
            Some(policy) => Some(&policy.access),
        };
        let Some(access) = access else {
            return Either::Left(self.inner.call(request).err_into());
        };
        let Some(credential) = bearer(request.headers()) else {
            return refuse(unauthenticated());
        };
        // The same test that routes the credential to the API-key verifier (`Credentials`).
        let api_key = credential.starts_with(API_KEY_PREFIX);
        // Most calls carry a credential verified before: judged here, with no future of ours.
        match self.authenticator.verify_now(credential) {
            Some(Ok(principal)) => {
                return if admit(access, principal, api_key, &mut request) {
                    Either::Left(self.inner.call(request).err_into())
                } else {
                    refuse(permission_denied())
                };
            }
            Some(Err(failure)) => return refuse(refused(&failure)),
            None => {}
        }
        let access = access.clone();
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let authenticator = self.authenticator.clone();
        Either::Right(Box::pin(async move {
            // Read where it is, in the request's own header: no copy of the token.
            let credential = bearer(request.headers()).unwrap_or_default();
            let principal = authenticator
                .authenticate(credential)
                .await
                .map_err(|failure| refused(&failure))?;
            if !admit(&access, principal, api_key, &mut request) {
                return Err(permission_denied());
            }
            inner.call(request).await.map_err(Into::into)
        }))
    }
}

#[cfg(test)]
mod tests;
