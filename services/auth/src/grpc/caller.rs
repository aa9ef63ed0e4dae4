//! Who is calling and from where: the principal the authentication layer attached, the
//! client's address.

use ironmesh_interceptors::auth::service::SERVICE_SUBJECT_PREFIX;
use ironmesh_interceptors::auth::{Principal, PrincipalKind};
use ironmesh_runtime::ServiceKind;
use tonic::Request;

use crate::domain::AuthError;
use crate::service::Origin;

/// The caller the authentication layer attached (a user session or an API key).
pub fn principal<R>(request: &Request<R>) -> Result<Principal, AuthError> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or(AuthError::Unauthenticated)
}

/// The caller, who must have logged in (an API key cannot manage credentials).
pub fn user_session<R>(request: &Request<R>) -> Result<Principal, AuthError> {
    let caller = principal(request)?;
    if caller.session.is_none() {
        return Err(AuthError::NeedsUserSession);
    }
    Ok(caller)
}

/// The caller, who must be `service`'s identity (`service:<name>`, a service principal): for
/// internal methods meant for one service only. Any other service is refused like users and
/// API keys (which the `internal` access level already turns away).
pub fn service<R>(request: &Request<R>, service: ServiceKind) -> Result<Principal, AuthError> {
    let caller = principal(request)?;
    let name = caller.subject.strip_prefix(SERVICE_SUBJECT_PREFIX);
    if caller.kind != PrincipalKind::Service || name != Some(service.name()) {
        return Err(AuthError::WrongService);
    }
    Ok(caller)
}

/// Where the call comes from: the client's address as the gateway relays it (only from a
/// trusted forwarder, so nobody else can pick the address their failures count against).
pub fn origin<R>(
    request: &Request<R>,
    trusted_forwarders: &[std::net::IpAddr],
    label: String,
) -> Origin {
    let metadata = request.metadata();
    let text = |key: &str| {
        metadata
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect::<String>())
    };
    let client_ip = request.remote_addr().map(|addr| {
        ironmesh_interceptors::forwarded::client_address(
            addr.ip(),
            metadata.as_ref(),
            trusted_forwarders,
        )
        .to_string()
    });
    Origin {
        label: label.chars().take(100).collect(),
        user_agent: text("user-agent"),
        client_ip,
    }
}
