//! The RPC the stack measurements serve: tonic-health with the whole server SERVING (shared by
//! `ironmesh-bench` and `ironmesh-bench-alloc`).

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};

/// A tonic-health service whose `""` (the whole server) is SERVING.
pub async fn serving_health() -> HealthServer<impl Health> {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    service
}
