//! The check calls around every run: the runtime they run on, a channel with their timeouts, a
//! bearer credential, and how a refusal reads; and an operator's token, made out of band.

use std::net::SocketAddr;
use std::time::Duration;

use ironmesh_proto::ironmesh::auth::v1::{LoginRequest, auth_service_client::AuthServiceClient};
use ironmesh_runtime::Config;
use tonic::transport::{Channel, Endpoint};

use crate::error::BenchError;
use crate::stores::failed;

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

/// How long one load call may take (a backlog can queue for a while).
pub const LOAD_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A channel to `addr` for the load of a suite: its calls' timeout, no Nagle delay.
pub async fn load_channel(addr: SocketAddr) -> Result<Channel, BenchError> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(failed("bad address"))?
        .timeout(LOAD_CALL_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(failed("cannot connect"))
}

/// `message` with `token` as its bearer credential.
pub fn bearer_request<T>(message: T, token: &str) -> Result<tonic::Request<T>, BenchError> {
    let mut request = tonic::Request::new(message);
    with_bearer(&mut request, token).map_err(BenchError::Failed)?;
    Ok(request)
}

/// How a refused call of `rpc` reads.
pub fn rpc_failed(rpc: &'static str) -> impl Fn(tonic::Status) -> BenchError {
    move |status| BenchError::Failed(grpc_failure(rpc, &status))
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

/// Makes the operator `email` out of band (as `ironmesh admin create-user` does) and logs it
/// in over `auth`: its access token.
pub async fn operator_token(
    config: &Config,
    auth: Channel,
    email: &str,
) -> Result<String, BenchError> {
    ironmesh_auth::create_user(
        config,
        email,
        PASSWORD,
        "Bench operator",
        &[ironmesh_auth::domain::Role::Operator],
    )
    .await
    .map_err(failed("cannot create the operator"))?;
    log_in(auth, email).await
}

/// The password of every account the bench makes.
pub const PASSWORD: &str = "correct horse battery staple";

/// Logs `email` in (with [`PASSWORD`]) over `auth`: its access token.
pub async fn log_in(auth: Channel, email: &str) -> Result<String, BenchError> {
    AuthServiceClient::new(auth)
        .login(LoginRequest {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(rpc_failed("Login"))?
        .into_inner()
        .tokens
        .map(|t| t.access_token)
        .ok_or_else(|| BenchError::Failed("Login returned no tokens".into()))
}
