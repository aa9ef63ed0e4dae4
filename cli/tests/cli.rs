//! The `ironmesh` binary as an operator meets it: a real child process, real signals, real ports.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{Backend, TestDatabase, backends};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// `up` must be serving within this (the bound).
const READY_LIMIT: Duration = Duration::from_secs(10);
/// A drain must finish within this.
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// A command for the binary under test with no inherited `IRONMESH_*` settings.
fn ironmesh(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ironmesh"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("IRONMESH_") {
            command.env_remove(key);
        }
    }
    command
        .env("IRONMESH_DATA_DIR", data_dir)
        .env("IRONMESH_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Every listener on port 0 so tests never collide.
fn all_ports_ephemeral(command: &mut Command) {
    for kind in ServiceKind::ALL {
        let prefix = format!("IRONMESH_{}", kind.name().to_uppercase());
        command.env(format!("{prefix}__GRPC_PORT"), "0");
        command.env(format!("{prefix}__ADMIN_PORT"), "0");
    }
    command.env("IRONMESH_GATEWAY__HTTP_PORT", "0");
    command.env("IRONMESH_GATEWAY__ADMIN_PORT", "0");
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("child is running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// A row of `up`'s table: component → (listen address, admin address).
type Table = BTreeMap<String, (SocketAddr, SocketAddr)>;

/// Reads `up`'s stdout until the ready line; returns the table.
async fn read_table(child: &mut Child) -> Table {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut table = Table::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line.starts_with("ironmesh ready") {
                return true;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 4 && fields[0] != "COMPONENT" {
                assert_eq!(fields[3], "SERVING", "{line}");
                let addr = |s: &str| -> SocketAddr {
                    s.split_once("://")
                        .expect("scheme")
                        .1
                        .parse()
                        .expect("addr")
                };
                table.insert(fields[0].to_owned(), (addr(fields[1]), addr(fields[2])));
            }
        }
        false
    };
    let ready = tokio::time::timeout(READY_LIMIT, read).await;
    if !matches!(ready, Ok(true)) {
        // Say why: what the process wrote to stderr (it may have exited).
        let _ = child.start_kill();
        let stderr = stderr_of(child).await;
        panic!("`ironmesh up` printed no ready line within {READY_LIMIT:?}; its stderr:\n{stderr}");
    }
    table
}

async fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text).await;
    }
    text
}

/// `ironmesh up` as a child process on each backend: every service's gRPC port answers health
/// SERVING, every admin `/readyz` is 200, and SIGTERM makes it drain and exit 0.
#[tokio::test]
async fn up_serves_every_component_and_exits_zero_on_sigterm() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let pg = match backend {
            Backend::Postgres => Some(TestDatabase::create().await),
            Backend::Sqlite => None,
        };
        let mut command = ironmesh(dir.path());
        all_ports_ephemeral(&mut command);
        if let Some(pg) = &pg {
            // PostgreSQL means replicas: the master key and the service identity secret must be
            // configured, not generated.
            command
                .env("IRONMESH_DATABASE_URL", pg.url())
                .env(
                    "IRONMESH_SECRETS__MASTER_KEY",
                    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                )
                .env(
                    "IRONMESH_SERVICE_IDENTITY__SECRET",
                    "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
                );
        }
        let mut child = command.arg("up").spawn().expect("start ironmesh up");
        let table = read_table(&mut child).await;

        assert_eq!(table.len(), 7, "six services and the gateway: {table:?}");
        let http = reqwest::Client::new();
        for (component, (listen, admin)) in &table {
            if component != "gateway" {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{listen}"))
                    .unwrap()
                    .timeout(std::time::Duration::from_secs(10))
                    .connect()
                    .await
                    .unwrap_or_else(|e| panic!("{component}: {e}"));
                let status = HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                    .unwrap_or_else(|e| panic!("{component}: {e}"))
                    .into_inner()
                    .status;
                assert_eq!(
                    status,
                    ServingStatus::Serving as i32,
                    "{backend:?} {component}"
                );
            }
            let readyz = http
                .get(format!("http://{admin}/readyz"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{component} /readyz: {e}"));
            assert_eq!(
                readyz.status().as_u16(),
                200,
                "{backend:?} {component} /readyz"
            );
        }

        sigterm(&child);
        let status = tokio::time::timeout(STOP_LIMIT, child.wait())
            .await
            .expect("drained within the limit")
            .expect("wait");
        let stderr = stderr_of(&mut child).await;
        assert!(status.success(), "{backend:?}: exit {status:?}\n{stderr}");
        assert!(stderr.contains("all components stopped"), "{stderr}");
        if let Some(pg) = pg {
            pg.drop_database().await;
        }
    }
}

/// A port that is already taken stops `up` before anything runs, with a message that names the
/// service, what the port was for, and the address.
#[tokio::test]
async fn busy_port_fails_naming_the_service_and_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut command = ironmesh(dir.path());
    all_ports_ephemeral(&mut command);
    command.env("IRONMESH_ORDERS__GRPC_PORT", port.to_string());
    let output = tokio::time::timeout(STOP_LIMIT, command.arg("up").output())
        .await
        .expect("exits promptly")
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "orders: cannot listen on 127.0.0.1:{port} for gRPC"
        )),
        "{stderr}"
    );
}

