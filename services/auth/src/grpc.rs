//! The tonic adapter for `AuthService`: proto ⇄ domain, and every domain error → gRPC status in
//! one place ([`status`]).

use chrono::{DateTime, Utc};
use ironmesh_interceptors::auth::Principal;
use ironmesh_interceptors::context::RequestId;
use ironmesh_proto::ironmesh::auth::v1::{self as pb, auth_service_server::AuthService};
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::{ApiKey, AuthError, Role, Session, User};
use crate::service::{Accounts, Origin, SecondFactor, Tokens};

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

    /// Where the call comes from: the client's address as the gateway relays it (only from a
    /// trusted forwarder, so nobody else can pick the address their failures count against).
    fn origin<R>(&self, request: &Request<R>, label: String) -> Origin {
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
                &self.trusted_forwarders,
            )
            .to_string()
        });
        Origin {
            label: label.chars().take(100).collect(),
            user_agent: text("user-agent"),
            client_ip,
        }
    }
}

/// The one mapping from [`AuthError`] to gRPC status. Internal errors are logged with the
/// request id and never shown to the caller.
fn status(err: AuthError, request_id: Option<&RequestId>) -> Status {
    match err {
        AuthError::Invalid(violations) => {
            let mut details = ErrorDetails::new();
            for v in &violations {
                details.add_bad_request_violation(v.field, &v.description);
            }
            Status::with_error_details(tonic::Code::InvalidArgument, "invalid request", details)
        }
        AuthError::InvalidCredentials => Status::unauthenticated("invalid email or password"),
        AuthError::InvalidApiKey => Status::unauthenticated("API key is not valid"),
        AuthError::EmailTaken => {
            Status::already_exists("an account with this email already exists")
        }
        AuthError::NotFound => Status::not_found("not found"),
        AuthError::Locked => Status::permission_denied("the account is locked"),
        AuthError::InvalidRefreshToken => Status::unauthenticated("refresh token is not valid"),
        AuthError::RefreshRace => {
            Status::aborted("refresh token was just used by another request; use the newest tokens")
        }
        AuthError::Unauthenticated => Status::unauthenticated("missing or invalid credentials"),
        AuthError::SecondFactorRequired => {
            let mut details = ErrorDetails::new();
            details.set_error_info("SECOND_FACTOR_REQUIRED", "auth.ironmesh", []);
            Status::with_error_details(
                tonic::Code::Unauthenticated,
                "a TOTP code or recovery code is required",
                details,
            )
        }
        AuthError::TotpAlreadyEnabled => Status::failed_precondition("TOTP is already enabled"),
        AuthError::TotpNotPending => {
            Status::failed_precondition("no TOTP enrollment is waiting; call EnrollTotp first")
        }
        AuthError::NeedsUserSession => {
            Status::permission_denied("this needs a logged-in user, not an API key")
        }
        AuthError::TooManyAttempts(wait) => {
            let details = ErrorDetails::with_retry_info(Some(wait));
            Status::with_error_details(
                tonic::Code::ResourceExhausted,
                format!(
                    "too many failed attempts; try again in {} s",
                    wait.as_secs().max(1)
                ),
                details,
            )
        }
        AuthError::Internal(fault) => {
            // The caller learns only that it was internal and which request to quote; the
            // fault and its whole source chain go to the log under the same id.
            let id = request_id.map(|id| id.to_string()).unwrap_or_default();
            tracing::error!(request_id = %id, error = %crate::error_chain(&fault), "internal error");
            Status::internal(format!("internal error (request id {id})"))
        }
    }
}

/// Runs `f` and maps its error with the request's id.
async fn answer<T, R, F>(request: &Request<R>, f: F) -> Result<Response<T>, Status>
where
    F: std::future::Future<Output = Result<T, AuthError>>,
{
    let request_id = request.extensions().get::<RequestId>().cloned();
    f.await
        .map(Response::new)
        .map_err(|err| status(err, request_id.as_ref()))
}

fn principal<R>(request: &Request<R>) -> Result<Principal, AuthError> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or(AuthError::Unauthenticated)
}

/// The caller, who must have logged in (an API key cannot manage credentials).
fn user_session<R>(request: &Request<R>) -> Result<Principal, AuthError> {
    let caller = principal(request)?;
    if caller.session.is_none() {
        return Err(AuthError::NeedsUserSession);
    }
    Ok(caller)
}

fn time(field: &'static str, at: &prost_types::Timestamp) -> Result<DateTime<Utc>, AuthError> {
    DateTime::<Utc>::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(u32::MAX))
        .ok_or_else(|| AuthError::invalid(field, "not a valid time"))
}

fn api_key(row: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        api_key_id: row.id,
        user_id: row.user_id,
        name: row.name,
        prefix: format!("imk_{}", row.prefix),
        scopes: row.scopes,
        created_at: Some(timestamp(row.created_at)),
        expires_at: row.expires_at.map(timestamp),
        last_used_at: row.last_used_at.map(timestamp),
        revoked_at: row.revoked_at.map(timestamp),
    }
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn role(role: Role) -> i32 {
    match role {
        Role::Customer => pb::Role::Customer as i32,
        Role::Operator => pb::Role::Operator as i32,
        Role::Admin => pb::Role::Admin as i32,
    }
}

