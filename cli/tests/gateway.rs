//! The REST gateway in front of real services: routes come from the `google.api.http` rules,
//! JSON follows the proto3 mapping, gRPC statuses become HTTP statuses with a google.rpc.Status
//! body.

use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{Backend, PASSWORD, Rest, TestMesh};
use serde_json::{Value, json};

async fn gateway() -> (TestMesh, Rest) {
    gateway_with(|_| {}).await
}

async fn gateway_with(adjust: impl FnOnce(&mut ironmesh_runtime::Config)) -> (TestMesh, Rest) {
    // The gateway is ready only when every upstream is: start them all.
    let mesh = TestMesh::start_with(Backend::Sqlite, &ServiceKind::ALL, true, adjust).await;
    let rest = Rest::new(&mesh);
    (mesh, rest)
}

/// Register, log in and read the account over REST: bodies, lowerCamelCase output, enum names,
/// and the bearer token forwarded to the service.
#[tokio::test]
async fn accounts_over_rest() {
    let (mesh, rest) = gateway().await;
    let (status, registered) = rest
        .call(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"email": "Ada@Example.com", "password": PASSWORD, "display_name": "Ada"})),
        )
        .await;
    assert_eq!(status, 201, "a create answers 201: {registered}");
    assert_eq!(registered["user"]["email"], "ada@example.com");
    assert_eq!(
        registered["user"]["displayName"], "Ada",
        "lowerCamelCase out, both names in"
    );
    assert_eq!(
        registered["user"]["roles"],
        json!(["ROLE_CUSTOMER"]),
        "enums by name"
    );

    let (status, login) = rest
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": "ada@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let token = login["tokens"]["accessToken"].as_str().unwrap().to_owned();
    assert!(
        login["tokens"]["expiresIn"].is_string(),
        "int64 as a string: {login}"
    );

    let (status, me) = rest.call("GET", "/v1/auth/me", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["email"], "ada@example.com");

    // A path variable plus a custom verb; another user's session is not found.
    let session = login["tokens"]["sessionId"].as_str().unwrap();
    let other = mesh.customer().await;
    let (status, _) = rest
        .call(
            "POST",
            &format!("/v1/auth/sessions/{session}:revoke"),
            Some(&other.access_token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, revoked) = rest
        .call(
            "POST",
            &format!("/v1/auth/sessions/{session}:revoke"),
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");

    // response_body + google.api.HttpBody: the export arrives as the raw document.
    let (status, export) = rest
        .call("GET", "/v1/auth/me:export", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(export["account"]["email"], "ada@example.com");

    // additional_bindings: the JWKS at its well-known path.
    let (status, jwks) = rest.call("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(mesh.shutdown().await.is_empty());
}

/// gRPC statuses map to HTTP per the grpc-gateway table, with the google.rpc.Status body and its
/// details; the gateway's own refusals (415, 431) use the same shape, with a code that agrees.
#[tokio::test]
async fn errors_map_to_http_with_status_bodies() {
    let (mesh, rest) = gateway().await;
    let customer = mesh.customer().await;
    let token = customer.access_token.as_str();

    let (status, body) = rest
        .call(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"email": "bob@example.com", "password": "short", "displayName": "Bob"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 3);
    assert_eq!(
        body["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    assert_eq!(
        body["details"][0]["fieldViolations"][0]["field"],
        "password"
    );

    let (status, body) = rest
        .call(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"email": customer.email, "password": PASSWORD, "displayName": "Again"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (409, json!(6)),
        "ALREADY_EXISTS"
    );

    let (status, body) = rest.call("GET", "/v1/orders", None, None).await;
    assert_eq!(
        (status, body["code"].clone()),
        (401, json!(16)),
        "UNAUTHENTICATED"
    );
    let (status, body) = rest.call("GET", "/v1/auth/users", Some(token), None).await;
    assert_eq!(
        (status, body["code"].clone()),
        (403, json!(7)),
        "PERMISSION_DENIED"
    );
    let (status, body) = rest
        .call(
            "POST",
            "/v1/provisioning/requests/0190d5a0-0000-7000-8000-000000000000/credentials",
            Some(token),
            Some(json!({"kind": "api_token", "material": {"token": "x"}})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (404, json!(5)),
        "NOT_FOUND: no such request (and the material is not echoed): {body}"
    );
    assert!(!body.to_string().contains("\"x\""));
    let (status, body) = rest.call("GET", "/v1/nowhere", None, None).await;
    assert_eq!((status, body["code"].clone()), (404, json!(5)), "no route");

    let (status, body) = rest
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": "a@example.com", "bogus": 1})),
        )
        .await;
    assert_eq!(status, 400, "unknown JSON field: {body}");
    assert!(
        body["details"][0]["fieldViolations"][0]["description"]
            .as_str()
            .unwrap()
            .contains("bogus")
    );

    let wrong_type = reqwest::Client::new()
        .post(format!("{}/v1/auth/login", rest.base))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status().as_u16(), 415);
    let body: Value = serde_json::from_str(&wrong_type.text().await.unwrap()).unwrap();
    assert_eq!(
        body["code"], 3,
        "INVALID_ARGUMENT, as 400-class as 415: {body}"
    );

    // Oversized headers are the gateway's to refuse (they once reached auth: 500, or 503 naming
    // its address): 431 in the same shape, a little over the limit and far over it.
    for size in [20_000, 70_000] {
        let (status, body) = rest
            .call("GET", "/v1/auth/me", Some(&"a".repeat(size)), None)
            .await;
        assert_eq!(
            (status, body["code"].clone()),
            (431, json!(8)),
            "{size}: {body}"
        );
        assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    }
    let (status, _) = rest.call("GET", "/v1/auth/me", Some(token), None).await;
    assert_eq!(status, 200, "auth still reachable after the refusals");
    assert!(mesh.shutdown().await.is_empty());
}

/// Query parameters fill the fields the path and body do not: paging through users as an admin.
#[tokio::test]
async fn query_parameters_fill_request_fields() {
    let (mesh, rest) = gateway().await;
    let admin = mesh.admin().await;
    mesh.customer().await;
    let (status, page) = rest
        .call(
            "GET",
            "/v1/auth/users?pageSize=1",
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    let next = page["nextPageToken"].as_str().unwrap();
    let (status, rest_page) = rest
        .call(
            "GET",
            &format!("/v1/auth/users?page_size=1&page_token={next}"),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(rest_page["users"][0]["userId"], page["users"][0]["userId"]);
    let (status, filtered) = rest
        .call(
            "GET",
            "/v1/auth/users?role=ROLE_ADMIN",
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(filtered["users"].as_array().unwrap().len(), 1);
    let (status, bad) = rest
        .call(
            "GET",
            "/v1/auth/users?pageSize=many",
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(mesh.shutdown().await.is_empty());
}

/// Edge hardening: OWASP security headers on every response, errors included; CORS headers only
/// for configured origins; bodies over 4 MiB refused with 413.
#[tokio::test]
async fn security_headers_cors_and_body_limit() {
    let (mesh, rest) = gateway_with(|config| {
        config
            .update_section(|gateway: &mut ironmesh_gateway::GatewayConfig| {
                gateway.cors_origins = vec!["https://app.example.com".to_owned()];
            })
            .expect("valid gateway settings");
    })
    .await;
    let client = reqwest::Client::new();
    for path in ["/.well-known/jwks.json", "/v1/nowhere", "/v1/orders"] {
        let response = client
            .get(format!("{}{path}", rest.base))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            headers["content-security-policy"], "frame-ancestors 'none'",
            "{path}"
        );
        assert!(headers.contains_key("referrer-policy"), "{path}");
        assert!(headers.contains_key("x-request-id"), "{path}");
    }
    let allowed = client
        .get(format!("{}/.well-known/jwks.json", rest.base))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = allowed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for name in ["x-request-id", "ratelimit-remaining", "etag", "location"] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    // A preflight for the headers a frontend sends: the forwarded ones are allowed.
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/auth/register", rest.base),
        )
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,idempotency-key,traceparent",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed_headers = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for name in [
        "content-type",
        "idempotency-key",
        "traceparent",
        "authorization",
    ] {
        assert!(allowed_headers.contains(name), "{name}: {allowed_headers}");
    }
    assert!(!allowed_headers.contains("cookie"), "{allowed_headers}");
    let stranger = client
        .get(format!("{}/.well-known/jwks.json", rest.base))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        !stranger
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let huge = client
        .post(format!("{}/v1/auth/login", rest.base))
        .header("content-type", "application/json")
        .body(vec![b' '; 4 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status().as_u16(), 413);
    assert!(mesh.shutdown().await.is_empty());
}

/// The rate limit: a burst, then 429 with Retry-After and RateLimit-* headers and a
/// google.rpc.Status body; successful responses say how much is left.
#[tokio::test]
async fn rate_limit_answers_429_after_the_burst() {
    let (mesh, rest) = gateway_with(|config| {
        config
            .update_section(|gateway: &mut ironmesh_gateway::GatewayConfig| {
                gateway.rate_limit_per_sec = 1;
                gateway.rate_limit_burst = 3;
            })
            .expect("valid gateway settings");
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/.well-known/jwks.json", rest.base);
    for left in [2, 1, 0] {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["ratelimit-remaining"],
            left.to_string().as_str()
        );
    }
    let refused = client.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.headers()["ratelimit-limit"], "3");
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        refused.headers()["x-frame-options"],
        "DENY",
        "security headers on 429 too"
    );
    let body: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(body["code"], 8);
    assert!(mesh.shutdown().await.is_empty());
}

/// With Redis, two gateway replicas share one budget per credential; with Redis unreachable the
/// limit still holds, decided in process.
#[tokio::test]
async fn rate_limit_is_shared_through_redis_and_survives_its_loss() {
    let Some(redis) = ironmesh_testkit::redis_url() else {
        eprintln!("note: TEST_REDIS_URL is not set; skipping");
        return;
    };
    let shared = |redis: String| {
        move |config: &mut ironmesh_runtime::Config| {
            config.redis_url = Some(redis);
            config
                .update_section(|gateway: &mut ironmesh_gateway::GatewayConfig| {
                    gateway.rate_limit_per_sec = 1;
                    gateway.rate_limit_burst = 4;
                })
                .expect("valid gateway settings");
        }
    };
    let (first, rest_a) = gateway_with(shared(redis.clone())).await;
    let (second, rest_b) = gateway_with(shared(redis)).await;
    // A credential of its own, so nothing else shares this budget.
    let credential = format!("Bearer test-{}", uuid::Uuid::now_v7().simple());
    let client = reqwest::Client::new();
    let status = |base: String| {
        let client = client.clone();
        let credential = credential.clone();
        async move {
            client
                .get(format!("{base}/.well-known/jwks.json"))
                .header("authorization", credential)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut seen = Vec::new();
    for base in [
        &rest_a.base,
        &rest_b.base,
        &rest_a.base,
        &rest_b.base,
        &rest_a.base,
        &rest_b.base,
    ] {
        seen.push(status(base.clone()).await);
    }
    assert_eq!(&seen[..4], &[200, 200, 200, 200], "{seen:?}");
    assert!(
        seen[4..].iter().all(|s| *s == 429),
        "one budget across replicas: {seen:?}"
    );
    assert!(first.shutdown().await.is_empty());
    assert!(second.shutdown().await.is_empty());

    // Redis gone: decisions move into the process, and the limit still applies.
    let (third, rest_c) = gateway_with(|config| {
        config.redis_url = Some("redis://127.0.0.1:1".to_owned());
        config
            .update_section(|gateway: &mut ironmesh_gateway::GatewayConfig| {
                gateway.rate_limit_per_sec = 1;
                gateway.rate_limit_burst = 2;
            })
            .expect("valid gateway settings");
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(status(rest_c.base.clone()).await);
    }
    assert_eq!(seen, vec![200, 200, 429]);
    assert!(third.shutdown().await.is_empty());
}

/// Slowloris: a client that starts a request and never finishes its headers is disconnected
/// once the header read timeout passes, instead of holding the connection forever.
#[tokio::test]
async fn unfinished_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mesh, rest) = gateway_with(|config| {
        config
            .update_section(|gateway: &mut ironmesh_gateway::GatewayConfig| {
                gateway.header_read_timeout_ms = 500;
            })
            .expect("valid gateway settings");
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(rest.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut buffer),
    )
    .await;
    assert!(closed.is_ok(), "the connection was closed by the server");
    let answer = String::from_utf8_lossy(&buffer);
    assert!(!answer.contains("200 OK"), "{answer}");
    // A well-behaved request is still served.
    let (status, _) = rest.call("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(status, 200);
    assert!(mesh.shutdown().await.is_empty());
}

/// Behind the gateway, failed logins count against the client's address (relayed as
/// `x-forwarded-for`, believed from the gateway only), not against the gateway's own: one
/// client locking itself out leaves everyone else able to log in.
#[tokio::test]
async fn login_lockout_is_per_client_address_behind_the_gateway() {
    let (mesh, rest) = gateway_with(|config| {
        config
            .update_section(|gateway: &mut ironmesh_gateway::GatewayConfig| {
                gateway.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            })
            .expect("valid gateway settings");
        config
            .update_section(|lockout: &mut ironmesh_auth::settings::LockoutConfig| {
                lockout.ip_threshold = 3;
                lockout.account_threshold = 100;
            })
            .expect("valid lockout settings");
    })
    .await;
    let customer = mesh.customer().await;
    let login = |address: &'static str, email: String, password: &'static str| {
        let base = rest.base.clone();
        async move {
            let response = reqwest::Client::new()
                .post(format!("{base}/v1/auth/login"))
                .header("x-forwarded-for", address)
                .header("content-type", "application/json")
                .body(json!({"email": email, "password": password}).to_string())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            (status, body)
        }
    };
    for n in 0..3 {
        let (status, _) = login(
            "203.0.113.7",
            format!("nobody{n}@example.com"),
            "wrong-password-x",
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, body) = login("203.0.113.7", customer.email.clone(), PASSWORD).await;
    assert_eq!(status, 429, "the failing address is locked: {body}");
    let (status, body) = login("198.51.100.9", customer.email.clone(), PASSWORD).await;
    assert_eq!(status, 200, "another client is not: {body}");
    let token = body["tokens"]["accessToken"].as_str().unwrap().to_owned();
    let (status, sessions) = rest
        .call("GET", "/v1/auth/sessions", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{sessions}");
    let addresses: Vec<&str> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["ipAddress"].as_str())
        .collect();
    assert!(addresses.contains(&"198.51.100.9"), "{sessions}");
    assert!(mesh.shutdown().await.is_empty());
}

/// A route group has its own budget: exhausting `/v1/auth/` leaves other routes alone, and the
/// 429 names the group's policy.
#[tokio::test]
async fn route_groups_are_limited_separately() {
    let (mesh, rest) = gateway_with(|config| {
        config
            .update_section(|gateway: &mut ironmesh_gateway::GatewayConfig| {
                gateway.route_limits = vec![ironmesh_gateway::config::RouteLimit {
                    name: "jwks".to_owned(),
                    prefix: "/.well-known/".to_owned(),
                    per_sec: 1,
                    burst: 2,
                }];
            })
            .expect("valid gateway settings");
    })
    .await;
    let client = reqwest::Client::new();
    let jwks = format!("{}/.well-known/jwks.json", rest.base);
    for _ in 0..2 {
        assert_eq!(
            client.get(&jwks).send().await.unwrap().status().as_u16(),
            200
        );
    }
    let refused = client.get(&jwks).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.headers()["ratelimit-policy"], "2;w=2;name=\"jwks\"");
    let other = client
        .get(format!("{}/v1/auth/jwks", rest.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status().as_u16(),
        200,
        "another group's budget is untouched"
    );
    assert!(mesh.shutdown().await.is_empty());
}