/// Unusable configuration exits 64 before doing anything, and the message names the key (as
/// its environment variable and its TOML path). A password in a bad URL is never echoed.
#[tokio::test]
async fn invalid_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("IRONMESH_ORDERS__GRPC_PORT", "70000", "orders.grpc_port"),
        ("IRONMESH_AUTH__ADMIN_PORT", "http", "auth.admin_port"),
        (
            "IRONMESH_DATABASE_URL",
            "mysql://root:hunter2@db/x",
            "database_url",
        ),
        ("IRONMESH_DATABASE_URL", "not a url", "database_url"),
        ("IRONMESH_LOG_LEVEL", "loud", "log_level"),
        (
            "IRONMESH_SERVICE_IDENTITY__SECRET",
            "hunter2",
            "service_identity.secret",
        ),
        // Sections owned by components, validated by their owners before anything starts.
        (
            "IRONMESH_LOCKOUT__IP_THRESHOLD",
            "0",
            "lockout.ip_threshold",
        ),
        ("IRONMESH_LOCKOUT__BASE_SECS", "soon", "lockout.base_secs"),
        (
            "IRONMESH_SECRETS__MASTER_KEY",
            "hunter2",
            "secrets.master_key",
        ),
        (
            "IRONMESH_GATEWAY__FORWARD_RESPONSE_HEADERS",
            "[Bad Header]",
            "gateway.forward_response_headers",
        ),
        (
            "IRONMESH_GATEWAY__MAX_HEADER_BYTES",
            "10",
            "gateway.max_header_bytes",
        ),
        // A top-level key no component reads.
        ("IRONMESH_ORDRES", "1", "ordres"),
    ];
    for (key, value, toml_key) in cases {
        let output = ironmesh(dir.path())
            .env(key, value)
            .arg("migrate")
            .output()
            .await
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{key}={value}: {stderr}");
        assert!(stderr.contains(key), "{key}: {stderr}");
        assert!(stderr.contains(toml_key), "{toml_key}: {stderr}");
        assert!(!stderr.contains("hunter2"), "secret echoed: {stderr}");
    }

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[orders]\ngrpc_port = \"abc\"\n").unwrap();
    let output = ironmesh(dir.path())
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .output()
        .await
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("orders.grpc_port"), "{stderr}");
}

/// `ironmesh openapi` prints the document the gateway serves, without starting anything: an
/// OpenAPI 3.1 document whose every operation states its security.
#[tokio::test]
async fn openapi_command_prints_the_served_document() {
    let dir = tempfile::tempdir().unwrap();
    let output = ironmesh(dir.path())
        .arg("openapi")
        .output()
        .await
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/v1/auth/login"), "{:?}", paths.keys());
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            if operation.is_object() && operation.get("operationId").is_some() {
                assert!(operation.get("security").is_some(), "{method} {path}");
            }
        }
    }
}

/// `ironmesh migrate` creates every service's SQLite file and can run again without change.
#[tokio::test]
async fn migrate_command_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for run in 0..2 {
        let output = ironmesh(dir.path())
            .arg("migrate")
            .output()
            .await
            .expect("run");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "run {run}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for kind in ServiceKind::ALL {
            assert!(
                stdout.contains(&format!("migrated {kind} (Sqlite)")),
                "{stdout}"
            );
            assert!(dir.path().join(format!("{kind}.db")).is_file());
        }
    }
}

/// `ironmesh admin create-user` reads the password from stdin, applies the password policy, and
/// never echoes the password.
#[tokio::test]
async fn admin_create_user_reads_the_password_from_stdin() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let run = |password: &'static str| {
        let mut command = ironmesh(dir.path());
        command
            .args(["admin", "create-user", "--email", "Root@Example.com"])
            .stdin(Stdio::piped());
        async move {
            let mut child = command.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(password.as_bytes()).await.unwrap();
            drop(stdin);
            child.wait_with_output().await.unwrap()
        }
    };
    let weak = run("password1234\n").await;
    assert_eq!(weak.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(stderr.contains("password"), "{stderr}");
    assert!(
        !stderr.contains("password1234"),
        "the password is never echoed: {stderr}"
    );

    let created = run("a long and unusual passphrase\n").await;
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(
        stdout.contains("root@example.com") && stdout.contains("admin"),
        "{stdout}"
    );
}

/// A REST call through the gateway of `ironmesh up` (a real child process exporting over OTLP)
/// is one trace: the gateway's span is the child of the caller's `traceparent`, auth's span the
/// child of the gateway's, all with the caller's trace id, which comes back as `x-trace-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_call_through_up_is_one_trace() {
    let (otlp, mut spans) = ironmesh_testkit::otlp::receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = ironmesh(dir.path());
    all_ports_ephemeral(&mut command);
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"));
    let mut child = command.arg("up").spawn().expect("start ironmesh up");
    let table = read_table(&mut child).await;
    let gateway = table["gateway"].0;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .get(format!("http://{gateway}/.well-known/jwks.json"))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-trace-id"], trace_id);

    // Stopping flushes the exporter.
    sigterm(&child);
    let status = tokio::time::timeout(STOP_LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());

    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut ours = Vec::new();
    let collected = tokio::time::timeout(READY_LIMIT, async {
        while let Some(span) = spans.recv().await {
            if hex(&span.trace_id) == trace_id {
                ours.push(span);
                let gateway_span = ours.iter().find(|s| hex(&s.parent_span_id) == caller_span);
                if let Some(gateway_span) = gateway_span
                    && ours
                        .iter()
                        .any(|s| s.parent_span_id == gateway_span.span_id)
                {
                    return;
                }
            }
        }
    })
    .await;
    assert!(
        collected.is_ok(),
        "gateway and auth spans in one trace: {ours:#?}"
    );
    let gateway_span = ours
        .iter()
        .find(|s| hex(&s.parent_span_id) == caller_span)
        .unwrap();
    let auth_span = ours
        .iter()
        .find(|s| s.parent_span_id == gateway_span.span_id)
        .unwrap();
    assert_eq!(
        ironmesh_testkit::otlp::attribute(auth_span, "rpc.method").as_deref(),
        Some("GetJwks")
    );
}
