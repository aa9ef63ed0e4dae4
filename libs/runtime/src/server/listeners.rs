//! Binding a service's listeners before anything starts, so a busy port is reported naming the
//! component and the address (and tests bind port 0).

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::config::{Config, ServiceKind};

/// A bound gRPC listener and admin listener.
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub admin: TcpListener,
}

/// A listener could not be bound. Names who wanted which address, so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("{owner}: cannot listen on {addr} for {purpose}: {source}")]
pub struct BindError {
    pub owner: String,
    pub purpose: &'static str,
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` or says who could not.
pub async fn bind(
    owner: &str,
    purpose: &'static str,
    addr: SocketAddr,
) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        owner: owner.to_owned(),
        purpose,
        addr,
        source,
    })
}

impl Listeners {
    /// Binds the configured gRPC and admin ports of `kind` on `config.bind_host`.
    pub async fn bind(config: &Config, kind: ServiceKind) -> Result<Self, BindError> {
        let service = config.service(kind);
        let grpc = bind(
            kind.name(),
            "gRPC",
            SocketAddr::new(config.bind_host, service.grpc_port),
        )
        .await?;
        let admin = bind(
            kind.name(),
            "admin HTTP",
            SocketAddr::new(config.bind_host, service.admin_port),
        )
        .await?;
        Ok(Self { grpc, admin })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }
}
