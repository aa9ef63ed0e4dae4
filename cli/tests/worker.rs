//! `ironmesh worker --exec examples/provision.sh` as an operator runs it: the real binary and
//! the shipped example program, against a running mesh, take a request from QUEUED to
//! SUCCEEDED; SIGTERM stops the worker cleanly.

use std::process::Stdio;
use std::time::Duration;

use ironmesh_proto::ironmesh::provisioning::v1 as pb;
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{Backend, TestMesh, authed, eventually};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_program_takes_a_request_to_succeeded() {
    let mesh = TestMesh::start(
        Backend::Sqlite,
        &[ServiceKind::Auth, ServiceKind::Provisioning],
    )
    .await;
    let ada = mesh.customer().await;
    let mut client = mesh.provisioning().await;
    let request = client
        .submit_request(authed(
            pb::SubmitRequestRequest {
                plan: "professional".into(),
                priority_tier: pb::PriorityTier::Standard.into(),
                ..Default::default()
            },
            &ada.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    assert_eq!(request.state(), pb::RequestState::Queued);

    let config = mesh.config();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/provision.sh");
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_ironmesh"))
        .args(["worker", "--exec", example, "--worker-id", "ci-worker"])
        .env("IRONMESH_DATA_DIR", &config.data_dir)
        .env(
            "IRONMESH_SERVICE_IDENTITY__SECRET",
            config
                .service_identity
                .secret
                .as_deref()
                .expect("the test config has one"),
        )
        .env(
            "IRONMESH_PROVISIONING__ENDPOINT",
            format!("http://{}", mesh.grpc_addr(ServiceKind::Provisioning)),
        )
        .env("IRONMESH_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the worker");

    let done = eventually("the request SUCCEEDED", LIMIT, || {
        let mut client = client.clone();
        let get = authed(
            pb::GetRequestRequest {
                request_id: request.request_id.clone(),
            },
            &ada.access_token,
        );
        async move {
            let r = client.get_request(get).await.ok()?.into_inner().request?;
            (r.state() == pb::RequestState::Succeeded).then_some(r)
        }
    })
    .await;
    assert_eq!(
        done.result.get("plan").map(String::as_str),
        Some("professional")
    );
    assert_eq!(
        done.result.get("tenant_id"),
        Some(&format!("tenant-{}", request.request_id))
    );

    let pid = worker.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(LIMIT, worker.wait())
        .await
        .unwrap()
        .unwrap();
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt as _;
    worker
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(status.success(), "a clean stop: {status:?}\n{stderr}");
    assert!(stderr.contains("\"outcome\":\"succeeded\""), "{stderr}");
    assert!(mesh.shutdown().await.is_empty());
}
