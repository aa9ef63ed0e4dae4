//! The bench's webhook receivers, on their own tokio runtime (one worker thread) in this
//! process, on 127.0.0.1:
//! - [`Receiver`]: an HTTP/1.1 server (hyper) answering every request 204 once its body is
//!   read, counting requests and recording each one's arrival time and `webhook-id`; it keeps
//!   the first delivery's headers and body (what wrk replays). It can **hold** requests (read,
//!   recorded, not answered) until released: how the engine-alone run queues a backlog.
//! - [`Hanging`]: a listener that accepts TCP connections and never reads or answers them: the
//!   hanging endpoint of the isolation run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::BenchError;

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub webhook_id: String,
    /// When its head was read, µs since the Unix epoch (the server's clock: same host).
    pub at_us: i64,
}

/// The first delivery's request, as received.
#[derive(Clone, Debug)]
pub struct Captured {
    /// Every header but those wrk sets itself (`host`, `content-length`, `connection`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

struct State {
    arrivals: Mutex<Vec<Arrival>>,
    count: AtomicU64,
    answered: AtomicU64,
    held: AtomicU64,
    captured: AtomicBool,
    first: Mutex<Option<Captured>>,
    hold: watch::Receiver<bool>,
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The receivers' runtime; shut down in the background when dropped (it may be dropped inside
/// the bench's async code).
pub struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    pub fn start() -> Result<Self, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-receiver")
            .enable_all()
            .build()
            .map_err(BenchError::io("cannot start the receiver's runtime"))?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("the runtime runs until dropped")
    }

    /// Binds 127.0.0.1:0 on this runtime.
    fn bind(&self) -> Result<(TcpListener, SocketAddr), BenchError> {
        let std = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(BenchError::io("cannot bind a receiver"))?;
        std.set_nonblocking(true)
            .map_err(BenchError::io("cannot bind a receiver"))?;
        let _entered = self.handle().enter();
        let listener =
            TcpListener::from_std(std).map_err(BenchError::io("cannot bind a receiver"))?;
        let addr = listener
            .local_addr()
            .map_err(BenchError::io("cannot bind a receiver"))?;
        Ok((listener, addr))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The 204 receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    hold: watch::Sender<bool>,
    stop: CancellationToken,
}

impl Receiver {
    pub fn start(runtime: &Runtime) -> Result<Self, BenchError> {
        let (listener, addr) = runtime.bind()?;
        let (hold, held) = watch::channel(false);
        let state = Arc::new(State {
            arrivals: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            held: AtomicU64::new(0),
            captured: AtomicBool::new(false),
            first: Mutex::new(None),
            hold: held,
        });
        let stop = CancellationToken::new();
        let (accepting, token) = (state.clone(), stop.clone());
        runtime.handle().spawn(async move {
            loop {
                let stream = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let _ = stream.set_nodelay(true);
                let state = accepting.clone();
                let token = token.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| handle(state.clone(), request));
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = connection => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            state,
            hold,
            stop,
        })
    }

    /// Requests received since the last [`Self::take`] (held ones included).
    pub fn count(&self) -> u64 {
        self.state.count.load(Ordering::Acquire)
    }

    /// Requests being held now.
    pub fn held(&self) -> u64 {
        self.state.held.load(Ordering::Acquire)
    }

    /// The arrivals recorded since the last call (answered ones; held ones once released),
    /// and the count starts again from zero.
    pub fn take(&self) -> Vec<Arrival> {
        let mut arrivals = self.state.arrivals.lock();
        self.state.count.store(0, Ordering::Release);
        self.state.answered.store(0, Ordering::Release);
        std::mem::take(&mut *arrivals)
    }

    /// Forgets the captured request: the next delivery is captured instead.
    pub fn recapture(&self) {
        *self.state.first.lock() = None;
        self.state.captured.store(false, Ordering::Release);
    }

    pub fn captured(&self) -> Option<Captured> {
        self.state.first.lock().clone()
    }

    /// Hold every request from now on (true), or answer them, held ones first (false).
    pub fn hold(&self, hold: bool) {
        let _ = self.hold.send(hold);
    }

    /// Waits until at least `n` requests are held; false after `limit`.
    pub async fn wait_for_held(&self, n: u64, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while self.held() < n {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Requests recorded (answered, or released) since the last [`Self::take`].
    pub fn answered(&self) -> u64 {
        self.state.answered.load(Ordering::Acquire)
    }

    /// Waits until at least `n` requests are recorded; false after `limit`.
    pub async fn wait_for(&self, n: u64, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while self.answered() < n {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.hold(false);
        self.stop.cancel();
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let at_us = now_us();
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let webhook_id = parts
        .headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !webhook_id.is_empty() && !state.captured.swap(true, Ordering::AcqRel) {
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| !["host", "content-length", "connection"].contains(&name.as_str()))
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect();
        *state.first.lock() = Some(Captured {
            headers,
            body: body.to_vec(),
        });
    }
    state.count.fetch_add(1, Ordering::AcqRel);
    let mut hold = state.hold.clone();
    if *hold.borrow() {
        state.held.fetch_add(1, Ordering::AcqRel);
        let _ = hold.wait_for(|held| !*held).await;
        state.held.fetch_sub(1, Ordering::AcqRel);
    }
    state.arrivals.lock().push(Arrival { webhook_id, at_us });
    state.answered.fetch_add(1, Ordering::AcqRel);
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// Accepts connections and never answers; [`Hanging::close`] drops them and stops listening
/// (later attempts are refused at once).
pub struct Hanging {
    pub addr: SocketAddr,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Hanging {
    pub fn start(runtime: &Runtime) -> Result<Self, BenchError> {
        let (listener, addr) = runtime.bind()?;
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (held, count, token) = (connections.clone(), accepted.clone(), stop.clone());
        runtime.handle().spawn(async move {
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            count.fetch_add(1, Ordering::AcqRel);
                            held.lock().push(stream);
                        }
                    }
                }
            }
        });
        Ok(Self {
            addr,
            connections,
            accepted,
            stop,
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }

    pub fn close(&self) {
        self.stop.cancel();
        self.connections.lock().clear();
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.close();
    }
}
