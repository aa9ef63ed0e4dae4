//! Process configuration: built-in defaults, then an optional TOML file, then `IRONMESH_*`
//! environment variables (nested keys use `__`: `IRONMESH_ORDERS__GRPC_PORT=6000` sets
//! `orders.grpc_port`). Everything is validated once at start; the first bad value becomes a
//! [`ConfigError`] that names the key both ways, so an operator can find it in either source.

//!
//! # Layout
//! - [`kinds`]: the six services, log settings, one service's listeners (and its own settings,
//!   raw), mTLS files.
//! - [`tokens`]: access-token settings every verifier shares.
//! - [`identity`]: the service identity secret services call each other with.
//! - [`sections`]: tables owned by crates above the runtime (auth's `lockout`, the sealing
//!   library's `secrets`, the gateway's `gateway`), typed and validated by their owners; a
//!   service's own settings (`inventory.reservation_ttl_secs`) are its section too, kept in its
//!   table beside its listeners.
//! - [`error`]: [`ConfigError`] and the key-naming helpers.

mod error;
mod identity;
mod kinds;
mod sections;
#[cfg(test)]
mod tests;
mod tokens;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use error::from_figment;
pub use error::{ConfigError, check_url, env_name};
pub use identity::ServiceIdentityConfig;
pub use kinds::{LogFormat, LogLevel, ServiceConfig, ServiceKind, TlsConfig};
pub use sections::{Section, Sections};
pub use tokens::TokenConfig;

/// Environment prefix for every configuration key.
pub const ENV_PREFIX: &str = "IRONMESH_";

/// Environment variable naming the optional TOML file.
pub const CONFIG_FILE_ENV: &str = "IRONMESH_CONFIG";

/// Everything a process needs to start. See the README's config reference.
///
/// Unknown keys are not refused by serde here (`deny_unknown_fields` cannot be combined with the
/// flattened [`Sections`]): every top-level key that is not a field lands in `sections`, every
/// key of a service's table beside its listeners lands in that service's
/// [`ServiceConfig::settings`], and [`Config::check_sections`] refuses the ones no owner claims.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Directory for SQLite files (one per service) when no PostgreSQL URL is set.
    pub data_dir: PathBuf,
    /// `postgres://…` shared by all services (each in its own schema). Unset = SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// `redis://…` for cross-replica state (rate limits, lockouts). Unset = in memory.
    pub redis_url: Option<String>,
    /// Address every listener binds to.
    pub bind_host: IpAddr,
    /// Peers (the gateway's addresses) whose `x-forwarded-for` metadata is believed as the
    /// caller's address, for per-address limits such as login lockout; from any other peer it
    /// is ignored. `ironmesh up` with the gateway adds loopback when this is empty.
    pub trusted_forwarders: Vec<IpAddr>,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// How long a drain may take before in-flight calls are cut off.
    pub shutdown_grace_secs: u64,
    /// How often store readiness is re-checked for grpc.health.v1 and `/readyz`.
    pub health_poll_secs: u64,
    /// Largest gRPC message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// Calls a server handles at once; more are refused with RESOURCE_EXHAUSTED.
    pub concurrency_limit: usize,
    /// Deadline of a call whose caller sent no `grpc-timeout`, in milliseconds.
    pub default_deadline_ms: u64,
    /// Longest deadline a caller may ask for, in milliseconds.
    pub max_deadline_ms: u64,
    /// mTLS between processes: all three files, or none (plaintext).
    pub tls: TlsConfig,
    /// Access and refresh token settings (auth issues, every service verifies).
    pub tokens: TokenConfig,
    /// The secret services authenticate to each other with (`service_identity.secret`).
    pub service_identity: ServiceIdentityConfig,
    pub auth: ServiceConfig,
    pub orders: ServiceConfig,
    pub inventory: ServiceConfig,
    pub provisioning: ServiceConfig,
    pub notification: ServiceConfig,
    pub audit: ServiceConfig,
    /// Tables owned by crates above the runtime, raw until their owner reads them.
    #[serde(flatten)]
    pub sections: Sections,
}

