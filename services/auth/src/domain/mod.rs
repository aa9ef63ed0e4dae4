//! Auth's domain: accounts, sessions, API keys, the refresh-rotation rules and the input rules,
//! with no proto and no SQL. The store returns these types; `grpc` maps them to proto.
//!
//! - [`rules`]: email shape, password policy, display names, scopes.
//! - [`model`]: [`User`], [`Contact`], [`Session`], [`ApiKey`], [`SigningKey`], [`TotpState`].
//! - [`refresh`]: what presenting a refresh token means ([`Rotation`]).
//! - [`secret`]: hashes and sealed values whose `Debug` never shows them.
//! - [`AuthError`]: why an operation failed; [`Fault`]: what broke underneath (logged, never
//!   shown to callers).

pub mod model;
pub mod refresh;
pub mod rules;
pub mod secret;

pub use model::{ApiKey, Contact, Session, SigningKey, TotpState, User};
pub use refresh::{RefreshState, Rotation};
pub use rules::{
    Email, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, check_display_name, check_id,
    check_login_password, check_new_password, valid_scope,
};
pub use secret::{PasswordHash, Sealed, TokenHash};

/// A boxed error, as a [`Fault`] keeps its source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Roles a user can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Customer,
    Operator,
    Admin,
}

impl Role {
    const ALL: [Role; 3] = [Role::Customer, Role::Operator, Role::Admin];

    /// The name in tokens and API-key answers. Operator and admin are the names every
    /// service's authorization layer checks (`ironmesh_interceptors::auth`), so they are taken
    /// from there rather than spelled twice.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Operator => ironmesh_interceptors::auth::ROLE_OPERATOR,
            Role::Admin => ironmesh_interceptors::auth::ROLE_ADMIN,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

/// One problem with one input field (becomes a `google.rpc.BadRequest` field violation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: &'static str,
    pub description: String,
}

impl Violation {
    pub fn new(field: &'static str, description: impl Into<String>) -> Self {
        Self {
            field,
            description: description.into(),
        }
    }
}

/// Why an auth operation failed. Mapped to gRPC status in one place (`grpc::status`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid input")]
    Invalid(Vec<Violation>),
    /// Unknown email or wrong password — deliberately the same.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("not found")]
    NotFound,
    #[error("the account is locked")]
    Locked,
    /// A refresh token that is unknown, expired, revoked, or was already used.
    #[error("refresh token is not valid")]
    InvalidRefreshToken,
    /// The same refresh token was presented again within the race window: no new tokens, no
    /// family revocation.
    #[error("refresh token was just used")]
    RefreshRace,
    #[error("no authenticated caller")]
    Unauthenticated,
    /// An API key that is unknown, revoked, expired, or whose owner is locked — all alike.
    #[error("API key is not valid")]
    InvalidApiKey,
    /// The account has TOTP on: the login needs a code (or a recovery code).
    #[error("second factor required")]
    SecondFactorRequired,
    #[error("TOTP is already enabled")]
    TotpAlreadyEnabled,
    #[error("no TOTP enrollment is waiting for confirmation")]
    TotpNotPending,
    /// Managing credentials needs an interactive login, not an API key.
    #[error("needs a user session")]
    NeedsUserSession,
    /// An internal method only one service may call, called by another principal (another
    /// service; users and API keys are already refused by the `internal` access level).
    #[error("the caller is not the service this method is for")]
    WrongService,
    /// Too many failed logins for this account or address; try again after the wait.
    #[error("too many failed attempts")]
    TooManyAttempts(std::time::Duration),
    /// Every password hashing thread is busy and the queue is full; try again after the wait.
    #[error("too many logins at once")]
    Busy(std::time::Duration),
    /// Something auth depends on failed. Logged with its source chain; the caller only learns
    /// that it was internal.
    #[error("internal failure")]
    Internal(#[from] Fault),
}

impl AuthError {
    /// One invalid field.
    pub fn invalid(field: &'static str, description: impl Into<String>) -> Self {
        AuthError::Invalid(vec![Violation::new(field, description)])
    }

    /// `Ok` when nothing was wrong, else every violation at once.
    pub fn check(violations: Vec<Violation>) -> Result<(), Self> {
        if violations.is_empty() {
            Ok(())
        } else {
            Err(AuthError::Invalid(violations))
        }
    }
}

/// What broke underneath an operation, with its source kept for the log.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("the store failed")]
    Store(#[source] BoxError),
    #[error("password hashing failed")]
    Hashing(#[source] BoxError),
    #[error("sealing or opening a secret failed")]
    Sealing(#[from] ironmesh_sealing::Error),
    #[error("signing an access token failed")]
    Signing(#[source] BoxError),
    #[error("making a signing key failed")]
    KeyGeneration,
    #[error("TOTP failed")]
    Totp(#[source] BoxError),
    #[error("the system random source failed")]
    Randomness,
    #[error("encoding the export failed")]
    Export(#[source] serde_json::Error),
}

impl From<ironmesh_sealing::Error> for AuthError {
    fn from(err: ironmesh_sealing::Error) -> Self {
        AuthError::Internal(Fault::Sealing(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source chain names each layer once, so a log line reads as a path to the cause.
    #[test]
    fn internal_errors_keep_their_source_chain() {
        let cause = std::io::Error::other("disk on fire");
        let err = AuthError::from(Fault::Hashing(Box::new(cause)));
        assert_eq!(
            crate::error_chain(&err),
            "internal failure: password hashing failed: disk on fire"
        );
    }
}
