//! The gateway's configuration section, `gateway` (`IRONMESH_GATEWAY__…`): its listeners, its
//! edge protection and its header allow-lists. Read through `Config::section`, validated here,
//! every error naming the key at fault.

use std::net::IpAddr;
use std::path::PathBuf;

use ironmesh_runtime::Config;
use ironmesh_runtime::config::{ConfigError, Section, check_url};
use serde::{Deserialize, Serialize};

/// The upper bound of `gateway.max_header_bytes`: above it hyper's own HTTP/2 header-list
/// backstop answers first (see `serve.rs`).
pub const MAX_HEADER_BYTES_LIMIT: usize = crate::serve::HEADER_LIST_BACKSTOP as usize;

/// `gateway.*`: the REST edge's listeners and protection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// REST listener port (0 = any free port).
    pub http_port: u16,
    /// Admin HTTP listener port (0 = any free port).
    pub admin_port: u16,
    /// Origins allowed to call the REST API from a browser (exact `scheme://host[:port]`).
    pub cors_origins: Vec<String>,
    /// Requests per second allowed per client address and per credential (GCRA).
    pub rate_limit_per_sec: u32,
    /// How many requests may come at once before the rate applies.
    pub rate_limit_burst: u32,
    /// Addresses of proxies in front of the gateway whose `X-Forwarded-For` is believed; from
    /// anyone else the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// A client must send its request headers within this many milliseconds (slowloris guard).
    pub header_read_timeout_ms: u64,
    /// Route groups with their own rate limit: the longest matching path prefix decides; paths
    /// in no group use `rate_limit_per_sec` / `rate_limit_burst`.
    pub route_limits: Vec<RouteLimit>,
    /// Request headers passed upstream as gRPC metadata, besides `authorization`, `x-request-id`
    /// and the trace context, which always are.
    pub forward_request_headers: Vec<String>,
    /// Response metadata returned to REST clients as headers.
    pub forward_response_headers: Vec<String>,
    /// Largest request body accepted (413 beyond, without reading the rest).
    pub max_body_bytes: usize,
    /// Largest request header list accepted, counted as HTTP/2 counts it (name + value + 32 per
    /// field): 431 beyond, before any upstream call. The default stays under the upstreams' own
    /// 16 KiB metadata limit with room for what the gateway adds.
    pub max_header_bytes: usize,
    /// Serve REST over TLS with this certificate chain (PEM); HSTS is sent only then.
    pub tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

/// A rate limit for every REST path starting with `prefix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteLimit {
    /// The group's name, used in metrics and Redis keys.
    pub name: String,
    /// Path prefix, such as `/v1/auth/`.
    pub prefix: String,
    /// Requests per second per client address and per credential.
    pub per_sec: u32,
    /// Burst allowance.
    pub burst: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            http_port: 8080,
            admin_port: 9100,
            cors_origins: Vec::new(),
            rate_limit_per_sec: 50,
            rate_limit_burst: 100,
            trusted_proxies: Vec::new(),
            header_read_timeout_ms: 10_000,
            route_limits: vec![RouteLimit {
                name: "auth".to_owned(),
                prefix: "/v1/auth/".to_owned(),
                per_sec: 10,
                burst: 20,
            }],
            forward_request_headers: [
                "accept-language",
                "idempotency-key",
                "if-match",
                "stripe-signature",
                "webhook-id",
                "webhook-signature",
                "webhook-timestamp",
                "x-github-delivery",
                "x-hub-signature-256",
            ]
            .map(str::to_owned)
            .to_vec(),
            forward_response_headers: ["etag", "location"].map(str::to_owned).to_vec(),
            max_body_bytes: 4 * 1024 * 1024,
            max_header_bytes: crate::header_limit::DEFAULT_MAX_HEADER_BYTES,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl Section for GatewayConfig {
    const KEY: &'static str = "gateway";

    fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = |key: &str| ConfigError::new(key, "must be at least 1");
        if self.rate_limit_per_sec == 0 {
            return Err(at_least_one("gateway.rate_limit_per_sec"));
        }
        if self.rate_limit_burst == 0 {
            return Err(at_least_one("gateway.rate_limit_burst"));
        }
        for origin in &self.cors_origins {
            check_url("gateway.cors_origins", origin, &["http", "https"])?;
        }
        for (i, group) in self.route_limits.iter().enumerate() {
            let key = |field: &str| format!("gateway.route_limits[{i}].{field}");
            if group.name.is_empty() {
                return Err(ConfigError::new(key("name"), "must not be empty"));
            }
            if !group.prefix.starts_with('/') {
                return Err(ConfigError::new(key("prefix"), "must start with /"));
            }
            if group.per_sec == 0 {
                return Err(at_least_one(&key("per_sec")));
            }
            if group.burst == 0 {
                return Err(at_least_one(&key("burst")));
            }
        }
        check_header_names(
            "gateway.forward_request_headers",
            &self.forward_request_headers,
        )?;
        check_header_names(
            "gateway.forward_response_headers",
            &self.forward_response_headers,
        )?;
        if self.max_body_bytes == 0 {
            return Err(at_least_one("gateway.max_body_bytes"));
        }
        if !(1024..=MAX_HEADER_BYTES_LIMIT).contains(&self.max_header_bytes) {
            return Err(ConfigError::new(
                "gateway.max_header_bytes",
                format!("must be between 1024 and {MAX_HEADER_BYTES_LIMIT}"),
            ));
        }
        if self.header_read_timeout_ms == 0 {
            return Err(at_least_one("gateway.header_read_timeout_ms"));
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => Err(ConfigError::new(
                "gateway.tls_key_file",
                "required with gateway.tls_cert_file",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "gateway.tls_cert_file",
                "required with gateway.tls_key_file",
            )),
            _ => Ok(()),
        }
    }
}

