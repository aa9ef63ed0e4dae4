//! Who may call each auth RPC. Methods not listed need an authenticated caller.

use ironmesh_interceptors::policy::Access;

/// The access table of `AuthService`.
pub fn table() -> Vec<(&'static str, Access)> {
    let admin = || Access::AnyRole(vec!["admin".to_owned()]);
    vec![
        ("/ironmesh.auth.v1.AuthService/Register", Access::Public),
        ("/ironmesh.auth.v1.AuthService/Login", Access::Public),
        ("/ironmesh.auth.v1.AuthService/Refresh", Access::Public),
        ("/ironmesh.auth.v1.AuthService/GetJwks", Access::Public),
        // Called by other services' authentication layers with the key being checked.
        (
            "/ironmesh.auth.v1.AuthService/AuthenticateApiKey",
            Access::Public,
        ),
        ("/ironmesh.auth.v1.AuthService/ListUsers", admin()),
        ("/ironmesh.auth.v1.AuthService/SetRoles", admin()),
        ("/ironmesh.auth.v1.AuthService/LockUser", admin()),
        ("/ironmesh.auth.v1.AuthService/UnlockUser", admin()),
    ]
}
