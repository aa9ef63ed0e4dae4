//! The stack suite's check calls: Health/Check must answer OK and SERVING (with the token, for
//! stack+auth) before and after every run, and stack+auth must refuse a call without a valid
//! token.

use std::net::SocketAddr;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::calls::{connect, grpc_failure, with_bearer};

/// A Health/Check request, with `token` as its bearer credential if given.
fn health_request(token: Option<&str>) -> Result<tonic::Request<HealthCheckRequest>, String> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(token) = token {
        with_bearer(&mut request, token)?;
    }
    Ok(request)
}

/// One real gRPC call: the answer must be OK (`grpc-status: 0`) and SERVING.
pub(super) async fn check_serving(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    let response = HealthClient::new(connect(addr).await?)
        .check(health_request(token)?)
        .await
        .map_err(|status| grpc_failure("Health/Check", &status))?;
    let status = response.into_inner().status();
    if status == WireStatus::Serving {
        Ok(())
    } else {
        Err(format!(
            "Health/Check answered OK but status {}, not SERVING",
            status.as_str_name()
        ))
    }
}

/// One real gRPC call that must be refused with UNAUTHENTICATED.
pub(super) async fn expect_unauthenticated(
    addr: SocketAddr,
    token: Option<&str>,
) -> Result<(), String> {
    match HealthClient::new(connect(addr).await?)
        .check(health_request(token)?)
        .await
    {
        Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(()),
        Err(status) => Err(format!(
            "expected UNAUTHENTICATED, got {}",
            grpc_failure("Health/Check", &status)
        )),
        Ok(_) => Err("expected UNAUTHENTICATED, but the call succeeded".to_owned()),
    }
}
