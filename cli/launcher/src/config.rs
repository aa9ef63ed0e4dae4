//! The whole configuration of a mesh: the runtime's keys plus every component's sections. Only
//! here are all the owners known, so only here can a top-level key nobody reads be refused and
//! every section be validated before anything starts.

use ironmesh_runtime::Config;
use ironmesh_runtime::config::{ConfigError, Section};

/// Every listener on 127.0.0.1 and port 0 (any free port) — the services' and the gateway's —
/// as tests and benchmarks run a mesh beside whatever else the machine runs.
pub fn on_loopback_any_port(config: Config) -> Result<Config, ConfigError> {
    let mut config = config.on_loopback_any_port();
    ironmesh_gateway::GatewayConfig::any_port(&mut config)?;
    Ok(config)
}

/// Every top-level section key some component reads.
pub fn sections() -> Vec<&'static str> {
    let mut keys = Vec::new();
    keys.extend_from_slice(ironmesh_auth::SECTIONS);
    keys.push(<ironmesh_outbox::EventsConfig as Section>::KEY);
    keys.extend_from_slice(ironmesh_audit::SECTIONS);
    keys.extend_from_slice(ironmesh_inventory::SECTIONS);
    keys.extend_from_slice(ironmesh_orders::SECTIONS);
    keys.extend_from_slice(ironmesh_notification::SECTIONS);
    keys.extend_from_slice(ironmesh_provisioning::SECTIONS);
    keys.push(<ironmesh_gateway::GatewayConfig as Section>::KEY);
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
    config.section::<ironmesh_outbox::EventsConfig>()?;
    config.section::<ironmesh_audit::settings::AuditConfig>()?;
    config.section::<ironmesh_inventory::settings::InventoryConfig>()?;
    config.section::<ironmesh_orders::settings::OrdersConfig>()?;
    config.section::<ironmesh_gateway::GatewayConfig>()?;
    Ok(())
}
