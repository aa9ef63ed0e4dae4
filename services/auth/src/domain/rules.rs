//! The input rules: email shape, the password policy, display names, API-key scopes, ids.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::Violation;

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
    include_str!("../../data/common-passwords.txt")
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

/// API-key scopes: lower-case letters, digits and `: . _ -`, starting with a letter or digit,
/// at most 64 characters.
pub fn valid_scope(scope: &str) -> bool {
    (1..=64).contains(&scope.len())
        && scope
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && scope
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":._-".contains(&b))
}

/// An id the caller sends (`field` names it): present and a hyphenated UUID — the shared rule
/// ([`ironmesh_runtime::validation::check_uuid`]) that the contract's id patterns state.
pub fn check_id(field: &'static str, id: &str) -> Result<(), Violation> {
    let mut found = ironmesh_runtime::validation::Violations::default();
    ironmesh_runtime::validation::check_uuid(&mut found, field, id);
    match found.iter().next() {
        None => Ok(()),
        Some(problem) => Err(Violation::new(field, problem.description.clone())),
    }
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

    /// The contract's published id rule (the `field_rules` pattern on
    /// `GetUserContactRequest.user_id`) accepts exactly what [`check_id`] accepts.
    #[test]
    fn the_contract_states_the_id_rule_enforced_here() {
        use prost_reflect::{DescriptorPool, Value};
        let pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let rules = pool
            .get_extension_by_name("ironmesh.api.v1.field_rules")
            .unwrap();
        let field = pool
            .get_message_by_name("ironmesh.auth.v1.GetUserContactRequest")
            .unwrap()
            .get_field_by_name("user_id")
            .unwrap();
        let options = field.options();
        let Value::Message(rules) = &*options.get_extension(&rules) else {
            panic!("no rules on user_id");
        };
        let pattern = rules.get_field_by_name("pattern").unwrap().into_owned();
        let pattern = regex::Regex::new(pattern.as_str().unwrap()).unwrap();
        for id in [
            "0190f5a3-7c1e-7b0a-9c4e-2f1d3b5a6c7d",
            "0190F5A3-7C1E-7B0A-9C4E-2F1D3B5A6C7D",
            "",
            "0190f5a37c1e7b0a9c4e2f1d3b5a6c7d",
            "{0190f5a3-7c1e-7b0a-9c4e-2f1d3b5a6c7d}",
            "urn:uuid:0190f5a3-7c1e-7b0a-9c4e-2f1d3b5a6c7d",
            "0190f5a3-7c1e-7b0a-9c4e-2f1d3b5a6c7",
            "0190f5a3-7c1e-7b0a-9c4e-2f1d3b5a6c7g",
            "not-a-uuid",
        ] {
            assert_eq!(
                pattern.is_match(id),
                check_id("user_id", id).is_ok(),
                "{id:?}"
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

    /// The contract's published scope rule (`ironmesh.api.v1.field_rules` on
    /// `CreateApiKeyRequest.scopes`) accepts exactly what [`valid_scope`] accepts.
    #[test]
    fn the_contract_states_the_scope_rule_enforced_here() {
        use prost_reflect::{DescriptorPool, Value};
        let pool = DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let rules = pool
            .get_extension_by_name("ironmesh.api.v1.field_rules")
            .unwrap();
        let field = pool
            .get_message_by_name("ironmesh.auth.v1.CreateApiKeyRequest")
            .unwrap()
            .get_field_by_name("scopes")
            .unwrap();
        let options = field.options();
        let Value::Message(rules) = &*options.get_extension(&rules) else {
            panic!("no rules on scopes");
        };
        let text = |name: &str| rules.get_field_by_name(name).unwrap().into_owned();
        let pattern = regex::Regex::new(text("pattern").as_str().unwrap()).unwrap();
        let max = text("max_chars").as_u32().unwrap() as usize;
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for scope in [
            "inventory:read",
            "a",
            "0",
            "a.b_c-d:e",
            long.as_str(),
            too_long.as_str(),
            "",
            "Inventory:read",
            ":read",
            "-a",
            "a b",
            "a/b",
            "é",
        ] {
            let published = pattern.is_match(scope) && scope.chars().count() <= max;
            assert_eq!(published, valid_scope(scope), "{scope:?}");
        }
        assert_eq!(text("min_items").as_u32(), Some(1));
        assert_eq!(text("max_items").as_u32(), Some(20));
    }
}
