//! Products: the catalogue item, its input rules (sku, name, description, price, currency),
//! what an update may change ([`ProductField`], [`ProductChanges`]) and ListProducts' filter.

use chrono::{DateTime, Utc};
use ironmesh_runtime::validation::Violations;

/// A catalogue item as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub active: bool,
    /// Grows by one with every update: what caches compare so an older copy never replaces a
    /// newer one.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What CreateProduct stores (id, revision and times are the server's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub active: bool,
}

pub const MAX_SKU_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 5000;

/// The sku rule: 1–64 characters of `[A-Z0-9-_.]`. `field` names it in the violation.
pub fn check_sku(violations: &mut Violations, field: &str, sku: &str) {
    if sku.is_empty() {
        violations.add(field, "required");
    } else if sku.len() > MAX_SKU_CHARS {
        violations.add(field, "at most 64 characters");
    } else if !sku
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        violations.add(
            field,
            "only upper-case letters A-Z, digits, '-', '_' and '.'",
        );
    }
}

fn check_name(violations: &mut Violations, name: &str) {
    let chars = name.chars().count();
    if name.is_empty() {
        violations.add("product.name", "required");
    } else if chars > MAX_NAME_CHARS {
        violations.add("product.name", "at most 200 characters");
    }
}

fn check_description(violations: &mut Violations, description: &str) {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        violations.add("product.description", "at most 5000 characters");
    }
}

fn check_price(violations: &mut Violations, price_minor: i64) {
    if price_minor < 0 {
        violations.add("product.price_minor", "must be >= 0");
    }
}

/// ISO 4217 alphabetic: three upper-case ASCII letters.
fn check_currency(violations: &mut Violations, currency: &str) {
    if currency.is_empty() {
        violations.add("product.currency", "required");
    } else if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        violations.add(
            "product.currency",
            "an ISO 4217 code: three upper-case letters (e.g. EUR)",
        );
    }
}

impl NewProduct {
    /// Every rule of the contract, each broken one named.
    pub fn validate(&self) -> Result<(), Violations> {
        let mut violations = Violations::default();
        check_sku(&mut violations, "product.sku", &self.sku);
        check_name(&mut violations, &self.name);
        check_description(&mut violations, &self.description);
        check_price(&mut violations, self.price_minor);
        check_currency(&mut violations, &self.currency);
        violations.into_result()
    }
}

/// The fields an update may overwrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductField {
    Name,
    Description,
    PriceMinor,
    Currency,
    Active,
}

impl ProductField {
    pub const ALL: [ProductField; 5] = [
        ProductField::Name,
        ProductField::Description,
        ProductField::PriceMinor,
        ProductField::Currency,
        ProductField::Active,
    ];

    /// The field an `update_mask` path names, or why that path may not be named.
    pub fn from_path(path: &str) -> Result<Self, &'static str> {
        match path {
            "name" => Ok(ProductField::Name),
            "description" => Ok(ProductField::Description),
            "price_minor" => Ok(ProductField::PriceMinor),
            "currency" => Ok(ProductField::Currency),
            "active" => Ok(ProductField::Active),
            "sku" => Err("sku cannot be changed after creation"),
            "product_id" | "created_at" | "updated_at" => {
                Err("names a field the server sets (identifier or output only)")
            }
            _ => Err("unknown field (updatable: name, description, price_minor, currency, active)"),
        }
    }

    /// The column this field is stored in.
    pub fn column(self) -> &'static str {
        match self {
            ProductField::Name => "name",
            ProductField::Description => "description",
            ProductField::PriceMinor => "price_minor",
            ProductField::Currency => "currency",
            ProductField::Active => "active",
        }
    }
}

/// The new values of the fields an update overwrites; `None` keeps the stored value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
    pub active: Option<bool>,
}

