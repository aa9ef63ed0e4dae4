//! Run a set of Ironmesh components in one process, each on its own listeners, talking real
//! loopback gRPC to each other — `ironmesh up`, and the testkit with port 0 everywhere.
//!
//! Three steps, so every failure surfaces where it can be explained:
//! 1. [`bind`] binds every listener before anything runs; a busy port is a [`BindError`] naming
//!    the component and the address.
//! 2. The config's endpoints are pointed at the addresses actually bound (port 0 becomes the real
//!    port), unless an endpoint was configured explicitly.
//! 3. [`BoundMesh::start_healthy`] spawns each component with a shared stop token and waits
//!    until all are healthy; [`RunningMesh::run_until`] runs them until a stop future resolves
//!    and drains everything with one call.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ironmesh_gateway::{GatewayConfig, GatewayListeners};
use ironmesh_runtime::config::ConfigError;
use ironmesh_runtime::server::BindError;
use ironmesh_runtime::{Config, Listeners, ServiceKind};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One thing the mesh runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    Service(ServiceKind),
    Gateway,
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Component::Service(kind) => f.write_str(kind.name()),
            Component::Gateway => f.write_str("gateway"),
        }
    }
}

/// Where a component listens: `main` is gRPC for services, REST for the gateway.
#[derive(Clone, Copy, Debug)]
pub struct Addresses {
    pub component: Component,
    pub main: SocketAddr,
    pub admin: SocketAddr,
}

/// Every listener bound, nothing running yet.
pub struct BoundMesh {
    config: Config,
    services: Vec<(ServiceKind, Listeners)>,
    gateway: Option<GatewayListeners>,
}

/// Why a mesh could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindMeshError {
    /// A port is taken (the error names the component and the address).
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The gateway's section is invalid (the error names the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Binds the listeners of `services` (and the gateway if asked) as configured.
pub async fn bind(
    mut config: Config,
    services: &[ServiceKind],
    gateway: bool,
) -> Result<BoundMesh, BindMeshError> {
    let mut bound = Vec::with_capacity(services.len());
    for &kind in services {
        let listeners = Listeners::bind(&config, kind).await?;
        bound.push((kind, listeners));
    }
    let gateway = if gateway {
        Some(GatewayListeners::bind(&config, &config.section::<GatewayConfig>()?).await?)
    } else {
        None
    };
    // Port 0 means "any": record what we got so endpoints and the printed table are true.
    for (kind, listeners) in &bound {
        let service = config.service_mut(*kind);
        service.grpc_port = local_addr(&listeners.grpc).port();
        service.admin_port = local_addr(&listeners.admin).port();
    }
    if let Some(listeners) = &gateway {
        config.update_section::<GatewayConfig>(|gateway| {
            gateway.http_port = local_addr(&listeners.http).port();
            gateway.admin_port = local_addr(&listeners.admin).port();
        })?;
        // The in-process gateway calls the services over loopback: let them believe the client
        // address it relays, or every REST login would count against one address.
        if config.trusted_forwarders.is_empty() {
            config.trusted_forwarders = vec![
                std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::Ipv6Addr::LOCALHOST.into(),
            ];
        }
    }
    Ok(BoundMesh {
        config,
        services: bound,
        gateway,
    })
}

fn local_addr(listener: &tokio::net::TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .expect("a bound TCP listener has a local address")
}

impl BoundMesh {
    /// The config every component will run with (actual ports filled in).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where each component listens, services first in port order, then the gateway.
    pub fn addresses(&self) -> Vec<Addresses> {
        let mut out: Vec<Addresses> = self
            .services
            .iter()
            .map(|(kind, listeners)| Addresses {
                component: Component::Service(*kind),
                main: local_addr(&listeners.grpc),
                admin: local_addr(&listeners.admin),
            })
            .collect();
        if let Some(listeners) = &self.gateway {
            out.push(Addresses {
                component: Component::Gateway,
                main: local_addr(&listeners.http),
                admin: local_addr(&listeners.admin),
            });
        }
        out
    }

    /// Spawns every component on the current runtime.
    pub fn start(self) -> RunningMesh {
        let addresses = self.addresses();
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for (kind, listeners) in self.services {
            let run = crate::services::run(
                kind,
                self.config.clone(),
                listeners,
                stop.clone().cancelled_owned(),
            );
            tasks.spawn(async move {
                (
                    Component::Service(kind),
                    run.await.map_err(|err| err.to_string()),
                )
            });
        }
        if let Some(listeners) = self.gateway {
            let run = ironmesh_gateway::run(
                self.config.clone(),
                listeners,
                stop.clone().cancelled_owned(),
            );
            tasks.spawn(async move { (Component::Gateway, run.await.map_err(|e| e.to_string())) });
        }
        RunningMesh {
            addresses,
            stop,
            tasks,
        }
    }
}

