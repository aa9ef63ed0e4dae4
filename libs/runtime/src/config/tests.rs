//! Loading and validation, through the real providers (figment's Jail sets the environment).

use std::net::IpAddr;

use super::*;

// figment's Jail fixes the closure's error type; its size is not ours to choose.
#[allow(clippy::result_large_err)]
fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    // Jail serialises environment changes across tests and restores them afterwards.
    let mut result = None;
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        for (key, value) in pairs {
            jail.set_env(key, value);
        }
        result = Some(Config::load(None));
        Ok(())
    });
    result.expect("the jail ran")
}

#[test]
fn defaults_follow_the_port_table() {
    let config = load(&[]).unwrap();
    assert_eq!(config.orders.grpc_port, 50052);
    assert_eq!(config.audit.admin_port, 9106);
    assert_eq!(
        config.endpoint(ServiceKind::Inventory),
        "http://127.0.0.1:50053"
    );
    assert!(
        config
            .database_url(ServiceKind::Auth)
            .ends_with("data/auth.db")
    );
}

#[test]
fn nested_env_keys_override_defaults() {
    let config = load(&[
        ("IRONMESH_ORDERS__GRPC_PORT", "6000"),
        ("IRONMESH_LOG_LEVEL", "debug"),
    ])
    .unwrap();
    assert_eq!(config.orders.grpc_port, 6000);
    assert_eq!(config.log_level, LogLevel::Debug);
}

#[test]
fn lists_come_from_the_environment() {
    let config = load(&[("IRONMESH_TRUSTED_FORWARDERS", "[10.0.0.5]")]).unwrap();
    assert_eq!(
        config.trusted_forwarders,
        vec!["10.0.0.5".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn bad_port_names_the_key() {
    let err = load(&[("IRONMESH_ORDERS__GRPC_PORT", "70000")]).unwrap_err();
    assert_eq!(err.key, "orders.grpc_port");
    assert!(
        err.to_string().contains("IRONMESH_ORDERS__GRPC_PORT"),
        "{err}"
    );
}

#[test]
fn unknown_log_level_names_the_key() {
    let err = load(&[("IRONMESH_LOG_LEVEL", "loud")]).unwrap_err();
    assert_eq!(err.key, "log_level");
}

#[test]
fn bad_database_url_names_the_key_without_echoing_it() {
    let err = load(&[("IRONMESH_DATABASE_URL", "mysql://root:hunter2@db/x")]).unwrap_err();
    assert_eq!(err.key, "database_url");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn unknown_key_is_rejected() {
    let config = load(&[("IRONMESH_ORDRES__GRPC_PORT", "1")]).unwrap();
    let err = config.check_sections(&["gateway"]).unwrap_err();
    assert_eq!(err.key, "ordres");
    assert!(err.to_string().contains("IRONMESH_ORDRES"), "{err}");
}

/// A section owned by some crate above the runtime, for the tests below.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Widget {
    size: u32,
    name: String,
}

impl Default for Widget {
    fn default() -> Self {
        Self {
            size: 7,
            name: "w".to_owned(),
        }
    }
}

impl Section for Widget {
    const KEY: &'static str = "widget";

    fn validate(&self) -> Result<(), ConfigError> {
        if self.size == 0 {
            return Err(ConfigError::new("widget.size", "must be at least 1"));
        }
        Ok(())
    }
}

#[test]
fn a_section_is_its_owners_defaults_overlaid_with_what_was_set() {
    let config = load(&[]).unwrap();
    assert_eq!(config.section::<Widget>().unwrap(), Widget::default());
    let config = load(&[("IRONMESH_WIDGET__SIZE", "3")]).unwrap();
    assert!(config.check_sections(&[Widget::KEY]).is_ok());
    assert_eq!(
        config.section::<Widget>().unwrap(),
        Widget {
            size: 3,
            name: "w".to_owned()
        }
    );
}

#[test]
fn section_errors_name_the_full_key() {
    let bad_type = load(&[("IRONMESH_WIDGET__SIZE", "big")]).unwrap();
    let err = bad_type.section::<Widget>().unwrap_err();
    assert_eq!(err.key, "widget.size");
    assert!(err.to_string().contains("IRONMESH_WIDGET__SIZE"), "{err}");

    let unknown = load(&[("IRONMESH_WIDGET__SIZ", "3")]).unwrap();
    let err = unknown.section::<Widget>().unwrap_err();
    assert_eq!(err.key, "widget.siz");

    let invalid = load(&[("IRONMESH_WIDGET__SIZE", "0")]).unwrap();
    assert_eq!(invalid.section::<Widget>().unwrap_err().key, "widget.size");
}

#[test]
fn sections_debug_names_keys_never_values() {
    let mut config = Config::default();
    config.set_section(&Widget {
        size: 1,
        name: "hunter2".to_owned(),
    });
    let debug = format!("{config:?}");
    assert!(debug.contains("widget"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn set_and_update_section_round_trip() {
    let mut config = Config::default();
    config.set_section(&Widget {
        size: 9,
        name: "x".to_owned(),
    });
    config.update_section::<Widget>(|w| w.size += 1).unwrap();
    assert_eq!(config.section::<Widget>().unwrap().size, 10);
    assert!(config.update_section::<Widget>(|w| w.size = 0).is_err());
    assert_eq!(
        config.section::<Widget>().unwrap().size,
        10,
        "a refused update keeps the old"
    );
}
