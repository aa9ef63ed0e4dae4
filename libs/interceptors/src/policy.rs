//! The per-method policy table: for every gRPC method a process serves or calls, whether it is
//! idempotent (so the client may retry it) and who may call it (enforced by the authentication
//! layer in the server stack, [`crate::auth::AuthLayer`]).
//!
//! Neither is configured by hand: both are read from the proto descriptors, so the contract and
//! the behaviour cannot drift apart.
//! - Idempotency: `option idempotency_level` (`NO_SIDE_EFFECTS` or `IDEMPOTENT` ⇒ retryable).
//! - Access: `option (ironmesh.api.v1.access)`. Every method must state it, except those of the
//!   infrastructure services every process exposes ([`PUBLIC_SERVICES`]: health and reflection,
//!   which are not our contracts and are public). A method without it, or with one that says
//!   nothing coherent, makes building the table fail with a [`PolicyError`] naming the method —
//!   and the process refuses to start, rather than guessing who may call it.

use std::collections::HashMap;
use std::sync::Arc;

use ironmesh_proto::ironmesh::api::v1 as contract;
use prost_reflect::{DescriptorPool, ExtensionDescriptor, MethodDescriptor, Value};
use prost_types::method_options::IdempotencyLevel;

/// The full name of the method option that states access.
pub const ACCESS_OPTION: &str = "ironmesh.api.v1.access";

/// One level a caller may satisfy (the contract's `AccessLevel` minus PUBLIC, which needs no
/// caller at all and is [`Access::Public`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Any authenticated end user (access token or API key).
    Authenticated,
    /// An end user holding the operator or the admin role.
    Operator,
    /// An end user holding the admin role.
    Admin,
    /// A service principal (`service:<name>`), never an end user.
    Internal,
}

/// Who may call a method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no credentials (health, reflection, login).
    Public,
    /// Any authenticated principal. Kept as its own variant because it is what most methods say
    /// and what the authentication layer can decide without looking further.
    Authenticated,
    /// A caller satisfying any one of `levels` (sorted, no duplicates, never empty) — and, when
    /// `scopes` is not empty and the caller is an API key, holding one of `scopes`.
    Require {
        levels: Vec<Level>,
        scopes: Vec<String>,
    },
}

/// Why an access option cannot be enforced as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAccess {
    #[error("lists no level")]
    NoLevel,
    /// ACCESS_LEVEL_UNSPECIFIED (0) or a number this build does not know.
    #[error("lists level {0}, which is not a level (UNSPECIFIED or unknown)")]
    UnknownLevel(i32),
    /// Public means "no credentials"; combined with anything else it would mean two things.
    #[error("combines ACCESS_LEVEL_PUBLIC with other levels or scopes")]
    PublicCombined,
}

impl Access {
    /// The access a contract states with `levels` (the `AccessLevel` numbers) and `scopes`.
    pub fn from_contract(levels: &[i32], scopes: Vec<String>) -> Result<Self, InvalidAccess> {
        let mut public = false;
        let mut parsed = Vec::with_capacity(levels.len());
        for &number in levels {
            let level = contract::AccessLevel::try_from(number)
                .map_err(|_| InvalidAccess::UnknownLevel(number))?;
            match level {
                contract::AccessLevel::Unspecified => {
                    return Err(InvalidAccess::UnknownLevel(number));
                }
                contract::AccessLevel::Public => public = true,
                contract::AccessLevel::Authenticated => parsed.push(Level::Authenticated),
                contract::AccessLevel::Operator => parsed.push(Level::Operator),
                contract::AccessLevel::Admin => parsed.push(Level::Admin),
                contract::AccessLevel::Internal => parsed.push(Level::Internal),
            }
        }
        if public {
            return if parsed.is_empty() && scopes.is_empty() {
                Ok(Self::Public)
            } else {
                Err(InvalidAccess::PublicCombined)
            };
        }
        parsed.sort_unstable();
        parsed.dedup();
        match parsed.as_slice() {
            [] => Err(InvalidAccess::NoLevel),
            [Level::Authenticated] if scopes.is_empty() => Ok(Self::Authenticated),
            _ => Ok(Self::Require {
                levels: parsed,
                scopes,
            }),
        }
    }
}

/// Why a policy table could not be built.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PolicyError {
    /// `Arc`: the table is built once per process and its error handed to every caller.
    #[error("the descriptor set does not decode: {0}")]
    Decode(#[source] Arc<prost_reflect::DescriptorError>),
    #[error("{method} states no access: every method needs `option ({ACCESS_OPTION})`")]
    Unannotated { method: String },
    #[error("{method}: its access option {reason}")]
    Invalid {
        method: String,
        #[source]
        reason: InvalidAccess,
    },
    #[error("{method}: its access option does not decode: {source}")]
    Undecodable {
        method: String,
        #[source]
        source: prost::DecodeError,
    },
}

/// What the stack knows about one method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodPolicy {
    pub service: Arc<str>,
    pub method: Arc<str>,
    pub idempotent: bool,
    pub access: Access,
}