/// A proto role to a domain role: `None` for ROLE_UNSPECIFIED, an error for unknown values.
fn role_filter(value: i32) -> Result<Option<Role>, AuthError> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Unspecified) => Ok(None),
        Ok(pb::Role::Customer) => Ok(Some(Role::Customer)),
        Ok(pb::Role::Operator) => Ok(Some(Role::Operator)),
        Ok(pb::Role::Admin) => Ok(Some(Role::Admin)),
        Err(_) => Err(AuthError::invalid("role", "unknown role")),
    }
}

fn user(row: User) -> pb::User {
    pb::User {
        user_id: row.id,
        email: row.email,
        display_name: row.display_name,
        roles: row.roles.into_iter().map(role).collect(),
        totp_enabled: row.totp_enabled,
        locked: row.locked,
        locked_reason: row.locked_reason,
        locked_until: row.locked_until.map(timestamp),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        last_login_at: row.last_login_at.map(timestamp),
    }
}

fn tokens(tokens: Tokens) -> pb::TokenPair {
    let now = Utc::now();
    pb::TokenPair {
        access_token: tokens.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: (tokens.access_expires_at - now).num_seconds().max(0),
        access_token_expires_at: Some(timestamp(tokens.access_expires_at)),
        refresh_token: tokens.refresh_token,
        refresh_token_expires_at: Some(timestamp(tokens.refresh_expires_at)),
        session_id: tokens.session_id,
    }
}

fn session(row: Session, current: Option<&str>) -> pb::Session {
    pb::Session {
        current: current == Some(row.id.as_str()),
        session_id: row.id,
        label: row.label,
        user_agent: row.user_agent.unwrap_or_default(),
        ip_address: row.client_ip.unwrap_or_default(),
        created_at: Some(timestamp(row.created_at)),
        last_used_at: Some(timestamp(row.last_used_at)),
        expires_at: Some(timestamp(row.expires_at)),
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
        let origin = self.origin(&request, body.session_label.clone());
        answer(&request, async {
            let factor = body.second_factor.as_ref().map(|factor| match factor {
                pb::login_request::SecondFactor::TotpCode(code) => SecondFactor::Totp(code.clone()),
                pb::login_request::SecondFactor::RecoveryCode(code) => {
                    SecondFactor::Recovery(code.clone())
                }
            });
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
                keys: keys
                    .into_iter()
                    .map(|key| pb::Jwk {
                        kty: "OKP".to_owned(),
                        crv: "Ed25519".to_owned(),
                        x: key.x,
                        kid: key.kid,
                        alg: "EdDSA".to_owned(),
                        r#use: "sig".to_owned(),
                    })
                    .collect(),
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
            let request_id = request
                .extensions()
                .get::<RequestId>()
                .map(|id| id.to_string());
            let traceparent = request
                .metadata()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            self.accounts
                .delete_account(
                    &caller.subject,
                    &body.password,
                    &body.totp_code,
                    (request_id.as_deref(), traceparent.as_deref()),
                )
                .await?;
            Ok(pb::DeleteMyAccountResponse {})
        })
        .await
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let role = role_filter(body.role)?;
            let (rows, next_page_token) = self
                .accounts
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
        })
        .await
    }

    async fn set_roles(
        &self,
        request: Request<pb::SetRolesRequest>,
    ) -> Result<Response<pb::SetRolesResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let caller = principal(&request)?;
            let mut roles = Vec::with_capacity(body.roles.len());
            for value in &body.roles {
                roles.push(role_filter(*value)?.ok_or_else(|| {
                    AuthError::invalid("roles", "ROLE_UNSPECIFIED is not a role")
                })?);
            }
            let row = self
                .accounts
                .set_roles(&caller.subject, &body.user_id, &roles)
                .await?;
            Ok(pb::SetRolesResponse {
                user: Some(user(row)),
            })
        })
        .await
    }

    async fn lock_user(
        &self,
        request: Request<pb::LockUserRequest>,
    ) -> Result<Response<pb::LockUserResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let until = body
                .locked_until
                .as_ref()
                .map(|t| time("locked_until", t))
                .transpose()?;
            let row = self
                .accounts
                .set_lock(&body.user_id, Some((&body.reason, until)))
                .await?;
            Ok(pb::LockUserResponse {
                user: Some(user(row)),
            })
        })
        .await
    }

    async fn unlock_user(
        &self,
        request: Request<pb::UnlockUserRequest>,
    ) -> Result<Response<pb::UnlockUserResponse>, Status> {
        let body = request.get_ref();
        answer(&request, async {
            let row = self.accounts.set_lock(&body.user_id, None).await?;
            Ok(pb::UnlockUserResponse {
                user: Some(user(row)),
            })
        })
        .await
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
}
