//! The auth service end to end, on both storage backends: accounts, passwords, tokens verified
//! by other services, refresh rotation and reuse detection, sessions, and who may call what
//! (signing-key rotation: `key_rotation.rs`).

use ironmesh_proto::ironmesh::auth::v1 as pb;
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{Backend, PASSWORD, TestMesh, authed, backends};
use tonic::Code;
use tonic_types::StatusExt;

mod common;
use common::orders_accepts;

async fn mesh(backend: Backend) -> TestMesh {
    TestMesh::start(backend, &[ServiceKind::Auth, ServiceKind::Orders]).await
}

use ironmesh_testkit::violations;

/// Register → login → the access token works at another service (verified locally against
/// auth's JWKS) and GetMe returns the normalised account.
#[tokio::test]
async fn register_login_and_use_the_token_elsewhere() {
    for backend in backends() {
        let mesh = mesh(backend).await;
        let session = mesh.sign_up("  Ada@Example.COM ").await;
        assert_eq!(session.email, "ada@example.com");
        assert!(
            orders_accepts(&mesh, &session.access_token).await,
            "{backend:?}"
        );

        let me = mesh
            .auth()
            .await
            .get_me(authed(pb::GetMeRequest {}, &session.access_token))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(me.email, "ada@example.com");
        assert_eq!(me.roles, vec![pb::Role::Customer as i32]);
        assert!(me.last_login_at.is_some());
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Bad input gets INVALID_ARGUMENT naming every bad field, and nothing is stored; a taken email
/// (in any case) is ALREADY_EXISTS.
#[tokio::test]
async fn registration_validates_every_field_and_rejects_duplicates() {
    for backend in backends() {
        let mesh = mesh(backend).await;
        let mut auth = mesh.auth().await;
        let register = |email: &str, password: &str, name: &str| pb::RegisterRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            display_name: name.to_owned(),
        };
        let status = auth
            .register(register("not-an-email", "short", ""))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let mut fields = violations(&status);
        fields.sort();
        assert_eq!(fields, vec!["display_name", "email", "password"]);

        for (password, why) in [
            ("password1234", "common"),
            (&"x".repeat(129) as &str, "too long, never truncated"),
        ] {
            let status = auth
                .register(register("bob@example.com", password, "Bob"))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{why}");
            assert_eq!(violations(&status), vec!["password"], "{why}");
        }
        let failed_login = auth
            .login(pb::LoginRequest {
                email: "bob@example.com".to_owned(),
                password: "password1234".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            failed_login.code(),
            Code::Unauthenticated,
            "nothing was stored"
        );

        auth.register(register("bob@example.com", PASSWORD, "Bob"))
            .await
            .unwrap();
        let taken = auth
            .register(register("BOB@example.com", PASSWORD, "Bob again"))
            .await
            .unwrap_err();
        assert_eq!(taken.code(), Code::AlreadyExists);
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// An unknown email and a wrong password fail the same way: same code, same message.
#[tokio::test]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let mesh = mesh(Backend::Sqlite).await;
    mesh.sign_up("carol@example.com").await;
    let mut auth = mesh.auth().await;
    let login = |email: &str, password: &str| pb::LoginRequest {
        email: email.to_owned(),
        password: password.to_owned(),
        ..Default::default()
    };
    let wrong = auth
        .login(login("carol@example.com", "not the password at all"))
        .await
        .unwrap_err();
    let unknown = auth
        .login(login("nobody@example.com", "not the password at all"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(
        (wrong.code(), wrong.message()),
        (unknown.code(), unknown.message())
    );
    assert!(mesh.shutdown().await.is_empty());
}

/// Refresh rotates: the new refresh token works, and presenting the old one again (after the
/// race window) revokes the whole session — the newest token stops working too (RFC 9700).
#[tokio::test]
async fn refresh_reuse_revokes_the_whole_session() {
    for backend in backends() {
        // No race window: any second presentation counts as a replay.
        let mesh = TestMesh::start_with(
            backend,
            &[ServiceKind::Auth, ServiceKind::Orders],
            false,
            |config| config.tokens.refresh_race_window_ms = 0,
        )
        .await;
        let session = mesh.customer().await;
        let mut auth = mesh.auth().await;
        let refresh = |token: &str| pb::RefreshRequest {
            refresh_token: token.to_owned(),
        };
        let rotated = auth
            .refresh(refresh(&session.refresh_token))
            .await
            .unwrap()
            .into_inner()
            .tokens
            .unwrap();
        assert_eq!(rotated.session_id, session.session_id, "same session");
        assert!(orders_accepts(&mesh, &rotated.access_token).await);

        // Replay of the rotated token, as a thief would.
        let reused = auth
            .refresh(refresh(&session.refresh_token))
            .await
            .unwrap_err();
        assert_eq!(reused.code(), Code::Unauthenticated, "{backend:?}");
        let after = auth
            .refresh(refresh(&rotated.refresh_token))
            .await
            .unwrap_err();
        assert_eq!(after.code(), Code::Unauthenticated, "the family is revoked");
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Several concurrent refreshes with the same token: exactly one wins; the others are told it
/// was just used (ABORTED) and the winner's new tokens keep working.
#[tokio::test]
async fn concurrent_refresh_has_exactly_one_winner() {
    for backend in backends() {
        let mesh = mesh(backend).await;
        let session = mesh.customer().await;
        let auth = mesh.auth().await;
        let attempts = (0..4).map(|_| {
            let mut auth = auth.clone();
            let token = session.refresh_token.clone();
            tokio::spawn(async move {
                auth.refresh(pb::RefreshRequest {
                    refresh_token: token,
                })
                .await
            })
        });
        let results: Vec<_> = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .map(|joined| joined.unwrap())
            .collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{backend:?}: {results:?}");
        for loser in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(loser.code(), Code::Aborted, "{backend:?}: {loser:?}");
        }
        let tokens = winners[0].get_ref().tokens.clone().unwrap();
        assert!(orders_accepts(&mesh, &tokens.access_token).await);
        mesh.auth()
            .await
            .refresh(pb::RefreshRequest {
                refresh_token: tokens.refresh_token,
            })
            .await
            .expect("the winner's refresh token still works");
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Sessions: each login is one; a user revokes their own, another user's reads as not found;
/// logout ends the current one; changing the password ends every other one.
#[tokio::test]
async fn sessions_are_listed_revoked_and_ended() {
    for backend in backends() {
        let mesh = mesh(backend).await;
        let first = mesh.sign_up("dave@example.com").await;
        let second = mesh.log_in("dave@example.com").await;
        let third = mesh.log_in("dave@example.com").await;
        let eve = mesh.customer().await;
        let mut auth = mesh.auth().await;

        let listed = auth
            .list_sessions(authed(
                pb::ListSessionsRequest::default(),
                &first.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .sessions;
        assert_eq!(listed.len(), 3, "{backend:?}");
        assert_eq!(listed.iter().filter(|s| s.current).count(), 1);

        let foreign = auth
            .revoke_session(authed(
                pb::RevokeSessionRequest {
                    session_id: first.session_id.clone(),
                },
                &eve.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(
            foreign.code(),
            Code::NotFound,
            "another user's session does not exist for eve"
        );

        auth.revoke_session(authed(
            pb::RevokeSessionRequest {
                session_id: second.session_id.clone(),
            },
            &first.access_token,
        ))
        .await
        .unwrap();
        let refresh = |token: &str| pb::RefreshRequest {
            refresh_token: token.to_owned(),
        };
        assert_eq!(
            auth.refresh(refresh(&second.refresh_token))
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );

        let logout = auth
            .logout(authed(pb::LogoutRequest::default(), &third.access_token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(logout.revoked_sessions, 1);
        assert_eq!(
            auth.refresh(refresh(&third.refresh_token))
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );

        // A fresh session, then a password change from the first: only the first survives.
        let fourth = mesh.log_in("dave@example.com").await;
        let changed = auth
            .change_password(authed(
                pb::ChangePasswordRequest {
                    current_password: ironmesh_testkit::PASSWORD.to_owned(),
                    new_password: "a different long passphrase".to_owned(),
                    revoke_other_sessions: true,
                },
                &first.access_token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(changed.revoked_sessions, 1);
        assert_eq!(
            auth.refresh(refresh(&fourth.refresh_token))
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        auth.refresh(refresh(&first.refresh_token))
            .await
            .expect("the current session lives");
        let old_password = auth
            .login(pb::LoginRequest {
                email: "dave@example.com".to_owned(),
                password: ironmesh_testkit::PASSWORD.to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(old_password.code(), Code::Unauthenticated);
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Who may call what, over every auth RPC: without a token only the public ones get past the
/// authentication layer; a customer is refused the admin and internal ones with
/// PERMISSION_DENIED.
#[tokio::test]
async fn rbac_matrix_over_every_auth_rpc() {
    let mesh = mesh(Backend::Sqlite).await;
    let customer = mesh.customer().await;
    let descriptors = ironmesh_runtime::policy();
    let public = ["Register", "Login", "Refresh", "GetJwks"];
    // Refused to every user: services only (see tests/service_identity.rs and
    // tests/user_contact.rs).
    let denied = [
        "ListUsers",
        "SetRoles",
        "LockUser",
        "UnlockUser",
        "AuthenticateApiKey",
        "GetUserContact",
    ];
    let channel = mesh.channel(ServiceKind::Auth).await;
    let methods = [
        "Register",
        "Login",
        "Refresh",
        "Logout",
        "GetMe",
        "ChangePassword",
        "ListSessions",
        "RevokeSession",
        "CreateApiKey",
        "ListApiKeys",
        "RevokeApiKey",
        "GetJwks",
        "EnrollTotp",
        "ConfirmTotp",
        "ExportMyData",
        "DeleteMyAccount",
        "ListUsers",
        "SetRoles",
        "LockUser",
        "UnlockUser",
        "AuthenticateApiKey",
        "GetUserContact",
    ];
    for method in methods {
        let path = format!("/ironmesh.auth.v1.AuthService/{method}");
        assert!(
            descriptors.get(&path).is_some(),
            "{method} is in the contract"
        );
        let anonymous = call_empty(channel.clone(), &path, None).await;
        if public.contains(&method) {
            assert_ne!(anonymous, Code::Unauthenticated, "{method} is public");
        } else {
            assert_eq!(anonymous, Code::Unauthenticated, "{method} needs a token");
        }
        let as_customer = call_empty(channel.clone(), &path, Some(&customer.access_token)).await;
        if denied.contains(&method) {
            assert_eq!(
                as_customer,
                Code::PermissionDenied,
                "{method} is admin-only or internal"
            );
        } else {
            assert!(
                !matches!(as_customer, Code::Unauthenticated | Code::PermissionDenied),
                "{method} is open to a customer: {as_customer:?}"
            );
        }
    }
    assert!(mesh.shutdown().await.is_empty());
}

/// Calls `path` with an empty message (every request message decodes from zero bytes) and
/// returns the status code.
async fn call_empty(channel: tonic::transport::Channel, path: &str, token: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let result: Result<tonic::Response<()>, tonic::Status> =
        grpc.unary(request, path.parse().unwrap(), codec).await;
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// The first administrator is created out of band; with it: users are listed page by page and
/// filtered, roles change, a locked account can neither log in nor refresh, and unlocking
/// restores it. An admin cannot drop their own admin role.
#[tokio::test]
async fn administrators_manage_users() {
    for backend in backends() {
        let mesh = mesh(backend).await;
        let admin = mesh.admin().await;
        let admin_id = admin.user_id.clone();
        let frank = mesh.sign_up("frank@example.com").await;
        mesh.sign_up("grace@example.com").await;
        let mut auth = mesh.auth().await;
        let token = admin.access_token.as_str();

        // Pagination: one per page, in creation order, until the token runs out.
        let mut emails = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = auth
                .list_users(authed(
                    pb::ListUsersRequest {
                        page_size: 1,
                        page_token: page_token.clone(),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .unwrap()
                .into_inner();
            emails.extend(page.users.into_iter().map(|u| u.email));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert_eq!(
            emails,
            vec!["root@example.com", "frank@example.com", "grace@example.com"],
            "{backend:?}"
        );
        let filtered = auth
            .list_users(authed(
                pb::ListUsersRequest {
                    email_contains: "FRANK".to_owned(),
                    role: pb::Role::Customer as i32,
                    ..Default::default()
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner()
            .users;
        assert_eq!(filtered.len(), 1);
        assert_eq!(filtered[0].user_id, frank.user_id);

        let promoted = auth
            .set_roles(authed(
                pb::SetRolesRequest {
                    user_id: frank.user_id.clone(),
                    roles: vec![pb::Role::Operator as i32],
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(promoted.roles, vec![pb::Role::Operator as i32]);
        let self_demotion = auth
            .set_roles(authed(
                pb::SetRolesRequest {
                    user_id: admin_id.clone(),
                    roles: vec![pb::Role::Customer as i32],
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(self_demotion.code(), Code::InvalidArgument);

        auth.lock_user(authed(
            pb::LockUserRequest {
                user_id: frank.user_id.clone(),
                reason: "suspicious activity".to_owned(),
                locked_until: None,
            },
            token,
        ))
        .await
        .unwrap();
        let login = auth
            .login(pb::LoginRequest {
                email: "frank@example.com".to_owned(),
                password: PASSWORD.to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(login.code(), Code::PermissionDenied, "{backend:?}: locked");
        let refresh = auth
            .refresh(pb::RefreshRequest {
                refresh_token: frank.refresh_token.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            refresh.code(),
            Code::Unauthenticated,
            "locking revoked the sessions"
        );

        auth.unlock_user(authed(
            pb::UnlockUserRequest {
                user_id: frank.user_id.clone(),
            },
            token,
        ))
        .await
        .unwrap();
        mesh.log_in("frank@example.com").await;

        let missing = auth
            .lock_user(authed(
                pb::LockUserRequest {
                    user_id: "0190d5a0-0000-7000-8000-000000000000".to_owned(),
                    reason: "x".to_owned(),
                    locked_until: None,
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Brute-force protection: after the threshold of failed logins the account is locked out —
/// even the right password gets RESOURCE_EXHAUSTED with a retry delay — until the lock runs out
/// or an administrator unlocks the account. Runs with in-process counters, and with Redis
/// counters when TEST_REDIS_URL is set (always in CI).
#[tokio::test]
async fn failed_logins_lock_the_account_until_an_admin_unlocks_it() {
    let mut counters = vec![None];
    if let Some(url) = ironmesh_testkit::redis_url() {
        counters.push(Some(url));
    }
    for redis in counters {
        let mesh = TestMesh::start_with(Backend::Sqlite, &[ServiceKind::Auth], false, |config| {
            config.redis_url = redis.clone();
            config
                .update_section(|lockout: &mut ironmesh_auth::settings::LockoutConfig| {
                    lockout.account_threshold = 3;
                    lockout.ip_threshold = 10_000;
                    lockout.base_secs = 600;
                })
                .expect("valid lockout settings");
        })
        .await;
        let admin = mesh.admin().await;
        // A unique victim per run: Redis counters outlive the mesh.
        let victim = mesh.customer().await;
        let mut auth = mesh.auth().await;
        let login = |password: &str| pb::LoginRequest {
            email: victim.email.clone(),
            password: password.to_owned(),
            ..Default::default()
        };
        for attempt in 1..=3 {
            let status = auth
                .login(login("not the right password"))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "attempt {attempt}");
        }
        let locked = auth.login(login(PASSWORD)).await.unwrap_err();
        assert_eq!(
            locked.code(),
            Code::ResourceExhausted,
            "redis={redis:?}: {locked:?}"
        );
        let retry = locked.get_details_retry_info().expect("retry info");
        let delay = retry.retry_delay.expect("a delay");
        assert!(delay.as_secs() > 500 && delay.as_secs() <= 600, "{delay:?}");

        auth.unlock_user(authed(
            pb::UnlockUserRequest {
                user_id: victim.user_id.clone(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap();
        auth.login(login(PASSWORD)).await.expect("unlocked");
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// API keys: created with scopes (the secret shown once, `imk_<prefix>_<secret>`), accepted by
/// other services through auth's lookup, unable to manage credentials, listed without their
/// secret, revocable only by their owner — and refused once revoked.
#[tokio::test]
async fn api_keys_authenticate_machines_until_revoked() {
    for backend in backends() {
        // No answer caching: revocation shows at once.
        let mesh = TestMesh::start_with(
            backend,
            &[ServiceKind::Auth, ServiceKind::Orders],
            false,
            |config| config.tokens.api_key_cache_ms = 0,
        )
        .await;
        let owner = mesh.customer().await;
        let other = mesh.customer().await;
        let mut auth = mesh.auth().await;
        let create = |scopes: Vec<&str>| pb::CreateApiKeyRequest {
            name: "ci deploys".to_owned(),
            scopes: scopes.into_iter().map(str::to_owned).collect(),
            expires_at: None,
        };

        let invalid = auth
            .create_api_key(authed(create(vec![]), &owner.access_token))
            .await
            .unwrap_err();
        assert_eq!(violations(&invalid), vec!["scopes"]);

        let created = auth
            .create_api_key(authed(create(vec!["orders:read"]), &owner.access_token))
            .await
            .unwrap()
            .into_inner();
        let secret = created.secret;
        let key = created.api_key.unwrap();
        assert!(
            secret.starts_with(&format!("{}_", key.prefix)),
            "{secret} / {}",
            key.prefix
        );
        assert_eq!(key.scopes, vec!["orders:read"]);

        assert!(
            orders_accepts(&mesh, &secret).await,
            "{backend:?}: the key works elsewhere"
        );
        let forged = format!("{}_{}", key.prefix, "A".repeat(43));
        assert!(
            !orders_accepts(&mesh, &forged).await,
            "a forged secret is refused"
        );

        let escalation = auth
            .create_api_key(authed(create(vec!["admin"]), &secret))
            .await
            .unwrap_err();
        assert_eq!(
            escalation.code(),
            Code::PermissionDenied,
            "keys cannot mint keys"
        );

        let listed = auth
            .list_api_keys(authed(
                pb::ListApiKeysRequest::default(),
                &owner.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .api_keys;
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some(), "use is recorded");
        assert!(
            !format!("{listed:?}").contains(&secret[key.prefix.len() + 1..]),
            "no secret"
        );

        let foreign = auth
            .revoke_api_key(authed(
                pb::RevokeApiKeyRequest {
                    api_key_id: key.api_key_id.clone(),
                },
                &other.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(foreign.code(), Code::NotFound);

        let revoked = auth
            .revoke_api_key(authed(
                pb::RevokeApiKeyRequest {
                    api_key_id: key.api_key_id.clone(),
                },
                &owner.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .api_key
            .unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(
            !orders_accepts(&mesh, &secret).await,
            "{backend:?}: revoked key refused"
        );
        let active = auth
            .list_api_keys(authed(
                pb::ListApiKeysRequest::default(),
                &owner.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .api_keys;
        assert!(active.is_empty(), "revoked keys are listed only on request");
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// TOTP: enrollment gives an otpauth URI, a current code confirms it and returns recovery codes;
/// from then on login needs a code (SECOND_FACTOR_REQUIRED otherwise), a code works once, and
/// each recovery code works once.
#[tokio::test]
async fn totp_second_factor_and_single_use_recovery_codes() {
    for backend in backends() {
        let mesh = mesh(backend).await;
        let user = mesh.customer().await;
        let mut auth = mesh.auth().await;
        let enrolled = auth
            .enroll_totp(authed(pb::EnrollTotpRequest {}, &user.access_token))
            .await
            .unwrap()
            .into_inner();
        assert!(
            enrolled.otpauth_uri.starts_with("otpauth://totp/Ironmesh:"),
            "{enrolled:?}"
        );
        let secret = totp_rs::Secret::Encoded(enrolled.secret)
            .to_bytes()
            .unwrap();
        let totp = totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            6,
            1,
            30,
            secret,
            None,
            String::new(),
        )
        .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let confirm = |code: String| {
            authed(
                pb::ConfirmTotpRequest { totp_code: code },
                &user.access_token,
            )
        };
        let wrong = auth.confirm_totp(confirm("000000".into())).await;
        if let Err(status) = &wrong {
            assert_eq!(status.code(), Code::InvalidArgument);
        }
        let used_code = totp.generate(now);
        let codes = match wrong {
            // "000000" can be the current code, one time in a million.
            Ok(response) => response.into_inner().recovery_codes,
            Err(_) => {
                auth.confirm_totp(confirm(used_code.clone()))
                    .await
                    .unwrap()
                    .into_inner()
                    .recovery_codes
            }
        };
        assert_eq!(codes.len(), 10);

        let login = |factor: Option<pb::login_request::SecondFactor>| pb::LoginRequest {
            email: user.email.clone(),
            password: PASSWORD.to_owned(),
            second_factor: factor,
            ..Default::default()
        };
        let missing = auth.login(login(None)).await.unwrap_err();
        assert_eq!(missing.code(), Code::Unauthenticated, "{backend:?}");
        assert_eq!(
            missing.get_details_error_info().map(|info| info.reason),
            Some("SECOND_FACTOR_REQUIRED".to_owned())
        );
        use pb::login_request::SecondFactor;
        let replay = auth
            .login(login(Some(SecondFactor::TotpCode(used_code))))
            .await
            .unwrap_err();
        assert_eq!(replay.code(), Code::Unauthenticated, "a code works once");
        auth.login(login(Some(SecondFactor::TotpCode(totp.generate(now + 30)))))
            .await
            .expect("the next step's code is accepted");

        let recovery = codes[0].to_uppercase();
        auth.login(login(Some(SecondFactor::RecoveryCode(recovery.clone()))))
            .await
            .expect("a recovery code logs in");
        let again = auth
            .login(login(Some(SecondFactor::RecoveryCode(recovery))))
            .await
            .unwrap_err();
        assert_eq!(
            again.code(),
            Code::Unauthenticated,
            "recovery codes are single use"
        );

        let twice = auth
            .enroll_totp(authed(pb::EnrollTotpRequest {}, &user.access_token))
            .await
            .unwrap_err();
        assert_eq!(twice.code(), Code::FailedPrecondition);
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// GDPR: the export is one JSON document with the account, sessions and API key metadata (no
/// secrets); deletion re-checks the password, removes the account with its sessions, and writes
/// `auth.user.deleted` to the outbox in the same transaction.
#[tokio::test]
async fn export_and_delete_my_account() {
    for backend in backends() {
        let mesh = mesh(backend).await;
        let user = mesh.customer().await;
        let mut auth = mesh.auth().await;
        let key = auth
            .create_api_key(authed(
                pb::CreateApiKeyRequest {
                    name: "laptop".to_owned(),
                    scopes: vec!["orders:read".to_owned()],
                    expires_at: None,
                },
                &user.access_token,
            ))
            .await
            .unwrap()
            .into_inner();

        let export = auth
            .export_my_data(authed(pb::ExportMyDataRequest {}, &user.access_token))
            .await
            .unwrap()
            .into_inner()
            .document
            .unwrap();
        assert_eq!(export.content_type, "application/json");
        let document: serde_json::Value = serde_json::from_slice(&export.data).unwrap();
        assert_eq!(document["account"]["email"], user.email.as_str());
        assert_eq!(document["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(document["api_keys"][0]["name"], "laptop");
        let text = String::from_utf8_lossy(&export.data);
        assert!(!text.contains(&key.secret), "no secrets in the export");
        assert!(!text.contains("argon2"), "no password hash in the export");

        let wrong = auth
            .delete_my_account(authed(
                pb::DeleteMyAccountRequest {
                    password: "not the password at all".to_owned(),
                    totp_code: String::new(),
                },
                &user.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), Code::Unauthenticated);

        auth.delete_my_account(authed(
            pb::DeleteMyAccountRequest {
                password: PASSWORD.to_owned(),
                totp_code: String::new(),
            },
            &user.access_token,
        ))
        .await
        .unwrap();
        let login = auth
            .login(pb::LoginRequest {
                email: user.email.clone(),
                password: PASSWORD.to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            login.code(),
            Code::Unauthenticated,
            "{backend:?}: the account is gone"
        );
        let refresh = auth
            .refresh(pb::RefreshRequest {
                refresh_token: user.refresh_token.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            refresh.code(),
            Code::Unauthenticated,
            "sessions went with it"
        );
        assert!(
            !orders_accepts(&mesh, &key.secret).await,
            "so did the API keys"
        );

        // The deletion and its event committed together: the event is in auth's outbox, its
        // payload the protobuf the content type names, with the user id and nothing else.
        let db = ironmesh_runtime::Database::connect(
            &mesh.config().database_url(ServiceKind::Auth),
            "auth",
        )
        .await
        .unwrap();
        let sql = "SELECT aggregate_id, actor, content_type, payload FROM outbox_events WHERE event_type = 'auth.user.deleted'";
        let events: Vec<(String, String, String, Vec<u8>)> = ironmesh_runtime::with_pool!(&db, pool => {
            sqlx::query_as(sql).fetch_all(pool).await.unwrap()
        });
        assert_eq!(events.len(), 1, "{backend:?}");
        let (aggregate_id, actor, content_type, payload) = &events[0];
        assert_eq!(aggregate_id, &user.user_id);
        assert_eq!(actor, &user.user_id);
        assert_eq!(
            content_type,
            "application/protobuf; proto=ironmesh.auth.v1.UserDeleted"
        );
        let deleted = <pb::UserDeleted as prost::Message>::decode(payload.as_slice()).unwrap();
        assert_eq!(deleted.user_id, user.user_id);
        db.close().await;
        assert!(mesh.shutdown().await.is_empty());
    }
}

/// Every security-relevant action writes its event in auth's outbox, by the right actor, about
/// the right aggregate — and no payload holds a password, token, API key or TOTP secret.
#[tokio::test]
async fn every_security_action_writes_its_event_and_no_secret() {
    for backend in backends() {
        let mesh = mesh(backend).await;
        let admin = mesh.admin().await;
        let user = mesh.customer().await;
        let mut auth = mesh.auth().await;
        let failed = auth
            .login(pb::LoginRequest {
                email: user.email.clone(),
                password: "not the password at all".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(failed.code(), Code::Unauthenticated);
        let key = auth
            .create_api_key(authed(
                pb::CreateApiKeyRequest {
                    name: "ci".into(),
                    scopes: vec!["orders:read".into()],
                    ..Default::default()
                },
                &user.access_token,
            ))
            .await
            .unwrap()
            .into_inner();
        let key_id = key.api_key.clone().unwrap().api_key_id;
        auth.revoke_api_key(authed(
            pb::RevokeApiKeyRequest {
                api_key_id: key_id.clone(),
            },
            &user.access_token,
        ))
        .await
        .unwrap();
        let enrolled = auth
            .enroll_totp(authed(pb::EnrollTotpRequest {}, &user.access_token))
            .await
            .unwrap()
            .into_inner();
        let totp = totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            6,
            1,
            30,
            totp_rs::Secret::Encoded(enrolled.secret.clone())
                .to_bytes()
                .unwrap(),
            None,
            String::new(),
        )
        .unwrap();
        let recovery = auth
            .confirm_totp(authed(
                pb::ConfirmTotpRequest {
                    totp_code: totp.generate_current().unwrap(),
                },
                &user.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .recovery_codes;
        let new_password = "an even longer and more unusual passphrase";
        auth.change_password(authed(
            pb::ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: new_password.into(),
                ..Default::default()
            },
            &user.access_token,
        ))
        .await
        .unwrap();
        auth.set_roles(authed(
            pb::SetRolesRequest {
                user_id: user.user_id.clone(),
                roles: vec![pb::Role::Customer as i32, pb::Role::Operator as i32],
            },
            &admin.access_token,
        ))
        .await
        .unwrap();
        auth.lock_user(authed(
            pb::LockUserRequest {
                user_id: user.user_id.clone(),
                reason: "investigation".into(),
                locked_until: None,
            },
            &admin.access_token,
        ))
        .await
        .unwrap();
        auth.unlock_user(authed(
            pb::UnlockUserRequest {
                user_id: user.user_id.clone(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap();
        auth.logout(authed(
            pb::LogoutRequest { all_sessions: true },
            &admin.access_token,
        ))
        .await
        .unwrap();
        let rotated = ironmesh_auth::rotate_signing_key(mesh.config())
            .await
            .unwrap()
            .kid;

        let db = ironmesh_runtime::Database::connect(
            &mesh.config().database_url(ServiceKind::Auth),
            "auth",
        )
        .await
        .unwrap();
        let sql = "SELECT event_type, aggregate_type, aggregate_id, actor, payload FROM outbox_events ORDER BY seq";
        let events: Vec<(String, String, String, String, Vec<u8>)> = ironmesh_runtime::with_pool!(&db, pool => {
            sqlx::query_as(sql).fetch_all(pool).await.unwrap()
        });
        db.close().await;
        let has = |event_type: &str, aggregate: &str, id: &str, actor: &str| {
            events.iter().any(|(t, a, i, who, _)| {
                t == event_type && a == aggregate && i == id && who == actor
            })
        };
        let (u, a) = (user.user_id.as_str(), admin.user_id.as_str());
        let expected: [(&str, &str, &str, &str); 13] = [
            ("auth.user.registered", "user", a, "operator:cli"),
            ("auth.user.registered", "user", u, u),
            ("auth.login.succeeded", "user", u, u),
            ("auth.api_key.created", "api_key", &key_id, u),
            ("auth.api_key.revoked", "api_key", &key_id, u),
            ("auth.user.totp_enabled", "user", u, u),
            ("auth.user.password_changed", "user", u, u),
            ("auth.user.roles_changed", "user", u, a),
            ("auth.user.locked", "user", u, a),
            ("auth.session.revoked", "user", u, a),
            ("auth.user.unlocked", "user", u, a),
            ("auth.session.revoked", "user", a, a),
            (
                "auth.signing_key.rotated",
                "signing_key",
                &rotated,
                "service:auth",
            ),
        ];
        for (event_type, aggregate, id, actor) in expected {
            assert!(
                has(event_type, aggregate, id, actor),
                "{backend:?}: no {event_type} about {aggregate}/{id} by {actor}"
            );
        }
        let failed_login = events
            .iter()
            .find(|(t, ..)| t == "auth.login.failed")
            .expect("a failed login event");
        assert_eq!(failed_login.3, "anonymous");
        let payload =
            <pb::LoginFailed as prost::Message>::decode(failed_login.4.as_slice()).unwrap();
        assert_eq!(payload.reason, "invalid_credentials");
        assert_eq!(payload.user_id, user.user_id);

        let secrets = [
            PASSWORD,
            new_password,
            "not the password at all",
            key.secret.as_str(),
            user.access_token.as_str(),
            user.refresh_token.as_str(),
            enrolled.secret.as_str(),
            recovery[0].as_str(),
        ];
        for (event_type, .., payload) in &events {
            let text = String::from_utf8_lossy(payload);
            for secret in secrets {
                assert!(!text.contains(secret), "{event_type} carries a secret");
            }
            assert!(!text.contains('@'), "{event_type} carries an email address");
        }
        assert!(mesh.shutdown().await.is_empty());
    }
}
