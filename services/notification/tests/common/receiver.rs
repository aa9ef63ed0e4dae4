//! What the webhook integration tests share beyond `common`: a scripted receiver (an axum
//! server on 127.0.0.1:0 recording every request's path, headers, body and arrival instant on a
//! channel the test reads — never a sleep), the independent verifier (Python's
//! `standardwebhooks`, fed on stdin so no secret is in argv or output), and the gRPC calls the
//! webhook tests repeat (create an endpoint, read a notification's deliveries, wait for a state).
#![allow(dead_code)]

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use ironmesh_proto::ironmesh::notification::v1 as pb;
use ironmesh_testkit::{authed, eventually};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use crate::common::{Client, LIMIT};

/// The longest a test waits for the receiver's next request.
pub const WAIT: Duration = Duration::from_secs(20);

/// What the receiver answers one request with.
pub enum Reply {
    /// A status and headers, empty body.
    Status(u16, Vec<(&'static str, String)>),
    /// Takes the request and never answers (until the receiver is dropped).
    Hang,
}

pub fn status(code: u16) -> Reply {
    Reply::Status(code, Vec::new())
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived (before the script answered).
    pub at: Instant,
}

impl Received {
    /// A header's value ("" when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id")
    }

    pub fn timestamp(&self) -> i64 {
        self.header("webhook-timestamp")
            .parse()
            .expect("webhook-timestamp is unix seconds")
    }

    /// The space-separated entries of `webhook-signature`.
    pub fn signatures(&self) -> Vec<&str> {
        self.header("webhook-signature").split(' ').collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// (index of the request at this receiver, from 0; its path) → the answer.
type Script = Box<dyn Fn(usize, &str) -> Reply + Send + Sync>;

struct Shared {
    script: Script,
    count: AtomicUsize,
    seen: mpsc::UnboundedSender<Received>,
    released: CancellationToken,
}

/// A scripted HTTP receiver on 127.0.0.1, stopped (and its hung requests released) when
/// dropped.
pub struct Receiver {
    pub base: String,
    requests: mpsc::UnboundedReceiver<Received>,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.released.cancel();
        self.server.abort();
    }
}

impl Receiver {
    pub async fn start(script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (seen, requests) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            script: Box::new(script),
            count: AtomicUsize::new(0),
            seen,
            released: CancellationToken::new(),
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base,
            requests,
            shared,
            server,
        }
    }

    /// A receiver that answers 200 to everything.
    pub async fn ok() -> Self {
        Self::start(|_, _| status(200)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Requests received so far (including those already read).
    pub fn count(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// The next request (bounded by [`WAIT`]).
    pub async fn next(&mut self) -> Received {
        timeout(WAIT, self.requests.recv())
            .await
            .expect("no request reached the receiver within the wait")
            .expect("receiver stopped")
    }

    /// The next `n` requests.
    pub async fn take(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// Nothing (more) has arrived. Sound once the attempts in question have been recorded:
    /// the receiver records a request before it answers, and an attempt ends after the answer.
    pub fn assert_idle(&mut self, what: &str) {
        if let Ok(request) = self.requests.try_recv() {
            panic!("{what}: unexpected request to {}", request.path);
        }
    }
}

async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let at = Instant::now();
    let path = request.uri().path().to_owned();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let index = shared.count.fetch_add(1, Ordering::SeqCst);
    let reply = (shared.script)(index, &path);
    let _ = shared.seen.send(Received {
        path,
        headers: parts.headers,
        body,
        at,
    });
    match reply {
        Reply::Status(code, headers) => {
            let mut response = Response::builder().status(code);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(Body::empty()).unwrap()
        }
        Reply::Hang => {
            shared.released.cancelled().await;
            Response::builder().status(503).body(Body::empty()).unwrap()
        }
    }
}

/// The independent verifier: Python's `standardwebhooks` (the secret and the message on stdin).
pub struct Verifier {
    python: String,
}

const VERIFY: &str = r#"
import base64, json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
case = json.load(sys.stdin)
try:
    Webhook(case["secret"]).verify(base64.b64decode(case["body"]), case["headers"])
except WebhookVerificationError:
    sys.exit(3)
print("verified")
"#;

impl Verifier {
    /// `None` (with a note) where no Python has the package; never in CI.
    pub fn new() -> Option<Self> {
        crate::common::python_with("standardwebhooks").map(|python| Self { python })
    }

    /// Whether `secret` alone verifies `request` (its own id, timestamp, signatures, body).
    pub async fn verifies(&self, secret: &str, request: &Received) -> bool {
        let case = serde_json::json!({
            "secret": secret,
            "body": base64::engine::general_purpose::STANDARD.encode(&request.body),
            "headers": {
                "webhook-id": request.webhook_id(),
                "webhook-timestamp": request.header("webhook-timestamp"),
                "webhook-signature": request.header("webhook-signature"),
            },
        });
        let mut child = tokio::process::Command::new(&self.python)
            .args(["-c", VERIFY])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start python");
        let mut stdin = child.stdin.take().expect("python's stdin");
        stdin
            .write_all(case.to_string().as_bytes())
            .await
            .expect("feed python");
        drop(stdin);
        let out = timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .expect("the python verifier finishes within 20 s")
            .expect("python's output");
        match out.status.code() {
            Some(0) => {
                assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified");
                true
            }
            Some(3) => false,
            _ => panic!(
                "the python verifier failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

/// Registers `url` for the owner of `token`: (endpoint, signing secret).
pub async fn create_endpoint(
    client: &mut Client,
    token: &str,
    url: &str,
    event_types: &[&str],
) -> (pb::WebhookEndpoint, String) {
    let request = pb::CreateWebhookEndpointRequest {
        endpoint: Some(pb::WebhookEndpoint {
            url: url.to_owned(),
            description: "test receiver".to_owned(),
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        }),
    };
    let created = client
        .create_webhook_endpoint(authed(request, token))
        .await
        .unwrap_or_else(|status| panic!("CreateWebhookEndpoint: {status:?}"))
        .into_inner();
    (
        created.endpoint.expect("an endpoint"),
        created.signing_secret,
    )
}

/// Deliveries matching `filter`, as the owner of `token` sees them (newest first).
pub async fn deliveries(
    client: &mut Client,
    token: &str,
    filter: pb::ListDeliveriesRequest,
) -> Vec<pb::Delivery> {
    let request = pb::ListDeliveriesRequest {
        page_size: 200,
        ..filter
    };
    client
        .list_deliveries(authed(request, token))
        .await
        .unwrap_or_else(|status| panic!("ListDeliveries: {status:?}"))
        .into_inner()
        .deliveries
}

/// The deliveries of one notification.
pub async fn of_notification(
    client: &mut Client,
    token: &str,
    notification_id: &str,
) -> Vec<pb::Delivery> {
    let filter = pb::ListDeliveriesRequest {
        notification_id: notification_id.to_owned(),
        ..Default::default()
    };
    deliveries(client, token, filter).await
}

/// The one delivery of `notification_id` to `endpoint_id`, once `done` holds for it.
pub async fn await_delivery(
    client: &mut Client,
    token: &str,
    notification_id: &str,
    endpoint_id: &str,
    what: &str,
    done: impl Fn(&pb::Delivery) -> bool,
) -> pb::Delivery {
    eventually(what, LIMIT, || {
        let mut client = client.clone();
        let done = &done;
        async move {
            of_notification(&mut client, token, notification_id)
                .await
                .into_iter()
                .find(|d| d.endpoint_id == endpoint_id && done(d))
        }
    })
    .await
}

pub fn state(d: &pb::Delivery) -> pb::DeliveryState {
    pb::DeliveryState::try_from(d.state).expect("a known delivery state")
}

pub fn is(wanted: pb::DeliveryState) -> impl Fn(&pb::Delivery) -> bool {
    move |d| state(d) == wanted
}

/// The caller's endpoints.
pub async fn endpoints(client: &mut Client, token: &str) -> Vec<pb::WebhookEndpoint> {
    client
        .list_webhook_endpoints(authed(pb::ListWebhookEndpointsRequest::default(), token))
        .await
        .unwrap_or_else(|status| panic!("ListWebhookEndpoints: {status:?}"))
        .into_inner()
        .endpoints
}
