//! Accounts, passwords and sessions as rules, with no proto and no SQL.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Roles a user can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Customer,
    Operator,
    Admin,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "customer" => Some(Role::Customer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Roles as stored: comma-separated names.
    pub fn parse_list(text: &str) -> Vec<Role> {
        text.split(',')
            .filter_map(|r| Role::parse(r.trim()))
            .collect()
    }

    pub fn join(roles: &[Role]) -> String {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One problem with one input field (becomes a `google.rpc.BadRequest` field violation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: &'static str,
    pub description: String,
}

/// Why an auth operation failed. Mapped to gRPC status in one place (`grpc.rs`).
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
    /// Too many failed logins for this account or address; try again after the wait.
    #[error("too many failed attempts")]
    TooManyAttempts(std::time::Duration),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        AuthError::Internal(err.to_string())
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        AuthError::internal(err)
    }
}

/// An email address in its stored form: trimmed and lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalises and checks the shape (one `@`, non-empty local part and dotted domain, no
    /// spaces, at most 254 characters).
    pub fn parse(raw: &str) -> Result<Self, Violation> {
        let email = raw.trim().to_lowercase();
        let bad = |description: &str| Violation {
            field: "email",
            description: description.to_owned(),
        };
        if email.is_empty() {
            return Err(bad("required"));
        }
        if email.chars().count() > 254 {
            return Err(bad("must be at most 254 characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(bad("must be an email address"));
        };
        if local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains('@')
            || email.chars().any(char::is_whitespace)
        {
            return Err(bad("must be an email address"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Shortest acceptable password, in characters (OWASP ASVS 5).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest acceptable password, in characters; longer is refused, never truncated.
pub const MAX_PASSWORD_CHARS: usize = 128;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|line| !line.is_empty())
        .collect()
});

/// Checks a new password against the policy: 12–128 characters, no composition rules, not a
/// common password (case-insensitive, also with trailing digits and symbols removed).
pub fn check_new_password(field: &'static str, password: &str) -> Result<(), Violation> {
    let chars = password.chars().count();
    let bad = |description: String| Violation { field, description };
    if chars < MIN_PASSWORD_CHARS {
        return Err(bad(format!(
            "must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(bad(format!(
            "must be at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    let lower = password.to_lowercase();
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if COMMON_PASSWORDS.contains(lower.as_str()) || COMMON_PASSWORDS.contains(stem) {
        return Err(bad("is too common; choose another".to_owned()));
    }
    Ok(())
}

/// A login password only has to fit the length bound (so nothing is hashed for absurd input).
pub fn check_login_password(password: &str) -> Result<(), Violation> {
    if password.is_empty() {
        return Err(Violation {
            field: "password",
            description: "required".to_owned(),
        });
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(Violation {
            field: "password",
            description: format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        });
    }
    Ok(())
}

/// Display names: 1–100 characters after trimming, no control characters.
pub fn check_display_name(name: &str) -> Result<String, Violation> {
    let name = name.trim();
    let bad = |description: &str| Violation {
        field: "display_name",
        description: description.to_owned(),
    };
    if name.is_empty() {
        return Err(bad("required"));
    }
    if name.chars().count() > 100 {
        return Err(bad("must be at most 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract publishes these bounds (`ironmesh.api.v1.field_rules`, which the gateway's
    /// OpenAPI document shows clients); they must be the ones enforced here.
    #[test]
    fn the_contract_states_the_password_bounds_enforced_here() {
        use prost_reflect::{DescriptorPool, Value};
        let pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let rules = pool
            .get_extension_by_name("ironmesh.api.v1.field_rules")
            .unwrap();
        let bound = |field: &str, name: &str| -> u32 {
            let (message, field) = field.rsplit_once('.').unwrap();
            let field = pool
                .get_message_by_name(message)
                .unwrap()
                .get_field_by_name(field)
                .unwrap();
            let options = field.options();
            let Value::Message(value) = &*options.get_extension(&rules) else {
                panic!("no rules on {field:?}");
            };
            value.get_field_by_name(name).unwrap().as_u32().unwrap()
        };
        let chars = |n: usize| u32::try_from(n).unwrap();
        for field in [
            "ironmesh.auth.v1.RegisterRequest.password",
            "ironmesh.auth.v1.ChangePasswordRequest.new_password",
        ] {
            assert_eq!(
                bound(field, "min_chars"),
                chars(MIN_PASSWORD_CHARS),
                "{field}"
            );
            assert_eq!(
                bound(field, "max_chars"),
                chars(MAX_PASSWORD_CHARS),
                "{field}"
            );
        }
        for field in [
            "ironmesh.auth.v1.LoginRequest.password",
            "ironmesh.auth.v1.DeleteMyAccountRequest.password",
        ] {
            assert_eq!(
                bound(field, "max_chars"),
                chars(MAX_PASSWORD_CHARS),
                "{field}"
            );
        }
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@com",
            "a da@example.com",
            "a@b@c.d",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_policy() {
        assert!(check_new_password("password", "correct horse battery").is_ok());
        assert!(check_new_password("password", "short").is_err());
        assert!(check_new_password("password", &"x".repeat(129)).is_err());
        assert!(
            check_new_password("password", &"é".repeat(12)).is_ok(),
            "counts characters"
        );
        // Common passwords, whatever the case, with digits or symbols appended.
        assert!(check_new_password("password", "PASSWORD1234").is_err());
        assert!(check_new_password("password", "qwertyuiop!!").is_err());
    }
}