/// Services every process exposes without credentials. They are not our contracts (no access
/// option to read), and a load balancer or `grpcurl` must reach them without a token.
pub const PUBLIC_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Methods by path (`/pkg.Service/Method`). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct PolicyTable {
    /// Looked up by path several times per call: a fast hasher (the keys come from descriptors,
    /// never from callers).
    methods: Arc<HashMap<String, MethodPolicy, foldhash::fast::RandomState>>,
}

impl PolicyTable {
    /// Reads every method of every service in the encoded `FileDescriptorSet`s (see the module
    /// docs). Each set is decoded on its own: they are compiled separately (ours, tonic-health's,
    /// tonic-reflection's) and may carry different copies of shared imports.
    pub fn from_descriptor_sets(sets: &[&[u8]]) -> Result<Self, PolicyError> {
        let mut methods = HashMap::default();
        for encoded in sets {
            let pool = DescriptorPool::decode(*encoded)
                .map_err(|error| PolicyError::Decode(Arc::new(error)))?;
            for service in pool.services() {
                let full: Arc<str> = service.full_name().into();
                for method in service.methods() {
                    let access = method_access(&method)?;
                    methods.insert(
                        format!("/{full}/{}", method.name()),
                        MethodPolicy {
                            service: full.clone(),
                            method: method.name().into(),
                            idempotent: idempotent(&method),
                            access,
                        },
                    );
                }
            }
        }
        Ok(Self {
            methods: Arc::new(methods),
        })
    }

    /// Adds or replaces one method's policy (tests and benchmarks standing one method in for
    /// another; production tables come from the descriptors alone).
    pub fn with(mut self, path: &str, idempotent: bool, access: Access) -> Self {
        let (service, method) = crate::grpc::split_path(path).expect("a /pkg.Service/Method path");
        Arc::make_mut(&mut self.methods).insert(
            path.to_owned(),
            MethodPolicy {
                service: service.into(),
                method: method.into(),
                idempotent,
                access,
            },
        );
        self
    }

    pub fn get(&self, path: &str) -> Option<&MethodPolicy> {
        self.methods.get(path)
    }

    /// Every method of the table, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &MethodPolicy> {
        self.methods.values()
    }

    /// True when `path` may be retried.
    pub fn is_idempotent(&self, path: &str) -> bool {
        self.get(path).is_some_and(|p| p.idempotent)
    }

    /// `(grpc_service, grpc_method)` labels for `path`: the real names for a known method,
    /// `("unknown", "unknown")` otherwise.
    pub fn labels(&self, path: &str) -> (Arc<str>, Arc<str>) {
        match self.get(path) {
            Some(policy) => (policy.service.clone(), policy.method.clone()),
            None => (Arc::from("unknown"), Arc::from("unknown")),
        }
    }

    pub fn len(&self) -> usize {
        self.methods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }
}

/// `NO_SIDE_EFFECTS` or `IDEMPOTENT` in the method's options.
fn idempotent(method: &MethodDescriptor) -> bool {
    let level = method
        .options()
        .get_field_by_name("idempotency_level")
        .and_then(|value| value.as_enum_number())
        .and_then(|number| IdempotencyLevel::try_from(number).ok())
        .unwrap_or(IdempotencyLevel::IdempotencyUnknown);
    matches!(
        level,
        IdempotencyLevel::NoSideEffects | IdempotencyLevel::Idempotent
    )
}

/// Who may call `method`: public for the infrastructure services ([`PUBLIC_SERVICES`]),
/// otherwise what its `ironmesh.api.v1.access` option states — the one reading of the option,
/// shared by the server stack and the gateway (which routes and documents by it).
pub fn method_access(method: &MethodDescriptor) -> Result<Access, PolicyError> {
    if PUBLIC_SERVICES.contains(&method.parent_service().full_name()) {
        return Ok(Access::Public);
    }
    // Absent from pools that do not import our options: then every method is unannotated.
    let option = method.parent_pool().get_extension_by_name(ACCESS_OPTION);
    declared_access(method, option.as_ref())
}

/// The access `method` states in its options.
fn declared_access(
    method: &MethodDescriptor,
    option: Option<&ExtensionDescriptor>,
) -> Result<Access, PolicyError> {
    let options = method.options();
    let unannotated = || PolicyError::Unannotated {
        method: method.full_name().to_owned(),
    };
    let option = option.ok_or_else(unannotated)?;
    if !options.has_extension(option) {
        return Err(unannotated());
    }
    let Value::Message(value) = &*options.get_extension(option) else {
        return Err(unannotated());
    };
    // Into the generated type: its fields are typed, so nothing here depends on field names.
    let declared: contract::Access =
        value
            .transcode_to()
            .map_err(|source| PolicyError::Undecodable {
                method: method.full_name().to_owned(),
                source,
            })?;
    Access::from_contract(&declared.levels, declared.scopes).map_err(|reason| {
        PolicyError::Invalid {
            method: method.full_name().to_owned(),
            reason,
        }
    })
}

#[cfg(test)]
mod tests;
