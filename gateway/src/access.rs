//! Who may call a method, as the contract says (`ironmesh.api.v1.access`), read through the
//! interceptors' policy — the same reading the services' server stacks enforce, so the gateway
//! can never publish one rule while a service applies another. The gateway enforces nothing
//! here (each service's stack does), but it never routes a method only service principals may
//! call (INTERNAL), and it publishes the rest in OpenAPI (`security`, `x-ironmesh-access`). A
//! method without the option makes the route table, and so the gateway's start, fail.

use ironmesh_interceptors::policy::{self, Level, PolicyError};
use prost_reflect::MethodDescriptor;

/// A method's access as the REST edge presents it: a caller meeting any one level is
/// admitted; an API key must also carry one of `scopes` when there are any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Level names: `public`, `authenticated`, `operator`, `admin`, `internal`.
    pub levels: Vec<&'static str>,
    pub scopes: Vec<String>,
}

impl Access {
    /// The access `method` declares.
    pub fn of(method: &MethodDescriptor) -> Result<Self, PolicyError> {
        Ok(match policy::method_access(method)? {
            policy::Access::Public => Self {
                levels: vec!["public"],
                scopes: Vec::new(),
            },
            policy::Access::Authenticated => Self {
                levels: vec!["authenticated"],
                scopes: Vec::new(),
            },
            policy::Access::Require { levels, scopes } => Self {
                levels: levels.into_iter().map(name).collect(),
                scopes,
            },
        })
    }

    /// Only service principals may call it: the gateway does not route it.
    pub fn internal_only(&self) -> bool {
        self.levels.iter().all(|level| *level == "internal")
    }

    /// Anyone may call it without credentials.
    pub fn public(&self) -> bool {
        self.levels.contains(&"public")
    }
}

fn name(level: Level) -> &'static str {
    match level {
        Level::Authenticated => "authenticated",
        Level::Operator => "operator",
        Level::Admin => "admin",
        Level::Internal => "internal",
    }
}
