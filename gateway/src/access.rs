//! Who may call a method, as the contract says (`ironmesh.api.v1.access`), read from the
//! descriptors like every other rule the gateway follows. The gateway enforces nothing here —
//! each service's server stack does — but it never routes a method only service principals may
//! call (INTERNAL), and it publishes the rest in OpenAPI (`security`, `x-ironmesh-access`).
//!
//! A method without the option counts as AUTHENTICATED: the conservative reading (credentials
//! required) while contracts are being annotated. The service side refuses to start without
//! one, so this default never decides anything in a running mesh.

use prost_reflect::{MethodDescriptor, Value};

/// The option's full name.
const OPTION: &str = "ironmesh.api.v1.access";

/// One access level (`ironmesh.api.v1.AccessLevel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Public,
    Authenticated,
    Operator,
    Admin,
    Internal,
}

impl Level {
    fn from_number(number: i32) -> Option<Self> {
        Some(match number {
            1 => Self::Public,
            2 => Self::Authenticated,
            3 => Self::Operator,
            4 => Self::Admin,
            5 => Self::Internal,
            _ => return None,
        })
    }

    /// The level's name in the published document (`public`, `operator`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Authenticated => "authenticated",
            Self::Operator => "operator",
            Self::Admin => "admin",
            Self::Internal => "internal",
        }
    }
}

/// A method's access: a caller meeting any one level is admitted; an API key must also carry
/// one of `scopes` when there are any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub levels: Vec<Level>,
    pub scopes: Vec<String>,
    /// The contract states it (false: the AUTHENTICATED default of a method without the option).
    pub declared: bool,
}

impl Access {
    /// The access `method` declares, or AUTHENTICATED when it declares none.
    pub fn of(method: &MethodDescriptor) -> Self {
        let undeclared = Self {
            levels: vec![Level::Authenticated],
            scopes: Vec::new(),
            declared: false,
        };
        let Some(extension) = method.parent_pool().get_extension_by_name(OPTION) else {
            return undeclared;
        };
        let options = method.options();
        if !options.has_extension(&extension) {
            return undeclared;
        }
        let Value::Message(access) = &*options.get_extension(&extension) else {
            return undeclared;
        };
        let levels: Vec<Level> = match access.get_field_by_name("levels").as_deref() {
            Some(Value::List(values)) => values
                .iter()
                .filter_map(Value::as_enum_number)
                .filter_map(Level::from_number)
                .collect(),
            _ => Vec::new(),
        };
        let scopes = match access.get_field_by_name("scopes").as_deref() {
            Some(Value::List(values)) => values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        if levels.is_empty() {
            // An option with no level says nothing usable: read it as the default.
            return Self {
                scopes,
                ..undeclared
            };
        }
        Self {
            levels,
            scopes,
            declared: true,
        }
    }

    /// Only service principals may call it: the gateway does not route it.
    pub fn internal_only(&self) -> bool {
        self.levels.iter().all(|level| *level == Level::Internal)
    }

    /// Anyone may call it without credentials.
    pub fn public(&self) -> bool {
        self.levels.contains(&Level::Public)
    }
}