/// Why a mesh did not come up. The mesh has been stopped (drained) before this is returned.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A component exited while the others were starting.
    #[error(transparent)]
    Exited(ComponentError),
    /// A component was not healthy when the wait ran out.
    #[error("{component} did not become healthy: {why}")]
    Unhealthy { component: Component, why: String },
    /// The interrupt (a signal) arrived before every component was healthy.
    #[error("interrupted while starting")]
    Interrupted,
}

impl BoundMesh {
    /// The one way to bring a mesh up — `ironmesh up`, the bench's server children and the
    /// testkit all use it: spawn every component, wait (up to `limit` each) until all are
    /// healthy, and hand back the running mesh. If a component exits, is not healthy in time or
    /// `interrupt` resolves first, everything is drained and stopped before the error returns,
    /// so a failed start never leaves tasks behind.
    pub async fn start_healthy(
        self,
        limit: Duration,
        interrupt: impl Future<Output = ()>,
    ) -> Result<RunningMesh, StartError> {
        let mut running = self.start();
        let wait = running.wait_healthy(limit);
        tokio::pin!(wait, interrupt);
        let health = tokio::select! {
            health = &mut wait => health,
            Some(err) = running.next_exit() => {
                running.stop().await;
                return Err(StartError::Exited(err));
            }
            () = &mut interrupt => {
                running.stop().await;
                return Err(StartError::Interrupted);
            }
        };
        if let Some((component, Health::NotServing(why))) = health
            .into_iter()
            .find(|(_, health)| *health != Health::Serving)
        {
            running.stop().await;
            return Err(StartError::Unhealthy { component, why });
        }
        Ok(running)
    }
}

/// A component that stopped on its own, or failed while stopping.
#[derive(Debug, thiserror::Error)]
#[error("{component}: {message}")]
pub struct ComponentError {
    pub component: String,
    pub message: String,
}

/// The health of one component as seen from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Serving,
    /// Not serving when the wait ran out; the text says what was seen last.
    NotServing(String),
}

/// Components running in this process.
pub struct RunningMesh {
    addresses: Vec<Addresses>,
    stop: CancellationToken,
    tasks: JoinSet<(Component, Result<(), String>)>,
}

impl RunningMesh {
    pub fn addresses(&self) -> &[Addresses] {
        &self.addresses
    }

    /// The listeners of `component`, if it runs here.
    pub fn address(&self, component: Component) -> Option<Addresses> {
        self.addresses
            .iter()
            .copied()
            .find(|a| a.component == component)
    }

    /// Waits (up to `limit` each) until every component reports healthy: grpc.health.v1 Watch
    /// says SERVING for a service, `/readyz` answers 200 for the gateway. The future does not
    /// borrow the mesh, so callers can race it against [`Self::next_exit`].
    pub fn wait_healthy(
        &self,
        limit: Duration,
    ) -> impl Future<Output = Vec<(Component, Health)>> + use<> {
        let addresses = self.addresses.clone();
        async move {
            let checks = addresses.into_iter().map(|addresses| async move {
                let health = match addresses.component {
                    Component::Service(_) => {
                        crate::probe::wait_grpc_serving(addresses.main, limit).await
                    }
                    Component::Gateway => {
                        crate::probe::wait_http_ready(addresses.admin, limit).await
                    }
                };
                (addresses.component, health)
            });
            futures_util::future::join_all(checks).await
        }
    }

    /// Resolves when a component stops by itself (it should not until [`Self::stop`]).
    pub async fn next_exit(&mut self) -> Option<ComponentError> {
        let joined = self.tasks.join_next().await?;
        Some(match joined {
            Ok((component, Ok(()))) => ComponentError {
                component: component.to_string(),
                message: "stopped unexpectedly".to_owned(),
            },
            Ok((component, Err(message))) => ComponentError {
                component: component.to_string(),
                message,
            },
            Err(join) => ComponentError {
                component: "task".to_owned(),
                message: join.to_string(),
            },
        })
    }

    /// A token that stops the mesh when cancelled (for signal handlers).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs until `stop` resolves, then drains everything. A component that exits by itself
    /// first stops the rest too. Returns every component that failed (empty: a clean drain).
    pub async fn run_until(mut self, stop: impl Future<Output = ()>) -> Vec<ComponentError> {
        tokio::pin!(stop);
        let exited = tokio::select! {
            () = &mut stop => None,
            Some(err) = self.next_exit() => Some(err),
        };
        let mut errors: Vec<ComponentError> = exited.into_iter().collect();
        errors.extend(self.stop().await);
        errors
    }

    /// Drains and stops every component; returns the ones that failed.
    pub async fn stop(mut self) -> Vec<ComponentError> {
        self.stop.cancel();
        let mut errors = Vec::new();
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((component, Err(message))) => errors.push(ComponentError {
                    component: component.to_string(),
                    message,
                }),
                Err(join) => errors.push(ComponentError {
                    component: "task".to_owned(),
                    message: join.to_string(),
                }),
            }
        }
        errors
    }
}
