//! The per-method policy table: for every gRPC method a process serves or calls, whether it is
//! idempotent (so the client may retry it) and who may call it (enforced by the authentication
//! layer in the server stack).
//!
//! Idempotency is not configured by hand: it is read from the proto descriptors'
//! `option idempotency_level` (`NO_SIDE_EFFECTS` or `IDEMPOTENT` ⇒ retryable), so the contract
//! and the retry behaviour cannot drift apart.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;
use prost_types::FileDescriptorSet;
use prost_types::method_options::IdempotencyLevel;

/// Who may call a method. Enforced by the authentication layer (auth issue); until then the
/// table records the intent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no credentials (health, reflection, login).
    Public,
    /// Any authenticated principal.
    Authenticated,
    /// A principal with one of these roles.
    AnyRole(Vec<String>),
    /// A principal (usually an API key) carrying this scope.
    Scope(String),
}

/// What the stack knows about one method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodPolicy {
    pub service: Arc<str>,
    pub method: Arc<str>,
    pub idempotent: bool,
    pub access: Access,
}

/// Services every process exposes without credentials.
const PUBLIC_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Methods by path (`/pkg.Service/Method`). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct PolicyTable {
    methods: Arc<HashMap<String, MethodPolicy>>,
}

impl PolicyTable {
    /// Reads every method of every service in the encoded `FileDescriptorSet`s. Services in
    /// [`PUBLIC_SERVICES`] are public, everything else requires authentication until a service
    /// declares otherwise.
    pub fn from_descriptor_sets(sets: &[&[u8]]) -> Result<Self, prost::DecodeError> {
        let mut methods = HashMap::new();
        for encoded in sets {
            let set = FileDescriptorSet::decode(*encoded)?;
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let name = service.name.unwrap_or_default();
                    let full: Arc<str> = if package.is_empty() {
                        name.into()
                    } else {
                        format!("{package}.{name}").into()
                    };
                    let access = if PUBLIC_SERVICES.contains(&&*full) {
                        Access::Public
                    } else {
                        Access::Authenticated
                    };
                    for method in service.method {
                        let method_name: Arc<str> = method.name.unwrap_or_default().into();
                        let level = method
                            .options
                            .and_then(|o| o.idempotency_level)
                            .and_then(|l| IdempotencyLevel::try_from(l).ok())
                            .unwrap_or(IdempotencyLevel::IdempotencyUnknown);
                        let idempotent = matches!(
                            level,
                            IdempotencyLevel::NoSideEffects | IdempotencyLevel::Idempotent
                        );
                        methods.insert(
                            format!("/{full}/{method_name}"),
                            MethodPolicy {
                                service: full.clone(),
                                method: method_name,
                                idempotent,
                                access: access.clone(),
                            },
                        );
                    }
                }
            }
        }
        Ok(Self {
            methods: Arc::new(methods),
        })
    }

    /// Adds or replaces one method's policy (tests, and services declaring access).
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
