//! `ironmesh-bench-alloc`: heap allocations per call — bare tonic, the production server stack,
//! and the stack with token verification — for the stack suite of `ironmesh-bench`, which runs
//! it and reports its figures beside the speed ones.
//!
//! One current-thread runtime serves and calls (one Health/Check after another over one HTTP/2
//! connection), under the system allocator instrumented by `stats_alloc`: an allocation count
//! does not depend on the allocator, and the speed figures keep coming from `ironmesh-bench`
//! under mimalloc. The counts are of the whole process — the client's part of a call is the same
//! for the three, so `stack − bare` is what the stack adds. Prints one JSON object.
#![forbid(unsafe_code)]

#[path = "../health.rs"]
mod health;
#[path = "../token.rs"]
#[allow(dead_code)]
mod token;

use std::alloc::System;
use std::net::SocketAddr;
use std::process::ExitCode;

use ironmesh_interceptors::policy::Access;
use ironmesh_runtime::Config;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::net::TcpListener;

use self::health::serving_health;
use tonic::transport::Endpoint;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const RPC_PATH: &str = "/grpc.health.v1.Health/Check";
const WARM_UP: u64 = 2_000;
const CALLS: u64 = 20_000;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ironmesh-bench-alloc: no runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(measure()) {
        Ok(figures) => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("ironmesh-bench-alloc: {err}");
            ExitCode::from(1)
        }
    }
}

async fn measure() -> Result<serde_json::Value, String> {
    let config = Config::default();
    let key = token::BenchKey::generate("alloc-1")?;
    let jwk = token::parse_jwk(&key.jwk_arg()).ok_or("the JWK does not read back")?;
    let access = key.mint(&config.tokens)?;

    let bare = tonic::transport::Server::builder().add_service(serving_health().await);
    let bare = serve(|incoming| bare.serve_with_incoming(incoming)).await?;
    let mut stack = ironmesh_runtime::server::grpc_server(
        &config,
        "bench",
        ironmesh_runtime::policy().clone(),
        None,
    )
    .map_err(|e| e.to_string())?;
    let stack = stack.add_service(serving_health().await);
    let stack = serve(|incoming| stack.serve_with_incoming(incoming)).await?;
    let policy = ironmesh_runtime::policy().clone();
    let idempotent = policy.is_idempotent(RPC_PATH);
    let policy = policy.with(RPC_PATH, idempotent, Access::Authenticated);
    let authenticator = token::authenticator(&config.tokens, jwk);
    let mut auth =
        ironmesh_runtime::server::grpc_server(&config, "bench", policy, Some(authenticator))
            .map_err(|e| e.to_string())?;
    let auth = auth.add_service(serving_health().await);
    let auth = serve(|incoming| auth.serve_with_incoming(incoming)).await?;

    let bare = per_call(bare, None).await?;
    let stack = per_call(stack, None).await?;
    let stack_auth = per_call(auth, Some(&access)).await?;
    Ok(serde_json::json!({
        "calls": CALLS,
        "bare": bare,
        "stack": stack,
        "stack_auth": stack_auth,
    }))
}

/// Allocations (and reallocations) per Health/Check to `addr`, client and server together.
async fn per_call(addr: SocketAddr, token: Option<&str>) -> Result<f64, String> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let mut client = HealthClient::new(channel);
    let bearer: Option<tonic::metadata::MetadataValue<_>> = match token {
        Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| "bad token")?),
        None => None,
    };
    let call = async |client: &mut HealthClient<_>| {
        let mut request = tonic::Request::new(HealthCheckRequest::default());
        if let Some(bearer) = &bearer {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        client
            .check(request)
            .await
            .map(drop)
            .map_err(|s| format!("Health/Check on {addr}: {s:?}"))
    };
    for _ in 0..WARM_UP {
        call(&mut client).await?;
    }
    let before = GLOBAL.stats();
    for _ in 0..CALLS {
        call(&mut client).await?;
    }
    let after = GLOBAL.stats();
    let counted =
        (after.allocations + after.reallocations) - (before.allocations + before.reallocations);
    Ok(counted as f64 / CALLS as f64)
}

/// Serves what `start` makes of a loopback listener, in the background; its address.
async fn serve<F, Fut>(start: F) -> Result<SocketAddr, String>
where
    F: FnOnce(TcpIncoming) -> Fut,
    Fut: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let serving = start(incoming);
    tokio::spawn(async move {
        if let Err(err) = serving.await {
            eprintln!("ironmesh-bench-alloc: a server failed: {err}");
        }
    });
    Ok(addr)
}