fn check_header_names(key: &str, names: &[String]) -> Result<(), ConfigError> {
    for name in names {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with("grpc-");
        if !valid {
            return Err(ConfigError::new(
                key,
                "header names must be lower-case token characters and not grpc-*",
            ));
        }
    }
    Ok(())
}

impl GatewayConfig {
    /// The gateway's listeners on port 0 (any free port), for tests and benchmarks; the rest
    /// of the section as configured.
    pub fn any_port(config: &mut Config) -> Result<(), ConfigError> {
        config.update_section::<Self>(|gateway| {
            gateway.http_port = 0;
            gateway.admin_port = 0;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(change: impl FnOnce(&mut GatewayConfig)) -> String {
        let mut gateway = GatewayConfig::default();
        change(&mut gateway);
        let mut config = Config::default();
        config.set_section(&gateway);
        config.section::<GatewayConfig>().unwrap_err().key
    }

    /// Each rule names the key at fault (the runtime's old checks reported a bad response
    /// header as `forward_request_headers`, a zero burst as `rate_limit_per_sec`, a missing
    /// certificate as `tls_key_file`, and any route group fault as `route_limits`).
    #[test]
    fn each_bad_value_names_its_own_key() {
        assert_eq!(
            refused(|g| g.rate_limit_burst = 0),
            "gateway.rate_limit_burst"
        );
        assert_eq!(
            refused(|g| g.rate_limit_per_sec = 0),
            "gateway.rate_limit_per_sec"
        );
        assert_eq!(
            refused(|g| g.forward_response_headers = vec!["Bad Header".to_owned()]),
            "gateway.forward_response_headers"
        );
        assert_eq!(
            refused(|g| g.forward_request_headers = vec!["grpc-timeout".to_owned()]),
            "gateway.forward_request_headers"
        );
        assert_eq!(
            refused(|g| g.tls_key_file = Some("key.pem".into())),
            "gateway.tls_cert_file"
        );
        assert_eq!(
            refused(|g| g.tls_cert_file = Some("cert.pem".into())),
            "gateway.tls_key_file"
        );
        assert_eq!(
            refused(|g| g.route_limits[0].burst = 0),
            "gateway.route_limits[0].burst"
        );
        assert_eq!(
            refused(|g| g.route_limits[0].prefix = "v1".to_owned()),
            "gateway.route_limits[0].prefix"
        );
        assert_eq!(
            refused(|g| g.max_header_bytes = 10),
            "gateway.max_header_bytes"
        );
        assert_eq!(refused(|g| g.max_body_bytes = 0), "gateway.max_body_bytes");
        assert_eq!(
            refused(|g| g.cors_origins = vec!["not a url".to_owned()]),
            "gateway.cors_origins"
        );
    }

    /// Lists and single values come from the environment like every other key.
    #[test]
    // figment's Jail fixes the closure's error type; its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    fn lists_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env(
                "IRONMESH_GATEWAY__ROUTE_LIMITS",
                r#"[{name="login",prefix="/v1/auth/login",per_sec=2,burst=5}]"#,
            );
            jail.set_env(
                "IRONMESH_GATEWAY__FORWARD_RESPONSE_HEADERS",
                "[etag,x-page]",
            );
            jail.set_env("IRONMESH_GATEWAY__MAX_HEADER_BYTES", "8192");
            let config = Config::load(None).expect("loads");
            let gateway = config.section::<GatewayConfig>().expect("valid");
            assert_eq!(
                gateway.route_limits,
                vec![RouteLimit {
                    name: "login".to_owned(),
                    prefix: "/v1/auth/login".to_owned(),
                    per_sec: 2,
                    burst: 5,
                }]
            );
            assert_eq!(gateway.forward_response_headers, ["etag", "x-page"]);
            assert_eq!(gateway.max_header_bytes, 8192);
            assert_eq!(gateway.http_port, 8080, "defaults fill the rest");
            Ok(())
        });
    }
}
