//! Inbound webhooks through the gateway (REST, raw body, headers passed through), on both
//! backends: a valid Standard Webhooks report → 2xx and its effect on the running request;
//! one byte changed → 401; 301 s of skew → 401; the same id again → 2xx `duplicate: true` and
//! no second effect; a rotated second secret passes; malformed headers → 400; a GitHub-scheme
//! source verifies its signature; an unknown source is 404.

mod common;

use std::time::Duration;

use common::{One, claim, submit};
use ironmesh_proto::ironmesh::provisioning::v1::{self as pb, PriorityTier, RequestState};
use ironmesh_provisioning::inbound::{Scheme, WebhookSource};
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{TestMesh, backends};

const NEW: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD: &str = "whsec_dGhlIG9sZCBzZWNyZXQgb2YgdGhpcyBzb3VyY2U=";
const GITHUB: &str = "a github secret";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signed(secret: &str, id: &str, ts: i64, body: &str) -> Vec<(&'static str, String)> {
    let hook = standardwebhooks::Webhook::new(secret).unwrap();
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        (
            "webhook-signature",
            hook.sign(id, ts, body.as_bytes()).unwrap(),
        ),
    ]
}

fn github_signed(id: &str, body: &str) -> Vec<(&'static str, String)> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, GITHUB.as_bytes());
    let tag = ring::hmac::sign(&key, body.as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    vec![
        ("x-github-delivery", id.to_owned()),
        ("x-hub-signature-256", format!("sha256={hex}")),
    ]
}

async fn post(
    mesh: &TestMesh,
    source: &str,
    headers: &[(&'static str, String)],
    body: &str,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/provisioning/webhooks/{source}",
            mesh.gateway_addr()
        ))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_reports_move_running_requests_and_everything_else_is_refused() {
    for backend in backends() {
        // The gateway is ready only when every service is: the whole mesh.
        let mesh = TestMesh::start_with(backend, &ServiceKind::ALL, true, |c| {
            common::settings(c, |s| {
                s.webhook_sources = vec![
                    WebhookSource {
                        name: "backend".into(),
                        scheme: Scheme::StandardWebhooks,
                        secrets: vec![NEW.into(), OLD.into()],
                    },
                    WebhookSource {
                        name: "gh".into(),
                        scheme: Scheme::Github,
                        secrets: vec![GITHUB.into()],
                    },
                ]
            })
        })
        .await;
        let admin = mesh.admin().await;
        let one = One {
            worker: common::worker_token(mesh.config()),
            mesh,
            admin,
        };
        let mut client = one.client().await;
        let mut running = Vec::new();
        for _ in 0..2 {
            client
                .submit_request(one.op(submit("starter", PriorityTier::Standard, "")))
                .await
                .unwrap();
            let job = client
                .claim_job(one.work(claim("ext", Duration::ZERO)))
                .await
                .unwrap();
            running.push(job.into_inner().job.unwrap());
        }
        let (first, second) = (&running[0], &running[1]);
        let reader = client.clone();
        let state = |id: String| {
            let mut client = reader.clone();
            let request = one.op(pb::GetRequestRequest { request_id: id });
            async move {
                client
                    .get_request(request)
                    .await
                    .unwrap()
                    .into_inner()
                    .request
                    .unwrap()
            }
        };

        let done = format!(
            r#"{{"status":"succeeded","request_id":"{}","result":{{"tenant":"t-9"}}}}"#,
            first.request_id
        );
        // Tampered and stale first: refused, nothing happens.
        let mut tampered = done.clone();
        tampered.replace_range(1..2, "S");
        let (status, _) = post(
            &one.mesh,
            "backend",
            &signed(NEW, "msg_1", now(), &done),
            &tampered,
        )
        .await;
        assert_eq!(status, 401, "{backend:?}: one byte changed");
        let (status, _) = post(
            &one.mesh,
            "backend",
            &signed(NEW, "msg_1", now() - 301, &done),
            &done,
        )
        .await;
        assert_eq!(status, 401, "301 s of skew");
        let mut no_signature = signed(NEW, "msg_1", now(), &done);
        no_signature.pop();
        let (status, body) = post(&one.mesh, "backend", &no_signature, &done).await;
        assert_eq!(status, 400, "malformed headers: {body}");
        let mut garbled = signed(NEW, "msg_1", now(), &done);
        garbled[1].1 = "yesterday".into();
        let (status, _) = post(&one.mesh, "backend", &garbled, &done).await;
        assert_eq!(status, 400, "a timestamp that is not a number");
        assert_eq!(
            state(first.request_id.clone()).await.state(),
            RequestState::Running
        );

        // Valid: the request SUCCEEDED with the reported result; the same id again is a
        // duplicate and changes nothing.
        let (status, body) = post(
            &one.mesh,
            "backend",
            &signed(NEW, "msg_1", now(), &done),
            &done,
        )
        .await;
        // (JSON omits a false `duplicate`.)
        assert_eq!(
            (status, body["duplicate"].as_bool().unwrap_or(false)),
            (200, false),
            "{body}"
        );
        assert_eq!(body["webhookId"], "msg_1");
        let r = state(first.request_id.clone()).await;
        assert_eq!(r.state(), RequestState::Succeeded);
        assert_eq!(r.result.get("tenant").map(String::as_str), Some("t-9"));
        let (status, body) = post(
            &one.mesh,
            "backend",
            &signed(NEW, "msg_1", now(), &done),
            &done,
        )
        .await;
        assert_eq!(
            (status, body["duplicate"].clone()),
            (200, true.into()),
            "{body}"
        );
        assert_eq!(state(first.request_id.clone()).await, r, "no second effect");

        // The rotated (older) secret still verifies: a failure report requeues the second.
        let failed = format!(
            r#"{{"status":"failed","request_id":"{}","error":"region full","retryable":true}}"#,
            second.request_id
        );
        let (status, _) = post(
            &one.mesh,
            "backend",
            &signed(OLD, "msg_2", now(), &failed),
            &failed,
        )
        .await;
        assert_eq!(status, 200);
        let r = state(second.request_id.clone()).await;
        assert_eq!(
            (r.state(), r.last_error.as_str()),
            (RequestState::Queued, "region full")
        );

        // GitHub's scheme: claimed again, then reported done through the other source.
        let job = client
            .claim_job(one.work(claim("ext", Duration::from_secs(10))))
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        let gh = format!(
            r#"{{"status":"succeeded","request_id":"{}"}}"#,
            job.request_id
        );
        let (status, _) = post(
            &one.mesh,
            "gh",
            &github_signed("gh-1", &format!("{gh} ")),
            &gh,
        )
        .await;
        assert_eq!(status, 401, "GitHub's signature covers the exact bytes");
        let (status, body) = post(&one.mesh, "gh", &github_signed("gh-1", &gh), &gh).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            state(job.request_id.clone()).await.state(),
            RequestState::Succeeded
        );

        let (status, _) = post(&one.mesh, "nobody", &signed(NEW, "m", now(), &gh), &gh).await;
        assert_eq!(status, 404, "an unknown source");
        one.stop().await;
    }
}
