//! The job runner against a real mesh, with real programs (shell scripts in a temp dir): the
//! job arrives on stdin (with its decrypted credentials), exit 0 with a JSON object completes it with that result, exit 75
//! retries it, another exit fails it with stderr's tail, cancelling the request kills the
//! program, and a stop lets a running job finish within the grace.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{LIMIT, One, submit};
use ironmesh_proto::ironmesh::provisioning::v1::{self as pb, PriorityTier, RequestState};
use ironmesh_provisioning::worker::{self, WorkerOptions};
use ironmesh_testkit::{Backend, eventually};
use tokio_util::sync::CancellationToken;

/// An executable shell script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A worker running `program` against `one` until the returned token is cancelled.
fn start(one: &One, program: PathBuf) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let options = WorkerOptions {
        program,
        concurrency: 2,
        worker_id: "test".into(),
        grace: Duration::from_secs(10),
        // Heartbeats every 2 s.
        lease: Duration::from_secs(6),
    };
    let (config, token) = (one.mesh.config().clone(), stop.clone());
    let task = tokio::spawn(async move {
        worker::run(&config, options, token)
            .await
            .expect("the worker runs");
    });
    (stop, task)
}

async fn submitted(one: &One, client: &mut common::Client, plan: &str) -> pb::ProvisioningRequest {
    client
        .submit_request(one.op(submit(plan, PriorityTier::Standard, "")))
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap()
}

async fn until_state(
    one: &One,
    client: &common::Client,
    id: &str,
    want: RequestState,
) -> pb::ProvisioningRequest {
    eventually(&format!("request {id} {want:?}"), LIMIT, || {
        let mut client = client.clone();
        let request = one.op(pb::GetRequestRequest {
            request_id: id.to_owned(),
        });
        async move {
            let r = client
                .get_request(request)
                .await
                .ok()?
                .into_inner()
                .request?;
            (r.state() == want).then_some(r)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_decide_the_outcome_and_the_job_comes_on_stdin() {
    let one = One::start(Backend::Sqlite, |s| s.max_attempts = 2).await;
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    // The plan chooses the behaviour: starter succeeds (echoing what it read), professional
    // fails once with 75 then succeeds, enterprise fails for good.
    let program = script(
        dir.path(),
        "provision.sh",
        &format!(
            r#"input=$(cat)
echo "$input" >> "{seen}"
plan=$(printf '%s' "$input" | sed -n 's/.*"plan":"\([a-z]*\)".*/\1/p')
request=$(printf '%s' "$input" | sed -n 's/.*"request_id":"\([^"]*\)".*/\1/p')
attempt=$(printf '%s' "$input" | sed -n 's/.*"attempt":\([0-9]*\).*/\1/p')
case "$plan" in
  starter) printf '{{"tenant_id":"t-%s","seen_plan":"%s"}}' "$request" "$plan" ;;
  professional) if [ "$attempt" = 1 ]; then echo "cloud busy" >&2; exit 75; fi; printf '{{"ok":"yes"}}' ;;
  *) echo "no capacity for $plan" >&2; exit 3 ;;
esac"#,
            seen = seen.display()
        ),
    );
    let mut client = one.client().await;
    let ok = submitted(&one, &mut client, "starter").await;
    let retried = submitted(&one, &mut client, "professional").await;
    let failed = submitted(&one, &mut client, "enterprise").await;
    // The starter request's credentials reach the program on stdin, decrypted.
    let token = format!("tok-{}", uuid::Uuid::now_v7().simple());
    client
        .submit_credentials(one.op(pb::SubmitCredentialsRequest {
            request_id: ok.request_id.clone(),
            kind: "api_token".into(),
            material: [("token".to_owned(), token.clone())].into(),
        }))
        .await
        .unwrap();
    let (stop, task) = start(&one, program);

    let ok = until_state(&one, &client, &ok.request_id, RequestState::Succeeded).await;
    assert_eq!(
        ok.result.get("tenant_id"),
        Some(&format!("t-{}", ok.request_id))
    );
    assert_eq!(
        ok.result.get("seen_plan").map(String::as_str),
        Some("starter")
    );
    let retried = until_state(&one, &client, &retried.request_id, RequestState::Succeeded).await;
    assert_eq!(retried.attempts, 2, "exit 75 was retried");
    assert_eq!(retried.last_error, "cloud busy");
    let failed = until_state(&one, &client, &failed.request_id, RequestState::Failed).await;
    assert_eq!(
        (failed.attempts, failed.last_error.as_str()),
        (1, "no capacity for enterprise")
    );
    let input = std::fs::read_to_string(&seen).unwrap();
    assert!(
        input.contains(&format!("\"request_id\":\"{}\"", ok.request_id)),
        "{input}"
    );
    assert!(
        input.contains(&format!(
            "\"credentials\":{{\"api_token\":{{\"token\":\"{token}\"}}}}"
        )),
        "{input}"
    );
    assert_eq!(
        input.matches("\"credentials\":{}").count(),
        3,
        "the others have none"
    );
    stop.cancel();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
    one.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_request_kills_the_program_and_a_stop_lets_a_job_finish() {
    let one = One::start(Backend::Sqlite, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let (pids, release) = (dir.path().join("pids"), dir.path().join("release"));
    // Records its pid, then waits until the test creates `release` (or forever).
    let program = script(
        dir.path(),
        "wait.sh",
        &format!(
            "cat > /dev/null\necho $$ >> \"{pids}\"\nwhile [ ! -e \"{release}\" ]; do sleep 0.05; done\nprintf '{{}}'",
            pids = pids.display(),
            release = release.display()
        ),
    );
    let (stop, task) = start(&one, program);
    let mut client = one.client().await;
    let doomed = submitted(&one, &mut client, "starter").await;
    let pid = eventually("the program's pid", LIMIT, || {
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        async move { text.lines().next().map(str::to_owned) }
    })
    .await;
    client
        .cancel_request(one.op(pb::CancelRequestRequest {
            request_id: doomed.request_id.clone(),
            reason: "no longer needed".into(),
        }))
        .await
        .unwrap();
    // The next heartbeat (a third of the 6 s lease) finds REQUEST_CANCELLED and kills it.
    eventually("the program killed", LIMIT, || {
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        async move { (!alive).then_some(()) }
    })
    .await;
    let r = until_state(&one, &client, &doomed.request_id, RequestState::Cancelled).await;
    assert!(r.result.is_empty());

    // A stop while a job runs: no more claims, and the running job finishes within the grace.
    let running = submitted(&one, &mut client, "starter").await;
    eventually("the second program running", LIMIT, || {
        let n = std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .lines()
            .count();
        async move { (n == 2).then_some(()) }
    })
    .await;
    stop.cancel();
    submitted(&one, &mut client, "starter").await;
    std::fs::write(&release, "").unwrap();
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
    until_state(&one, &client, &running.request_id, RequestState::Succeeded).await;
    let started = std::fs::read_to_string(&pids).unwrap().lines().count();
    assert_eq!(started, 2, "a stopped worker starts no more programs");
    one.stop().await;
}
