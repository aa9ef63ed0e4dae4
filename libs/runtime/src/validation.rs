//! Field violations: what a service's domain collects while checking input, turned into
//! `INVALID_ARGUMENT` with `google.rpc.BadRequest` details by [`crate::status::invalid_argument`].
//! Plain data (no proto), so domain code can use it.

use std::fmt;

/// One problem with one input field. `field` is the proto path of the field, nested with dots and
/// indexed with brackets (`product.sku`, `lines[2].quantity`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

/// Every problem found with one request, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// A single violation.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Self::default();
        violations.add(field, description);
        violations
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            description: description.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }

    /// `Ok` when nothing was found, else the violations.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Moves `other`'s violations to the end of these.
    pub fn extend(&mut self, other: Violations) {
        self.0.extend(other.0);
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// A UUID in its hyphenated form (8-4-4-4-12 hexadecimal digits) — the one the contracts'
/// id patterns state (`uuid` alone would also take the simple, braced and URN forms).
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

/// Checks an id the caller sends (`field` names it): present and a hyphenated UUID.
pub fn check_uuid(violations: &mut Violations, field: &str, id: &str) {
    if id.is_empty() {
        violations.add(field, "required");
    } else if !is_uuid(id) {
        violations.add(field, "must be a UUID (8-4-4-4-12 hexadecimal digits)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_hyphenated_uuids() {
        assert!(is_uuid("0190f5a3-7c1e-7b0a-9c4e-2f1d3b5a6c7d"));
        for bad in [
            "",
            "0190f5a37c1e7b0a9c4e2f1d3b5a6c7d",
            "{0190f5a3-7c1e-7b0a-9c4e-2f1d3b5a6c7d}",
            "x",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
        let mut v = Violations::default();
        check_uuid(&mut v, "order_id", "");
        check_uuid(&mut v, "lines[0].product_id", "nope");
        check_uuid(&mut v, "ok", "0190f5a3-7c1e-7b0a-9c4e-2f1d3b5a6c7d");
        assert_eq!(
            v.to_string(),
            "order_id: required; lines[0].product_id: must be a UUID (8-4-4-4-12 hexadecimal digits)"
        );
    }

    #[test]
    fn collects_in_order_and_reports_whether_any() {
        let mut v = Violations::default();
        assert!(v.clone().into_result().is_ok());
        v.add("a", "required");
        v.extend(Violations::one("b.c", "too long"));
        assert_eq!(v.len(), 2);
        assert_eq!(v.to_string(), "a: required; b.c: too long");
        let err = v.into_result().unwrap_err();
        assert_eq!(err.iter().next().unwrap().field, "a");
    }
}
