//! The administrators' RPCs (ListUsers, SetRoles, LockUser, UnlockUser): request → the
//! account operations → response; `mod.rs`'s trait impl hands each here. Errors are the domain's,
//! mapped to status in one place (`status`).

use ironmesh_proto::ironmesh::auth::v1 as pb;
use tonic::Request;

use super::caller::principal;
use super::convert::{role_filter, time, user};
use crate::domain::AuthError;
use crate::service::Accounts;

pub(super) async fn list_users(
    accounts: &Accounts,
    request: &Request<pb::ListUsersRequest>,
) -> Result<pb::ListUsersResponse, AuthError> {
    let body = request.get_ref();
    let role = role_filter(body.role)?;
    let (rows, next_page_token) = accounts
        .users(
            body.page_size,
            &body.page_token,
            &body.email_contains,
            role,
            body.locked_only,
        )
        .await?;
    Ok(pb::ListUsersResponse {
        users: rows.into_iter().map(user).collect(),
        next_page_token,
    })
}

pub(super) async fn set_roles(
    accounts: &Accounts,
    request: &Request<pb::SetRolesRequest>,
) -> Result<pb::SetRolesResponse, AuthError> {
    let body = request.get_ref();
    let caller = principal(request)?;
    let mut roles = Vec::with_capacity(body.roles.len());
    for value in &body.roles {
        roles.push(
            role_filter(*value)?
                .ok_or_else(|| AuthError::invalid("roles", "ROLE_UNSPECIFIED is not a role"))?,
        );
    }
    let row = accounts
        .set_roles(&caller.subject, &body.user_id, &roles)
        .await?;
    Ok(pb::SetRolesResponse {
        user: Some(user(row)),
    })
}

pub(super) async fn lock_user(
    accounts: &Accounts,
    request: &Request<pb::LockUserRequest>,
) -> Result<pb::LockUserResponse, AuthError> {
    let body = request.get_ref();
    let until = body
        .locked_until
        .as_ref()
        .map(|t| time("locked_until", t))
        .transpose()?;
    let caller = principal(request)?;
    let row = accounts
        .set_lock(&caller.subject, &body.user_id, Some((&body.reason, until)))
        .await?;
    Ok(pb::LockUserResponse {
        user: Some(user(row)),
    })
}

pub(super) async fn unlock_user(
    accounts: &Accounts,
    request: &Request<pb::UnlockUserRequest>,
) -> Result<pb::UnlockUserResponse, AuthError> {
    let body = request.get_ref();
    let caller = principal(request)?;
    let row = accounts
        .set_lock(&caller.subject, &body.user_id, None)
        .await?;
    Ok(pb::UnlockUserResponse {
        user: Some(user(row)),
    })
}
