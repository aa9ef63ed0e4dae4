//! The check calls around every run: the runtime they run on, a channel with their timeouts, a
//! bearer credential, and how a refusal reads.

use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::BenchError;

/// How long a single check call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The runtime of a suite's check calls. Each suite drops its own before stopping its server:
/// that closes the connections of those calls, so the server's drain has nothing to wait for.
pub fn calls_runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("cannot start the async runtime"))
}

/// A channel to `addr` with the check-call timeouts.
pub async fn connect(addr: SocketAddr) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|err| format!("bad address: {err}"))?
        .timeout(CALL_TIMEOUT)
        .connect_timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(|err| format!("cannot connect: {err}"))
}

/// Puts `token` on `request` as its bearer credential.
pub fn with_bearer<T>(request: &mut tonic::Request<T>, token: &str) -> Result<(), String> {
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token is not a valid header value".to_owned())?;
    request.metadata_mut().insert("authorization", value);
    Ok(())
}

/// The same credential as an h2load `-H` header.
pub fn bearer_header(token: &str) -> String {
    format!("authorization: Bearer {token}")
}

/// `rpc ended with grpc-status N (Code): message`.
pub fn grpc_failure(rpc: &str, status: &tonic::Status) -> String {
    format!(
        "{rpc} ended with grpc-status {} ({:?}): {}",
        status.code() as i32,
        status.code(),
        status.message()
    )
}
