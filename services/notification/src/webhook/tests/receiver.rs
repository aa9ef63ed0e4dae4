//! The test receiver: an axum server on loopback whose answer is scripted per test, recording
//! every request (path, headers, body, arrival time) on a channel the test reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

/// The longest any test waits for the receiver.
pub(super) const WAIT: Duration = Duration::from_secs(10);
pub(super) static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// What a receiver does with one request.
pub(super) enum Reply {
    Status(u16, Vec<(&'static str, String)>),
    Hang,
    /// `chunks` × 64 KiB, counting in `produced` what the server generated.
    Stream(usize, Arc<AtomicUsize>),
}

pub(super) fn status(code: u16) -> Reply {
    Reply::Status(code, Vec::new())
}

/// One request as the receiver saw it.
#[derive(Debug)]
pub(super) struct Received {
    pub(super) path: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
    pub(super) at: Instant,
}

type Script = Box<dyn Fn(&str, &str) -> Reply + Send + Sync>;

struct Shared {
    /// (path, receiver base URL) → reply.
    script: Script,
    base: String,
    seen: mpsc::UnboundedSender<Received>,
}

/// A scripted HTTP receiver on 127.0.0.1, stopped when dropped.
pub(super) struct Receiver {
    pub(super) base: String,
    requests: mpsc::UnboundedReceiver<Received>,
    server: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    pub(super) async fn start(
        script: impl Fn(&str, &str) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (seen, requests) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            script: Box::new(script),
            base: base.clone(),
            seen,
        });
        let app = axum::Router::new().fallback(receive).with_state(shared);
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base,
            requests,
            server,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next request received (bounded by [`WAIT`]).
    pub(super) async fn next(&mut self) -> Received {
        let next = timeout(WAIT, self.requests.recv()).await;
        next.expect("no request within the wait")
            .expect("receiver stopped")
    }

    /// Nothing (more) arrived. Called after `post` returned: a request it made was answered,
    /// so its record is already in the channel.
    pub(super) fn assert_idle(&mut self) {
        if let Ok(request) = self.requests.try_recv() {
            panic!("unexpected request to {}", request.path);
        }
    }
}

async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let reply = (shared.script)(&path, &shared.base);
    let at = Instant::now();
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
        Reply::Hang => std::future::pending().await,
        Reply::Stream(chunks, produced) => {
            let chunk = move || {
                produced.fetch_add(CHUNK.len(), Ordering::Relaxed);
                Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK))
            };
            Response::new(Body::from_stream(
                futures_util::stream::repeat_with(chunk).take(chunks),
            ))
        }
    }
}
