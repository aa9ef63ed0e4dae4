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

#[cfg(test)]
mod tests {
    use super::*;

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
