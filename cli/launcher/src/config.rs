//! The whole configuration of a mesh: the runtime's keys plus every component's sections. Only
//! here are all the owners known, so only here can a top-level key nobody reads be refused and
//! every section be validated before anything starts.

use ironmesh_runtime::Config;
use ironmesh_runtime::config::ConfigError;

/// Every top-level section key some component reads.
pub fn sections() -> Vec<&'static str> {
    let mut keys = Vec::new();
    keys.extend_from_slice(ironmesh_auth::SECTIONS);
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Refuses unclaimed top-level keys and validates every component's sections, so a bad value
/// stops `ironmesh` at start (exit 64) naming its key, not a component halfway up.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    config.check_sections(&sections())?;
    config.section::<ironmesh_auth::settings::LockoutConfig>()?;
    config.section::<ironmesh_sealing::SecretsConfig>()?;
    Ok(())
}
