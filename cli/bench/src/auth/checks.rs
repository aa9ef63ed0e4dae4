//! The auth suite's checks: the real calls around every run (Register, Login, GetMe, each
//! answering OK with the bench user), and the server's handled counters, which must show every
//! call h2load counted as OK.

use std::net::SocketAddr;

use ironmesh_proto::ironmesh::auth::v1::auth_service_client::AuthServiceClient;
use ironmesh_proto::ironmesh::auth::v1::{GetMeRequest, RegisterRequest};

use super::{EMAIL, PASSWORD, login_request};
use crate::calls::{connect, grpc_failure, with_bearer};
use crate::scrape::{Codes, Scrape, describe};

/// Registers the bench user and logs in; returns the access token.
pub(super) async fn sign_up(addr: SocketAddr) -> Result<String, String> {
    AuthServiceClient::new(connect(addr).await?)
        .register(RegisterRequest {
            email: EMAIL.to_owned(),
            password: PASSWORD.to_owned(),
            display_name: "Bench User".to_owned(),
        })
        .await
        .map_err(|status| grpc_failure("Register", &status))?;
    log_in(addr).await
}

/// One Login that must answer OK with tokens; returns the access token.
pub(super) async fn log_in(addr: SocketAddr) -> Result<String, String> {
    let response = AuthServiceClient::new(connect(addr).await?)
        .login(login_request())
        .await
        .map_err(|status| grpc_failure("Login", &status))?
        .into_inner();
    let token = response
        .tokens
        .map(|tokens| tokens.access_token)
        .unwrap_or_default();
    if token.is_empty() {
        return Err("Login answered OK without an access token".to_owned());
    }
    Ok(token)
}

/// One GetMe with `token` that must answer OK with the bench user.
pub(super) async fn check_get_me(addr: SocketAddr, token: &str) -> Result<(), String> {
    let mut request = tonic::Request::new(GetMeRequest {});
    with_bearer(&mut request, token)?;
    let user = AuthServiceClient::new(connect(addr).await?)
        .get_me(request)
        .await
        .map_err(|status| grpc_failure("GetMe", &status))?
        .into_inner()
        .user;
    match user {
        Some(user) if user.email == EMAIL => Ok(()),
        other => Err(format!("GetMe answered OK but not with {EMAIL}: {other:?}")),
    }
}

/// What the server counted for `method` between two scrapes: no code but OK and CANCELLED, and
/// at least `succeeded` OK. Returns the number CANCELLED.
pub(super) fn check_calls(
    before: &Scrape,
    after: &Scrape,
    method: &str,
    succeeded: u64,
) -> Result<u64, String> {
    let codes = after.handled_since(before, method);
    let errors: Codes = codes
        .iter()
        .filter(|(code, _)| *code != "OK" && *code != "CANCELLED")
        .map(|(code, n)| (code.clone(), *n))
        .collect();
    if !errors.is_empty() {
        return Err(format!(
            "the server answered {method} with errors: {}",
            describe(&errors)
        ));
    }
    let count = |code: &str| codes.get(code).copied().unwrap_or(0);
    let ok = count("OK");
    if ok < succeeded {
        return Err(format!(
            "h2load counted {succeeded} successful {method} calls but the server only {ok} OK"
        ));
    }
    Ok(count("CANCELLED"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = r#"# HELP ironmesh_grpc_server_handled_total gRPC calls completed on the server, by status code.
# TYPE ironmesh_grpc_server_handled_total counter
ironmesh_grpc_server_handled_total{grpc_code="OK",grpc_method="Login",grpc_service="ironmesh.auth.v1.AuthService",service="auth"} 12
ironmesh_grpc_server_handled_total{grpc_code="CANCELLED",grpc_method="Login",grpc_service="ironmesh.auth.v1.AuthService",service="auth"} 1
ironmesh_grpc_server_handled_total{grpc_code="OK",grpc_method="GetMe",grpc_service="ironmesh.auth.v1.AuthService",service="auth"} 5
ironmesh_grpc_server_started_total{grpc_method="Login",grpc_service="ironmesh.auth.v1.AuthService",service="auth"} 14
"#;

    #[test]
    fn handled_counters_and_their_check() {
        let after = Scrape::parse(METRICS);
        let ok = |method: &str| after.handled.get(&(method.into(), "OK".into())).copied();
        assert_eq!(ok("Login"), Some(12));
        assert_eq!(ok("GetMe"), Some(5));
        assert_eq!(after.handled.len(), 3);
        let before = Scrape::default();
        assert_eq!(check_calls(&before, &after, "Login", 12), Ok(1));
        assert!(check_calls(&before, &after, "Login", 13).is_err());
        let failing = format!(
            "{METRICS}ironmesh_grpc_server_handled_total{{grpc_code=\"INTERNAL\",grpc_method=\"Login\",grpc_service=\"x\",service=\"auth\"}} 1\n"
        );
        assert!(check_calls(&before, &Scrape::parse(&failing), "Login", 1).is_err());
        // Errors from before the window do not count.
        assert_eq!(
            check_calls(
                &Scrape::parse(&failing),
                &Scrape::parse(&failing),
                "Login",
                0
            ),
            Ok(0)
        );
    }
}
