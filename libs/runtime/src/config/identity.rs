//! The service identity secret (`service_identity.secret`): base64 of 32 random bytes shared by
//! every process of a deployment, from which services mint the tokens they call each other
//! with (see `ironmesh_interceptors::auth::service`). Unset, it is generated once into
//! `data_dir/service.key` (mode 0600) — right for one node; replicas on several machines must be
//! given the same secret (Kubernetes: from a Secret, `IRONMESH_SERVICE_IDENTITY__SECRET`).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `service_identity` table. `Debug` never shows the secret.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceIdentityConfig {
    /// Base64 of 32 bytes. Unset: `data_dir/service.key`.
    pub secret: Option<String>,
}

impl std::fmt::Debug for ServiceIdentityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceIdentityConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ServiceIdentityConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.secret
            && ironmesh_interceptors::auth::service::ServiceSecret::decode_base64(secret).is_none()
        {
            return Err(ConfigError::new(
                "service_identity.secret",
                "must be base64 of 32 bytes",
            ));
        }
        Ok(())
    }
}
