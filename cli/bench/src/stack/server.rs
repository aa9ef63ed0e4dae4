//! The stack suite's server child (`ironmesh-bench --serve stack --serve-jwk KID:X`): Health/Check
//! served bare, through the production stack, and through it with token verification, on one
//! single-worker runtime.

use std::net::SocketAddr;
use std::process::ExitCode;

use ironmesh_interceptors::policy::Access;
use ironmesh_runtime::Config;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use super::RPC_PATH;
use crate::health::serving_health;
use crate::serve::{announce_ready, stdin_closed};
use crate::token;

/// `ironmesh-bench --serve stack --serve-jwk KID:X`: the three servers on one single-worker
/// runtime, until stdin closes.
pub fn serve_child(jwk: Option<&str>) -> ExitCode {
    let Some(jwk) = jwk.and_then(token::parse_jwk) else {
        eprintln!("ironmesh-bench --serve stack: needs --serve-jwk KID:X");
        return ExitCode::from(2);
    };
    let config = Config::default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ironmesh-bench --serve: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        // The production subscriber: the stack's spans are as live here as in a service.
        let _telemetry = ironmesh_runtime::telemetry::init(&config);
        let addrs = match start_servers(&config, jwk).await {
            Ok(addrs) => addrs,
            Err(err) => {
                eprintln!("ironmesh-bench --serve: {err}");
                return ExitCode::from(1);
            }
        };
        if !announce_ready(&format!("{} {} {}", addrs[0], addrs[1], addrs[2])) {
            return ExitCode::from(1);
        }
        stdin_closed().await;
        ExitCode::SUCCESS
    })
}

/// Binds three loopback listeners and serves Health/Check on them: bare, through the stack,
/// through the stack with authentication.
async fn start_servers(
    config: &Config,
    jwk: ironmesh_interceptors::auth::jwt::PublicJwk,
) -> Result<[SocketAddr; 3], String> {
    let (bare_listener, bare_addr) = bind_loopback().await?;
    let (stack_listener, stack_addr) = bind_loopback().await?;
    let (auth_listener, auth_addr) = bind_loopback().await?;

    let bare = tonic::transport::Server::builder()
        .add_service(serving_health().await)
        .serve_with_incoming(incoming(bare_listener));
    let stack = ironmesh_runtime::server::grpc_server(
        config,
        "bench",
        ironmesh_runtime::policy().clone(),
        None,
    )
    .map_err(|err| format!("cannot build the server stack: {err}"))?
    .add_service(serving_health().await)
    .serve_with_incoming(incoming(stack_listener));

    // Health/Check is public in production; here it stands for any authenticated cheap RPC.
    let policy = ironmesh_runtime::policy().clone();
    let idempotent = policy.is_idempotent(RPC_PATH);
    let policy = policy.with(RPC_PATH, idempotent, Access::Authenticated);
    let authenticator = token::authenticator(&config.tokens, jwk);
    let stack_auth =
        ironmesh_runtime::server::grpc_server(config, "bench", policy, Some(authenticator))
            .map_err(|err| format!("cannot build the server stack with authentication: {err}"))?
            .add_service(serving_health().await)
            .serve_with_incoming(incoming(auth_listener));

    tokio::spawn(async move {
        if let Err(err) = bare.await {
            eprintln!("ironmesh-bench --serve: bare server failed: {err}");
        }
    });
    tokio::spawn(async move {
        if let Err(err) = stack.await {
            eprintln!("ironmesh-bench --serve: stack server failed: {err}");
        }
    });
    tokio::spawn(async move {
        if let Err(err) = stack_auth.await {
            eprintln!("ironmesh-bench --serve: stack+auth server failed: {err}");
        }
    });
    Ok([bare_addr, stack_addr, auth_addr])
}

async fn bind_loopback() -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|err| format!("cannot listen on 127.0.0.1: {err}"))?;
    let addr = listener
        .local_addr()
        .map_err(|err| format!("cannot read the listening address: {err}"))?;
    Ok((listener, addr))
}

/// The listener as production wraps it (`serve()` sets TCP_NODELAY too).
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}
