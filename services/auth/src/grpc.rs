//! The tonic adapter for `AuthService`: proto ⇄ domain, and domain errors → gRPC status in one
//! place. Until the auth behaviour is built, every RPC answers `UNIMPLEMENTED` and says what is
//! missing — never a fake success.

use ironmesh_proto::ironmesh::auth::v1::{self as pb, auth_service_server::AuthService};
use ironmesh_runtime::status::not_yet;
use tonic::{Request, Response, Status};

/// What is not built yet, named in every `UNIMPLEMENTED` answer.
const FEATURE: &str = "accounts, tokens, sessions and API keys (auth issue #4)";

/// The `AuthService` implementation.
pub struct AuthApi;

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn register(
        &self,
        _request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn login(
        &self,
        _request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn refresh(
        &self,
        _request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn logout(
        &self,
        _request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_me(
        &self,
        _request: Request<pb::GetMeRequest>,
    ) -> Result<Response<pb::GetMeResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn change_password(
        &self,
        _request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_sessions(
        &self,
        _request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn revoke_session(
        &self,
        _request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn create_api_key(
        &self,
        _request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_api_keys(
        &self,
        _request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn revoke_api_key(
        &self,
        _request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn enroll_totp(
        &self,
        _request: Request<pb::EnrollTotpRequest>,
    ) -> Result<Response<pb::EnrollTotpResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn confirm_totp(
        &self,
        _request: Request<pb::ConfirmTotpRequest>,
    ) -> Result<Response<pb::ConfirmTotpResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn export_my_data(
        &self,
        _request: Request<pb::ExportMyDataRequest>,
    ) -> Result<Response<pb::ExportMyDataResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn delete_my_account(
        &self,
        _request: Request<pb::DeleteMyAccountRequest>,
    ) -> Result<Response<pb::DeleteMyAccountResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn list_users(
        &self,
        _request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn set_roles(
        &self,
        _request: Request<pb::SetRolesRequest>,
    ) -> Result<Response<pb::SetRolesResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn lock_user(
        &self,
        _request: Request<pb::LockUserRequest>,
    ) -> Result<Response<pb::LockUserResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn unlock_user(
        &self,
        _request: Request<pb::UnlockUserRequest>,
    ) -> Result<Response<pb::UnlockUserResponse>, Status> {
        Err(not_yet(FEATURE))
    }

    async fn authenticate_api_key(
        &self,
        _request: Request<pb::AuthenticateApiKeyRequest>,
    ) -> Result<Response<pb::AuthenticateApiKeyResponse>, Status> {
        Err(not_yet(FEATURE))
    }
}
