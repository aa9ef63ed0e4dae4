//! The authentication/authorization layer (see the module docs of [`crate::auth`]).
//!
//! Authentication is asynchronous (a JWKS refresh may be needed), so unlike most layers this one
//! cannot call the inner service synchronously; it follows tower's pattern of taking the service
//! that was made ready and leaving a clone in its place.

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tower::{Layer, Service};

use super::{Authenticator, Principal};
use crate::policy::{Access, PolicyTable};
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
fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(http::header::AUTHORIZATION)?;
    if value.len() > MAX_CREDENTIAL_BYTES {
        return None;
    }
    let text = value.to_str().ok()?;
    let (scheme, credential) = text.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential.trim())
}

/// Whether `principal` may call a method with `access`.
fn permitted(access: &Access, principal: &Principal) -> bool {
    match access {
        Access::Public | Access::Authenticated => true,
        Access::AnyRole(roles) => roles.iter().any(|role| principal.has_role(role)),
        Access::Scope(scope) => principal.has_scope(scope),
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
        let Some(credential) = bearer(&request).map(str::to_owned) else {
            return Box::pin(async { Err(unauthenticated()) });
        };
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            let principal = match authenticator.authenticate(&credential).await {
                Ok(principal) => principal,
                Err(failure) => {
                    tracing::info!(reason = %failure, "authentication failed");
                    return Err(unauthenticated());
                }
            };
            if !permitted(&access, &principal) {
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