impl ProductChanges {
    /// The changes `mask` selects from `values` (the request's product, whose sku — checked if
    /// sent — and output fields are ignored). `None` or an empty mask selects every field that is not at its
    /// default in `values`. A path that may not be named is a violation on `update_mask`; a
    /// selected value that breaks a rule is one on its `product.*` field.
    pub fn select(mask: Option<&[String]>, values: &NewProduct) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        // The sku never changes, but one that is sent must still be a sku (the contract's
        // rule holds for every request that carries it).
        if !values.sku.is_empty() {
            check_sku(&mut violations, "product.sku", &values.sku);
        }
        let mut fields = Vec::new();
        match mask {
            Some(paths) if !paths.is_empty() => {
                for path in paths {
                    match ProductField::from_path(path) {
                        Ok(field) if !fields.contains(&field) => fields.push(field),
                        Ok(_) => {}
                        Err(why) => violations.add("update_mask", format!("`{path}`: {why}")),
                    }
                }
            }
            _ => {
                fields = ProductField::ALL
                    .into_iter()
                    .filter(|field| match field {
                        ProductField::Name => !values.name.is_empty(),
                        ProductField::Description => !values.description.is_empty(),
                        ProductField::PriceMinor => values.price_minor != 0,
                        ProductField::Currency => !values.currency.is_empty(),
                        ProductField::Active => values.active,
                    })
                    .collect();
            }
        }
        let mut changes = ProductChanges::default();
        for field in fields {
            match field {
                ProductField::Name => {
                    check_name(&mut violations, &values.name);
                    changes.name = Some(values.name.clone());
                }
                ProductField::Description => {
                    check_description(&mut violations, &values.description);
                    changes.description = Some(values.description.clone());
                }
                ProductField::PriceMinor => {
                    check_price(&mut violations, values.price_minor);
                    changes.price_minor = Some(values.price_minor);
                }
                ProductField::Currency => {
                    check_currency(&mut violations, &values.currency);
                    changes.currency = Some(values.currency.clone());
                }
                ProductField::Active => changes.active = Some(values.active),
            }
        }
        violations.into_result().map(|()| changes)
    }

    /// True when nothing is to change (an unset mask over an all-default product).
    pub fn is_empty(&self) -> bool {
        *self == ProductChanges::default()
    }
}

/// ListProducts' filter: `query` (already lower-cased) matches name or sku as a substring;
/// inactive products only when asked for by an operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductFilter {
    pub query: String,
    pub include_inactive: bool,
}

/// Longest ListProducts `query` accepted.
pub const MAX_QUERY_CHARS: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(violations: Violations) -> Vec<String> {
        violations.iter().map(|v| v.field.clone()).collect()
    }

    fn valid() -> NewProduct {
        NewProduct {
            sku: "MUG-01.BLUE_L".into(),
            name: "Mug".into(),
            description: String::new(),
            price_minor: 0,
            currency: "EUR".into(),
            active: false,
        }
    }

    #[test]
    fn every_broken_rule_is_named() {
        assert!(valid().validate().is_ok());
        let bad = NewProduct {
            sku: "mug".into(),
            name: String::new(),
            description: "x".repeat(5001),
            price_minor: -1,
            currency: "eur".into(),
            active: false,
        };
        assert_eq!(
            fields(bad.validate().unwrap_err()),
            [
                "product.sku",
                "product.name",
                "product.description",
                "product.price_minor",
                "product.currency"
            ]
        );
        for sku in ["", &"A".repeat(65), "A B", "Ä"] {
            let product = NewProduct {
                sku: sku.into(),
                ..valid()
            };
            assert_eq!(fields(product.validate().unwrap_err()), ["product.sku"]);
        }
        let long_name = NewProduct {
            name: "é".repeat(200),
            sku: "A".repeat(64),
            ..valid()
        };
        assert!(long_name.validate().is_ok(), "limits count characters");
    }

    #[test]
    fn masks_select_fields_and_refuse_sku_output_and_unknown_paths() {
        let values = NewProduct {
            name: "New".into(),
            price_minor: 250,
            ..NewProduct::default()
        };
        let unset = ProductChanges::select(None, &values).unwrap();
        assert_eq!(unset.name.as_deref(), Some("New"));
        assert_eq!(unset.price_minor, Some(250));
        assert_eq!((unset.currency, unset.active), (None, None));

        let mask = ["active".to_owned()];
        let deactivate = ProductChanges::select(Some(&mask), &values).unwrap();
        assert_eq!(deactivate.active, Some(false));
        assert_eq!(deactivate.name, None);

        for path in ["sku", "created_at", "updated_at", "product_id", "colour"] {
            let mask = [path.to_owned()];
            let err = ProductChanges::select(Some(&mask), &values).unwrap_err();
            assert_eq!(fields(err), ["update_mask"], "{path}");
        }
        let mask = ["currency".to_owned()];
        let err = ProductChanges::select(Some(&mask), &values).unwrap_err();
        assert_eq!(fields(err), ["product.currency"]);
        // A sku that is sent is not applied, but must still be a sku.
        let bad_sku = NewProduct {
            sku: "×ø".into(),
            ..values.clone()
        };
        let err = ProductChanges::select(None, &bad_sku).unwrap_err();
        assert_eq!(fields(err), ["product.sku"]);
        assert!(
            ProductChanges::select(None, &NewProduct::default())
                .unwrap()
                .is_empty()
        );
    }
}
