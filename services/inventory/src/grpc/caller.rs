//! Who calls. Methods above public get the principal the server stack's authentication layer
//! attached. Public methods get none from the stack (it authenticates only methods that need a
//! credential), yet ListProducts' `include_inactive` is for operators — so for those, a bearer
//! credential the caller sent is verified here with the same authenticator the stack runs (one
//! JWKS cache); a missing or invalid one is simply an anonymous caller.

use std::sync::Arc;

use ironmesh_interceptors::auth::{Authenticator, Principal, ROLE_ADMIN, ROLE_OPERATOR};
use tonic::Request;

use crate::domain::Caller;

/// Longest `authorization` value looked at (the stack's own limit is of the same order).
const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

fn from_principal(principal: &Principal) -> Caller {
    Caller {
        actor: principal.subject.to_string(),
        operator: principal.has_role(ROLE_OPERATOR) || principal.has_role(ROLE_ADMIN),
    }
}

/// The principal the stack attached, or an anonymous caller.
pub fn caller<R>(request: &Request<R>) -> Caller {
    request
        .extensions()
        .get::<Principal>()
        .map(from_principal)
        .unwrap_or_else(Caller::anonymous)
}

/// Verifies the optional credential of public methods.
#[derive(Clone, Default)]
pub struct OptionalAuth {
    authenticator: Option<Arc<dyn Authenticator>>,
}

impl OptionalAuth {
    pub fn new(authenticator: Arc<dyn Authenticator>) -> Self {
        Self {
            authenticator: Some(authenticator),
        }
    }

    /// [`caller`], else the principal of the request's bearer credential if it is valid.
    pub async fn caller<R>(&self, request: &Request<R>) -> Caller {
        if let Some(principal) = request.extensions().get::<Principal>() {
            return from_principal(principal);
        }
        let (Some(authenticator), Some(credential)) = (&self.authenticator, bearer(request)) else {
            return Caller::anonymous();
        };
        match authenticator.authenticate(credential).await {
            Ok(principal) => from_principal(&principal),
            Err(_) => Caller::anonymous(),
        }
    }
}

fn bearer<R>(request: &Request<R>) -> Option<&str> {
    let value = request.metadata().get("authorization")?;
    if value.len() > MAX_CREDENTIAL_BYTES {
        return None;
    }
    let (scheme, credential) = value.to_str().ok()?.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}
