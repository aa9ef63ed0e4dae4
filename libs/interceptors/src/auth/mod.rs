//! Authentication and authorization for the server stack.
//!
//! - [`Principal`]: who is calling (subject, roles, scopes), put in the request extensions and the
//!   call context for handlers.
//! - [`Authenticator`]: turns a bearer credential into a principal; [`jwt::JwtAuthenticator`]
//!   verifies Ed25519 JWTs locally against a cached JWKS.
//! - [`api_key::ApiKeyAuthenticator`]: API keys, checked with auth and cached briefly;
//!   [`api_key::Credentials`] picks the right verifier for a credential.
//! - [`AuthLayer`]: enforces each method's [`crate::policy::Access`] as the contract states it:
//!   public methods pass, everything else needs a valid credential (UNAUTHENTICATED, generic
//!   message, otherwise) that meets one of the method's levels and, for API keys, scopes
//!   (PERMISSION_DENIED otherwise).
//! - [`service`]: service identities — the deployment's service secret, the short-lived tokens a
//!   service calls others with, and their verifier (the only source of service principals).

pub mod api_key;
pub mod jwt;
mod layer;
pub mod service;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use layer::{AuthLayer, AuthService};

/// The role that admits a caller to operator methods (besides [`ROLE_ADMIN`]), spelled as auth
/// writes roles into access tokens' `roles` claim.
pub const ROLE_OPERATOR: &str = "operator";
/// The role that admits a caller to admin (and operator) methods.
pub const ROLE_ADMIN: &str = "admin";

/// The authenticated caller. Its parts are shared, so a clone (one per call from a remembered
/// verification) is reference counts, not copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user id (`sub`).
    pub subject: Arc<str>,
    /// The login session the credential belongs to (`sid`), for session-bound operations.
    pub session: Option<Arc<str>>,
    pub roles: Arc<[String]>,
    pub scopes: Arc<[String]>,
    /// What kind of credential authenticated it.
    pub kind: PrincipalKind,
}

/// Who stands behind a principal: an end user's access token, an API key, or another service of
/// the mesh ([`service`]). Only service principals pass `internal` methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    ApiKey,
    Service,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a credential was not accepted. Callers only ever see a generic UNAUTHENTICATED; the
/// reason is for logs.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("credential rejected: {0}")]
    Rejected(&'static str),
    #[error("keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// The cache key of a credential: its SHA-256 (credentials themselves are never kept).
pub(crate) fn fingerprint(credential: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, credential.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Verifies a bearer credential.
pub trait Authenticator: Send + Sync + 'static {
    /// The answer for `credential` when it is known without waiting — a verification remembered
    /// from an earlier call, or one that needs nothing but local computation — else `None`, and
    /// the caller goes on to [`Authenticator::authenticate`]. When it answers, it answers as
    /// `authenticate` would. The server stack asks this first, so the common call (a token seen
    /// before) costs no future of its own.
    fn verify_now(&self, _credential: &str) -> Option<Result<Principal, AuthFailure>> {
        None
    }

    /// Verifies `credential`, waiting for keys or for auth where needed.
    fn authenticate<'a>(
        &'a self,
        credential: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>>;
}
