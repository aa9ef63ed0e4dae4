//! The tonic adapter for `AuthService`: each handler reads the caller, converts proto to domain
//! (`convert`), calls the service, and converts back; every error goes through
//! [`status::status`], the one mapping to gRPC status.
//!
//! - `admin`: the administrators' RPCs (users, roles, locks), which the trait impl hands over.
//! - `caller`: principal (and, for one-service internal methods, which service) and client
//!   address of a request.
//! - `convert`: domain ⇄ proto, plain functions.
//! - `status`: `AuthError` → `Status` (internal faults logged, never shown).

mod admin;
mod caller;
pub(crate) mod convert;
mod status;

use ironmesh_proto::ironmesh::auth::v1::{self as pb, auth_service_server::AuthService};
use tonic::{Request, Response, Status};

use crate::service::Accounts;
use caller::{principal, service, user_session};
use convert::{api_key, contact, session, time, timestamp, tokens, user};
use ironmesh_runtime::ServiceKind;
use status::answer;

/// The `AuthService` implementation.
pub struct AuthApi {
    accounts: Accounts,
    /// Peers whose `x-forwarded-for` names the client (the gateway).
    trusted_forwarders: Vec<std::net::IpAddr>,
}

impl AuthApi {
    pub fn new(accounts: Accounts, trusted_forwarders: Vec<std::net::IpAddr>) -> Self {
        Self {
            accounts,
            trusted_forwarders,
        }
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let row = self
                .accounts
                .register(&body.email, &body.password, &body.display_name)
                .await?;
            Ok(pb::RegisterResponse {
                user: Some(user(row)),
            })
        })
        .await
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let body = request.get_ref();
        let origin = caller::origin(
            &request,
            &self.trusted_forwarders,
            body.session_label.clone(),
        );
        answer(&request, async {
            let factor = body.second_factor.as_ref().map(convert::second_factor);
            let (row, issued) = self
                .accounts
                .login(&body.email, &body.password, factor, &origin)
                .await?;
            Ok(pb::LoginResponse {
                tokens: Some(tokens(issued)),
                user: Some(user(row)),
            })
        })
        .await
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let issued = self.accounts.refresh(&body.refresh_token).await?;
            Ok(pb::RefreshResponse {
                tokens: Some(tokens(issued)),
            })
        })
        .await
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        answer(&request, async {
            let caller = principal(&request)?;
            let revoked = self
                .accounts
                .logout(
                    &caller.subject,
                    caller.session.as_deref(),
                    request.get_ref().all_sessions,
                )
                .await?;
            Ok(pb::LogoutResponse {
                revoked_sessions: i32::try_from(revoked).unwrap_or(i32::MAX),
            })
        })
        .await
    }

    async fn get_me(
        &self,
        request: Request<pb::GetMeRequest>,
    ) -> Result<Response<pb::GetMeResponse>, Status> {
        answer(&request, async {
            let caller = principal(&request)?;
            let row = self.accounts.me(&caller.subject).await?;
            Ok(pb::GetMeResponse {
                user: Some(user(row)),
            })
        })
        .await
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let caller = user_session(&request)?;
            let revoked = self
                .accounts
                .change_password(
                    &caller.subject,
                    caller.session.as_deref(),
                    &body.current_password,
                    &body.new_password,
                )
                .await?;
            Ok(pb::ChangePasswordResponse {
                revoked_sessions: i32::try_from(revoked).unwrap_or(i32::MAX),
            })
        })
        .await
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        answer(&request, async {
            let caller = principal(&request)?;
            // A user has few sessions: one page holds them all.
            let sessions = self.accounts.sessions(&caller.subject).await?;
            Ok(pb::ListSessionsResponse {
                sessions: sessions
                    .into_iter()
                    .map(|row| session(row, caller.session.as_deref()))
                    .collect(),
                next_page_token: String::new(),
            })
        })
        .await
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        answer(&request, async {
            let caller = principal(&request)?;
            self.accounts
                .revoke_session(&caller.subject, &request.get_ref().session_id)
                .await?;
            Ok(pb::RevokeSessionResponse {})
        })
        .await
    }

    async fn get_jwks(
        &self,
        request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        answer(&request, async {
            let keys = self.accounts.jwks().await?;
            Ok(pb::GetJwksResponse {
                keys: keys.into_iter().map(convert::jwk).collect(),
            })
        })
        .await
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let caller = user_session(&request)?;
            let expires_at = body
                .expires_at
                .as_ref()
                .map(|t| time("expires_at", t))
                .transpose()?;
            let (row, secret) = self
                .accounts
                .create_api_key(&caller.subject, &body.name, &body.scopes, expires_at)
                .await?;
            Ok(pb::CreateApiKeyResponse {
                api_key: Some(api_key(row)),
                secret,
            })
        })
        .await
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        answer(&request, async {
            let caller = principal(&request)?;
            // A user holds few keys: one page holds them all.
            let keys = self
                .accounts
                .api_keys(&caller.subject, request.get_ref().include_inactive)
                .await?;
            Ok(pb::ListApiKeysResponse {
                api_keys: keys.into_iter().map(api_key).collect(),
                next_page_token: String::new(),
            })
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        answer(&request, async {
            let caller = principal(&request)?;
            let row = self
                .accounts
                .revoke_api_key(&caller.subject, &request.get_ref().api_key_id)
                .await?;
            Ok(pb::RevokeApiKeyResponse {
                api_key: Some(api_key(row)),
            })
        })
        .await
    }

    async fn enroll_totp(
        &self,
        request: Request<pb::EnrollTotpRequest>,
    ) -> Result<Response<pb::EnrollTotpResponse>, Status> {
        answer(&request, async {
            let caller = user_session(&request)?;
            let (otpauth_uri, secret, expires_at) =
                self.accounts.enroll_totp(&caller.subject).await?;
            Ok(pb::EnrollTotpResponse {
                otpauth_uri,
                secret,
                expires_at: Some(timestamp(expires_at)),
            })
        })
        .await
    }

    async fn confirm_totp(
        &self,
        request: Request<pb::ConfirmTotpRequest>,
    ) -> Result<Response<pb::ConfirmTotpResponse>, Status> {
        answer(&request, async {
            let caller = user_session(&request)?;
            let recovery_codes = self
                .accounts
                .confirm_totp(&caller.subject, &request.get_ref().totp_code)
                .await?;
            Ok(pb::ConfirmTotpResponse { recovery_codes })
        })
        .await
    }

    async fn export_my_data(
        &self,
        request: Request<pb::ExportMyDataRequest>,
    ) -> Result<Response<pb::ExportMyDataResponse>, Status> {
        answer(&request, async {
            let caller = user_session(&request)?;
            let data = self.accounts.export(&caller.subject).await?;
            Ok(pb::ExportMyDataResponse {
                document: Some(ironmesh_proto::google::api::HttpBody {
                    content_type: "application/json".to_owned(),
                    data,
                    extensions: Vec::new(),
                }),
            })
        })
        .await
    }

    async fn delete_my_account(
        &self,
        request: Request<pb::DeleteMyAccountRequest>,
    ) -> Result<Response<pb::DeleteMyAccountResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let caller = user_session(&request)?;
            self.accounts
                .delete_account(&caller.subject, &body.password, &body.totp_code)
                .await?;
            Ok(pb::DeleteMyAccountResponse {})
        })
        .await
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        answer(&request, admin::list_users(&self.accounts, &request)).await
    }

    async fn set_roles(
        &self,
        request: Request<pb::SetRolesRequest>,
    ) -> Result<Response<pb::SetRolesResponse>, Status> {
        answer(&request, admin::set_roles(&self.accounts, &request)).await
    }

    async fn lock_user(
        &self,
        request: Request<pb::LockUserRequest>,
    ) -> Result<Response<pb::LockUserResponse>, Status> {
        answer(&request, admin::lock_user(&self.accounts, &request)).await
    }

    async fn unlock_user(
        &self,
        request: Request<pb::UnlockUserRequest>,
    ) -> Result<Response<pb::UnlockUserResponse>, Status> {
        answer(&request, admin::unlock_user(&self.accounts, &request)).await
    }

    async fn authenticate_api_key(
        &self,
        request: Request<pb::AuthenticateApiKeyRequest>,
    ) -> Result<Response<pb::AuthenticateApiKeyResponse>, Status> {
        answer(&request, async {
            let key = self
                .accounts
                .authenticate_api_key(&request.get_ref().api_key)
                .await?;
            Ok(pb::AuthenticateApiKeyResponse {
                principal_id: key.user_id,
                // Keys act through their scopes, never with the owner's roles.
                roles: Vec::new(),
                scopes: key.scopes,
                api_key_id: key.id,
                expires_at: key.expires_at.map(timestamp),
            })
        })
        .await
    }

    async fn get_user_contact(
        &self,
        request: Request<pb::GetUserContactRequest>,
    ) -> Result<Response<pb::GetUserContactResponse>, Status> {
        answer(&request, async {
            // Internal lets any service in; addresses are for notification alone.
            service(&request, ServiceKind::Notification)?;
            let found = self.accounts.contact(&request.get_ref().user_id).await?;
            Ok(contact(found, chrono::Utc::now()))
        })
        .await
    }
}
