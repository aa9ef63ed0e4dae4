//! The admin HTTP listener every process runs next to its main one (DESIGN.md §7):
//! `/healthz` answers while the process is alive, `/readyz` only while it can do useful work (store
//! reachable, not draining). Kubernetes points liveness and readiness probes here; later issues
//! add `/metrics` by merging their routes into [`router`]'s.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;

use ironmesh_interceptors::metrics;

use crate::health::HealthState;

/// `/healthz`, `/readyz` backed by `health`, and `/metrics` for `service`.
pub fn router(health: HealthState, service: &'static str) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
        .merge(metrics_router(service))
}

/// `/metrics`: the series recorded by `service` in this process.
pub fn metrics_router(service: &'static str) -> Router {
    Router::new().route(
        "/metrics",
        get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                metrics::Metrics::global().render(Some(service)),
            )
        }),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(health): State<HealthState>) -> (StatusCode, &'static str) {
    if health.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else if health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
