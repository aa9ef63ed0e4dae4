//! What a bad configuration value becomes: a [`ConfigError`] naming the key both ways (TOML and
//! environment), without echoing the value (a URL may hold a password).

use super::ENV_PREFIX;

/// A configuration value that cannot be used. `key` is the dotted TOML key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {} ({}): {message}", env_name(.key), .key)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// `orders.grpc_port` → `IRONMESH_ORDERS__GRPC_PORT`.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

pub fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    // sqlite URLs may be relative paths (`sqlite://data/x.db`), which `url` reads as a host; the
    // scheme is what matters here, the driver checks the rest when it connects.
    let scheme = match url::Url::parse(value) {
        Ok(url) => url.scheme().to_owned(),
        Err(err) => return Err(ConfigError::new(key, format!("not a URL ({err})"))),
    };
    if schemes.contains(&scheme.as_str()) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "unsupported scheme `{scheme}`, expected one of: {}",
                schemes.join(", ")
            ),
        ))
    }
}

/// A figment error as a [`ConfigError`]; `section` prefixes the key when the error comes from
/// extracting one section on its own (`gateway` + `http_port` → `gateway.http_port`).
pub(crate) fn from_figment(err: figment::Error, section: Option<&str>) -> ConfigError {
    let mut path: Vec<String> = section.map(str::to_owned).into_iter().collect();
    if err.path.is_empty() {
        // serde reports unknown fields without a path; the field is in the message.
        match &err.kind {
            figment::error::Kind::UnknownField(field, _) => path.push(field.clone()),
            _ if path.is_empty() => path.push("config".to_owned()),
            _ => {}
        }
    } else {
        path.extend(err.path.iter().cloned());
    }
    let key = path.join(".");
    // The figment message can quote the offending value; values here are ports, names and URLs,
    // but a URL may hold a password, so only the kind of problem is kept.
    let message = match &err.kind {
        figment::error::Kind::InvalidType(actual, expected) => {
            format!("expected {expected}, found {actual}")
        }
        figment::error::Kind::InvalidValue(_, expected) => format!("expected {expected}"),
        figment::error::Kind::UnknownVariant(_, expected) => {
            format!("expected one of: {}", expected.join(", "))
        }
        figment::error::Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
        other => other.to_string(),
    };
    ConfigError::new(key, message)
}
