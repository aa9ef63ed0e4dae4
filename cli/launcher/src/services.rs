//! The one place that maps a [`ServiceKind`] to its crate.

use futures_util::future::BoxFuture;
use ironmesh_runtime::storage::MigrationSet;
use ironmesh_runtime::{Config, Listeners, RunError, ServiceKind};

/// Runs `kind` on `listeners` until `shutdown` resolves (the crate's own `run`).
pub fn run(
    kind: ServiceKind,
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> BoxFuture<'static, Result<(), RunError>> {
    match kind {
        ServiceKind::Auth => Box::pin(ironmesh_auth::run(config, listeners, shutdown)),
        ServiceKind::Orders => Box::pin(ironmesh_orders::run(config, listeners, shutdown)),
        ServiceKind::Inventory => Box::pin(ironmesh_inventory::run(config, listeners, shutdown)),
        ServiceKind::Provisioning => {
            Box::pin(ironmesh_provisioning::run(config, listeners, shutdown))
        }
        ServiceKind::Notification => {
            Box::pin(ironmesh_notification::run(config, listeners, shutdown))
        }
        ServiceKind::Audit => Box::pin(ironmesh_audit::run(config, listeners, shutdown)),
    }
}

/// The embedded migrations of `kind`.
pub fn migrations(kind: ServiceKind) -> &'static MigrationSet {
    match kind {
        ServiceKind::Auth => &ironmesh_auth::MIGRATIONS,
        ServiceKind::Orders => &ironmesh_orders::MIGRATIONS,
        ServiceKind::Inventory => &ironmesh_inventory::MIGRATIONS,
        ServiceKind::Provisioning => &ironmesh_provisioning::MIGRATIONS,
        ServiceKind::Notification => &ironmesh_notification::MIGRATIONS,
        ServiceKind::Audit => &ironmesh_audit::MIGRATIONS,
    }
}
