//! How the launcher tells a component is healthy from outside, as an orchestrator would:
//! grpc.health.v1 Watch for a service, `/readyz` for the gateway.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::mesh::Health;

pub(crate) async fn wait_grpc_serving(addr: SocketAddr, limit: Duration) -> Health {
    let watch = async {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut stream = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|status| format!("watch failed: {}", status.code()))?
            .into_inner();
        while let Some(item) = stream.next().await {
            let response = item.map_err(|status| format!("watch failed: {}", status.code()))?;
            if response.status == ServingStatus::Serving as i32 {
                return Ok(());
            }
        }
        Err("watch ended before SERVING".to_owned())
    };
    match tokio::time::timeout(limit, watch).await {
        Ok(Ok(())) => Health::Serving,
        Ok(Err(seen)) => Health::NotServing(seen),
        Err(_) => Health::NotServing(format!("not SERVING after {limit:?}")),
    }
}

pub(crate) async fn wait_http_ready(addr: SocketAddr, limit: Duration) -> Health {
    const POLL: Duration = Duration::from_millis(100);
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/readyz");
    let mut last = String::from("no answer");
    let poll = async {
        loop {
            match client
                .get(&url)
                .timeout(Duration::from_secs(3))
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => last = format!("/readyz answered {}", response.status().as_u16()),
                Err(err) => last = format!("/readyz unreachable: {err}"),
            }
            // The gateway is ready only once its upstreams are; re-ask on a short period.
            tokio::time::sleep(POLL).await;
        }
    };
    let outcome = tokio::time::timeout(limit, poll).await;
    match outcome {
        Ok(()) => Health::Serving,
        Err(_) => Health::NotServing(last),
    }
}