/// 4 MiB, the gRPC default, made explicit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database_url: None,
            redis_url: None,
            bind_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            trusted_forwarders: Vec::new(),
            log_level: LogLevel::Info,
            log_format: LogFormat::Auto,
            shutdown_grace_secs: 10,
            health_poll_secs: 5,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            concurrency_limit: 1024,
            default_deadline_ms: 30_000,
            max_deadline_ms: 300_000,
            tls: TlsConfig::default(),
            tokens: TokenConfig::default(),
            service_identity: ServiceIdentityConfig::default(),
            auth: ServiceConfig::defaults(ServiceKind::Auth),
            orders: ServiceConfig::defaults(ServiceKind::Orders),
            inventory: ServiceConfig::defaults(ServiceKind::Inventory),
            provisioning: ServiceConfig::defaults(ServiceKind::Provisioning),
            notification: ServiceConfig::defaults(ServiceKind::Notification),
            audit: ServiceConfig::defaults(ServiceKind::Audit),
            sections: Sections::new(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then the process environment, and validates the
    /// runtime's own keys. Sections are left raw: their owners validate them
    /// ([`Config::section`]) and the composer refuses unclaimed ones ([`Config::check_sections`]).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        // IRONMESH_CONFIG names the file itself (read by the CLI), so it is not a key.
        Self::load_from(
            file,
            Env::prefixed(ENV_PREFIX).ignore(&["config"]).split("__"),
        )
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "config_file",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(env)
            .extract()
            .map_err(|err| from_figment(err, None))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: URL schemes and sensible durations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.service_identity.validate()?;
        if let Some(url) = &self.database_url {
            check_url("database_url", url, &["postgres", "postgresql"])?;
        }
        for kind in ServiceKind::ALL {
            let service = self.service(kind);
            if let Some(url) = &service.database_url {
                check_url(
                    &format!("{kind}.database_url"),
                    url,
                    &["sqlite", "postgres", "postgresql"],
                )?;
            }
            if let Some(endpoint) = &service.endpoint {
                check_url(&format!("{kind}.endpoint"), endpoint, &["http", "https"])?;
            }
        }
        if let Some(url) = &self.redis_url {
            check_url("redis_url", url, &["redis", "rediss"])?;
        }
        if self.shutdown_grace_secs == 0 || self.shutdown_grace_secs > 600 {
            return Err(ConfigError::new(
                "shutdown_grace_secs",
                "must be between 1 and 600 seconds",
            ));
        }
        if self.health_poll_secs == 0 || self.health_poll_secs > 300 {
            return Err(ConfigError::new(
                "health_poll_secs",
                "must be between 1 and 300 seconds",
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err(ConfigError::new(
                "max_message_bytes",
                "must be between 1024 and 67108864",
            ));
        }
        if !(1..=1_000_000).contains(&self.concurrency_limit) {
            return Err(ConfigError::new(
                "concurrency_limit",
                "must be between 1 and 1000000",
            ));
        }
        if self.default_deadline_ms == 0 || self.default_deadline_ms > self.max_deadline_ms {
            return Err(ConfigError::new(
                "default_deadline_ms",
                "must be at least 1 and at most max_deadline_ms",
            ));
        }
        self.tokens.validate()?;
        let tls = &self.tls;
        let files = [
            ("tls.cert_file", &tls.cert_file),
            ("tls.key_file", &tls.key_file),
            ("tls.ca_file", &tls.ca_file),
        ];
        let set = files.iter().filter(|(_, f)| f.is_some()).count();
        if set != 0 && set != 3 {
            let missing = files.iter().find(|(_, f)| f.is_none()).map(|(k, _)| *k);
            return Err(ConfigError::new(
                missing.unwrap_or("tls"),
                "mTLS needs cert_file, key_file and ca_file together",
            ));
        }
        for (key, file) in files {
            if let Some(path) = file
                && !path.is_file()
            {
                return Err(ConfigError::new(key, "file not found"));
            }
        }
        Ok(())
    }

    pub fn default_deadline(&self) -> Duration {
        Duration::from_millis(self.default_deadline_ms)
    }

    pub fn max_deadline(&self) -> Duration {
        Duration::from_millis(self.max_deadline_ms)
    }

    /// The settings of one service.
    pub fn service(&self, kind: ServiceKind) -> &ServiceConfig {
        match kind {
            ServiceKind::Auth => &self.auth,
            ServiceKind::Orders => &self.orders,
            ServiceKind::Inventory => &self.inventory,
            ServiceKind::Provisioning => &self.provisioning,
            ServiceKind::Notification => &self.notification,
            ServiceKind::Audit => &self.audit,
        }
    }

    /// Every service listener on 127.0.0.1 and port 0 (any free port), as tests and benchmarks
    /// run a mesh beside whatever else the machine runs. (The gateway's own ports are its
    /// section's: see `ironmesh_gateway::config`.)
    pub fn on_loopback_any_port(mut self) -> Self {
        self.bind_host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for kind in ServiceKind::ALL {
            let service = self.service_mut(kind);
            service.grpc_port = 0;
            service.admin_port = 0;
        }
        self
    }

    /// Mutable settings of one service (the CLI and testkit fill in endpoints after binding).
    pub fn service_mut(&mut self, kind: ServiceKind) -> &mut ServiceConfig {
        match kind {
            ServiceKind::Auth => &mut self.auth,
            ServiceKind::Orders => &mut self.orders,
            ServiceKind::Inventory => &mut self.inventory,
            ServiceKind::Provisioning => &mut self.provisioning,
            ServiceKind::Notification => &mut self.notification,
            ServiceKind::Audit => &mut self.audit,
        }
    }

    /// Where `kind` keeps its data: its own URL, else the shared PostgreSQL URL, else a SQLite
    /// file under `data_dir`.
    pub fn database_url(&self, kind: ServiceKind) -> String {
        if let Some(url) = &self.service(kind).database_url {
            return url.clone();
        }
        if let Some(url) = &self.database_url {
            return url.clone();
        }
        let file = self.data_dir.join(format!("{kind}.db"));
        format!("sqlite://{}", file.display())
    }

    /// How to reach `kind` over gRPC.
    pub fn endpoint(&self, kind: ServiceKind) -> String {
        let service = self.service(kind);
        match &service.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => {
                let host = match self.bind_host {
                    IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    ip => ip,
                };
                let addr = std::net::SocketAddr::new(host, service.grpc_port);
                let scheme = if self.tls.enabled() { "https" } else { "http" };
                format!("{scheme}://{addr}")
            }
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn health_poll(&self) -> Duration {
        Duration::from_secs(self.health_poll_secs)
    }
}
