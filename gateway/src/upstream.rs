//! Channels to the six services and the gateway's admin routes. `/readyz` is 200 only when every
//! upstream answers grpc.health.v1 `SERVING` (checked concurrently, each bounded by a timeout)
//! and the gateway is not draining.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use ironmesh_interceptors::client::GrpcChannel;
use ironmesh_runtime::clients;
use ironmesh_runtime::{Config, ServiceKind};
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One channel per service through the shared client stack, connected on first use.
#[derive(Clone)]
pub struct Upstreams {
    channels: Vec<(ServiceKind, GrpcChannel)>,
}

impl Upstreams {
    pub fn connect_lazy(config: &Config) -> Result<Self, super::GatewayError> {
        let channels = ServiceKind::ALL
            .into_iter()
            .map(|kind| {
                let channel =
                    clients::forwarding_channel(config, "gateway", kind).map_err(|source| {
                        super::GatewayError::Upstream {
                            service: kind.name(),
                            source,
                        }
                    })?;
                Ok((kind, channel))
            })
            .collect::<Result<_, super::GatewayError>>()?;
        Ok(Self { channels })
    }

    /// Our descriptor set, each service routed to its channel.
    pub fn api(&self) -> Result<crate::Api, super::GatewayError> {
        let pool = prost_reflect::DescriptorPool::decode(ironmesh_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| {
                super::GatewayError::Routes(format!("cannot read the descriptors: {e}"))
            })?;
        let mut api = crate::Api::new(pool.clone());
        for service in pool.services() {
            let kind = service
                .package_name()
                .strip_prefix("ironmesh.")
                .and_then(|p| p.strip_suffix(".v1"))
                .and_then(ServiceKind::from_name);
            if let Some(kind) = kind {
                api = api.route(service.full_name(), self.channel(kind));
            }
        }
        Ok(api)
    }

    /// The channel to `kind`.
    pub fn channel(&self, kind: ServiceKind) -> GrpcChannel {
        self.channels
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, channel)| channel.clone())
            .expect("every service has a channel")
    }

    /// Services that do not answer SERVING right now.
    pub async fn not_serving(&self) -> Vec<ServiceKind> {
        let checks = self.channels.iter().map(|(kind, channel)| async move {
            let mut client = HealthClient::new(channel.clone());
            let mut request = tonic::Request::new(HealthCheckRequest {
                service: String::new(),
            });
            request.set_timeout(CHECK_TIMEOUT);
            let serving = matches!(
                client.check(request).await,
                Ok(response) if response.get_ref().status == ServingStatus::Serving as i32
            );
            (!serving).then_some(*kind)
        });
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

#[derive(Clone)]
struct AdminState {
    upstreams: Upstreams,
    draining: CancellationToken,
}

/// `/healthz` (process alive) and `/readyz` (all upstreams serving, not draining).
pub fn admin_router(upstreams: Upstreams, draining: CancellationToken) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AdminState {
            upstreams,
            draining,
        })
        .merge(ironmesh_runtime::admin::metrics_router("gateway"))
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    if state.draining.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_owned());
    }
    let down = state.upstreams.not_serving().await;
    if down.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        let names: Vec<&str> = down.iter().map(|kind| kind.name()).collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("upstreams not serving: {}\n", names.join(", ")),
        )
    }
}
