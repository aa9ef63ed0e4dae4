//! The names and small value types every process shares: which services exist (and their
//! default ports), log settings, one service's listeners, storage and own settings, and mTLS
//! files.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Sections;

/// The six services. Their names are used for ports, database files/schemas and log fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    Auth,
    Orders,
    Inventory,
    Provisioning,
    Notification,
    Audit,
}

impl ServiceKind {
    /// Every service, in port order.
    pub const ALL: [ServiceKind; 6] = [
        ServiceKind::Auth,
        ServiceKind::Orders,
        ServiceKind::Inventory,
        ServiceKind::Provisioning,
        ServiceKind::Notification,
        ServiceKind::Audit,
    ];

    /// Lower-case name: `orders`.
    pub const fn name(self) -> &'static str {
        match self {
            ServiceKind::Auth => "auth",
            ServiceKind::Orders => "orders",
            ServiceKind::Inventory => "inventory",
            ServiceKind::Provisioning => "provisioning",
            ServiceKind::Notification => "notification",
            ServiceKind::Audit => "audit",
        }
    }

    /// Parses a lower-case name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    const fn index(self) -> u16 {
        match self {
            ServiceKind::Auth => 1,
            ServiceKind::Orders => 2,
            ServiceKind::Inventory => 3,
            ServiceKind::Provisioning => 4,
            ServiceKind::Notification => 5,
            ServiceKind::Audit => 6,
        }
    }

    /// gRPC port from DESIGN.md §7 (50051…50056).
    pub const fn default_grpc_port(self) -> u16 {
        50050 + self.index()
    }

    /// Admin HTTP port from DESIGN.md §7 (9101…9106).
    pub const fn default_admin_port(self) -> u16 {
        9100 + self.index()
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Log verbosity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Log encoding. `auto` is JSON unless stderr is a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

/// Ports, storage and reachability of one service — the `[orders]` table — and, beside them, the
/// service's own settings (`inventory.reservation_ttl_secs`).
///
/// The runtime knows only the four listener and storage fields. Every other key in the table is
/// kept raw in `settings` until the service reads it as its [`Section`](super::Section) whose
/// `KEY` is the service's name ([`Config::section`](super::Config::section)); that type refuses
/// unknown keys, and [`Config::check_sections`](super::Config::check_sections) refuses extra keys
/// of a service nobody claims. (So serde cannot deny unknown fields here.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfig {
    /// gRPC listener port (0 = any free port).
    pub grpc_port: u16,
    /// Admin HTTP listener port (0 = any free port).
    pub admin_port: u16,
    /// Overrides the process-wide `database_url` for this service.
    pub database_url: Option<String>,
    /// How other processes reach this service, e.g. `http://orders:50052`. Defaults to the local
    /// gRPC listener.
    pub endpoint: Option<String>,
    /// The service's own settings: every other key of its table, raw until its owner reads
    /// them. `Debug` names the keys only.
    #[serde(flatten)]
    pub settings: Sections,
}

impl ServiceConfig {
    pub(crate) fn defaults(kind: ServiceKind) -> Self {
        Self {
            grpc_port: kind.default_grpc_port(),
            admin_port: kind.default_admin_port(),
            database_url: None,
            endpoint: None,
            settings: Sections::new(),
        }
    }
}

/// mTLS files (PEM). Servers present `cert_file` and require client certificates signed by
/// `ca_file`; clients present the same certificate and verify servers against `ca_file`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
}

impl TlsConfig {
    /// True when mTLS is configured.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}
