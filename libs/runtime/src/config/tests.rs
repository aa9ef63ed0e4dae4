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

/// A section owned by a service, so its `KEY` is the service's name: it lives in the service's
/// table, beside the listeners.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Stock {
    hold_secs: u64,
    label: String,
}

impl Default for Stock {
    fn default() -> Self {
        Self {
            hold_secs: 900,
            label: "s".to_owned(),
        }
    }
}

impl Section for Stock {
    const KEY: &'static str = "inventory";

    fn validate(&self) -> Result<(), ConfigError> {
        if self.hold_secs < 60 {
            return Err(ConfigError::new(
                "inventory.hold_secs",
                "must be at least 60",
            ));
        }
        Ok(())
    }
}

// As `load`, with `toml` as the config file.
#[allow(clippy::result_large_err)]
fn load_file(toml: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut result = None;
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        for (key, value) in pairs {
            jail.set_env(key, value);
        }
        jail.create_file("ironmesh.toml", toml)?;
        result = Some(Config::load(Some(Path::new("ironmesh.toml"))));
        Ok(())
    });
    result.expect("the jail ran")
}

#[test]
fn a_services_section_is_set_in_its_table_beside_the_listeners() {
    let config = load_file(
        "[inventory]\ngrpc_port = 6053\nhold_secs = 120\nlabel = \"mugs\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.inventory.grpc_port, 6053);
    assert_eq!(
        config.inventory.admin_port, 9103,
        "unset listeners keep defaults"
    );
    assert!(config.check_sections(&[Stock::KEY]).is_ok());
    assert_eq!(
        config.section::<Stock>().unwrap(),
        Stock {
            hold_secs: 120,
            label: "mugs".to_owned()
        }
    );
}

#[test]
fn a_services_section_is_set_from_the_environment() {
    let config = load(&[
        ("IRONMESH_INVENTORY__HOLD_SECS", "120"),
        ("IRONMESH_INVENTORY__GRPC_PORT", "6053"),
    ])
    .unwrap();
    assert_eq!(config.inventory.grpc_port, 6053);
    assert!(config.check_sections(&[Stock::KEY]).is_ok());
    assert_eq!(
        config.section::<Stock>().unwrap(),
        Stock {
            hold_secs: 120,
            label: "s".to_owned()
        }
    );

    // The environment overrides the file, key by key.
    let config = load_file(
        "[inventory]\nhold_secs = 300\nlabel = \"mugs\"\n",
        &[("IRONMESH_INVENTORY__HOLD_SECS", "120")],
    )
    .unwrap();
    let stock = config.section::<Stock>().unwrap();
    assert_eq!((stock.hold_secs, stock.label.as_str()), (120, "mugs"));
}

#[test]
fn a_services_section_errors_name_the_full_key() {
    let bad_type = load(&[("IRONMESH_INVENTORY__HOLD_SECS", "long")]).unwrap();
    let err = bad_type.section::<Stock>().unwrap_err();
    assert_eq!(err.key, "inventory.hold_secs");
    assert!(
        err.to_string().contains("IRONMESH_INVENTORY__HOLD_SECS"),
        "{err}"
    );

    // A typo is the owner's to refuse: it is in the owner's table.
    let typo = load_file("[inventory]\nhold_sec = 120\n", &[]).unwrap();
    assert!(typo.check_sections(&[Stock::KEY]).is_ok());
    let err = typo.section::<Stock>().unwrap_err();
    assert_eq!(err.key, "inventory.hold_sec");

    let invalid = load(&[("IRONMESH_INVENTORY__HOLD_SECS", "1")]).unwrap();
    assert_eq!(
        invalid.section::<Stock>().unwrap_err().key,
        "inventory.hold_secs"
    );

    // The listeners are still the runtime's, and still checked when loading.
    let err = load_file("[inventory]\ngrpc_port = 70000\nhold_secs = 120\n", &[]).unwrap_err();
    assert_eq!(err.key, "inventory.grpc_port");
}

#[test]
fn unknown_key_in_a_services_table_is_refused_unless_claimed() {
    let config = load_file("[auth]\ngrpc_port = 6051\nbogus = 1\n", &[]).unwrap();
    assert_eq!(config.auth.grpc_port, 6051);
    let err = config.check_sections(&["gateway"]).unwrap_err();
    assert_eq!(err.key, "auth.bogus");
    assert_eq!(err.message, "unknown key `auth.bogus`");
    assert!(err.to_string().contains("IRONMESH_AUTH__BOGUS"), "{err}");
    assert_eq!(
        config.unknown_sections(&["gateway"]).collect::<Vec<_>>(),
        ["auth.bogus"]
    );
    assert!(config.check_sections(&["auth"]).is_ok());

    let from_env = load(&[
        ("IRONMESH_AUTH__BOGUS", "1"),
        ("IRONMESH_WIDGET__SIZE", "3"),
    ])
    .unwrap();
    assert_eq!(
        from_env.unknown_sections(&[]).collect::<Vec<_>>(),
        ["widget", "auth.bogus"]
    );
    assert_eq!(from_env.unknown_sections(&["widget", "auth"]).count(), 0);
}

#[test]
fn set_and_update_a_services_section_round_trip() {
    let mut config = Config::default();
    config.inventory.grpc_port = 6053;
    config.set_section(&Stock {
        hold_secs: 120,
        label: "hunter2".to_owned(),
    });
    assert_eq!(
        config.inventory.grpc_port, 6053,
        "the listeners are left alone"
    );
    assert!(
        config.sections == Sections::new(),
        "a service's section is in its table"
    );
    assert!(config.check_sections(&[Stock::KEY]).is_ok());
    assert_eq!(config.section::<Stock>().unwrap().hold_secs, 120);
    config
        .update_section::<Stock>(|s| s.hold_secs += 1)
        .unwrap();
    assert_eq!(config.section::<Stock>().unwrap().hold_secs, 121);
    assert!(config.update_section::<Stock>(|s| s.hold_secs = 0).is_err());
    assert_eq!(config.section::<Stock>().unwrap().hold_secs, 121);

    let debug = format!("{config:?}");
    assert!(debug.contains("hold_secs"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}
