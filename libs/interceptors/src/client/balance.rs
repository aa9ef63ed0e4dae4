//! Load balancing over every endpoint a target names: round robin, skipping for a while an
//! endpoint that just refused a connection (passive ejection), and — for a DNS name — re-resolving
//! periodically, so a Kubernetes headless Service's pods come and go without restarts.
//!
//! Why not tonic's `balance_channel` (tower's power-of-two-choices)? It weighs endpoints by calls
//! in flight, and a dead endpoint that fails instantly always looks least loaded, so it attracts
//! the very retries meant to avoid it. Round robin with ejection sends a retry to the next replica.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tower::{Service, ServiceExt};

use super::{ClientError, ClientTls};
use crate::{BoxError, BoxFuture, Request, Response};

/// Where a client sends its calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Fixed endpoints (IP literals, or several URIs).
    Static(Vec<Uri>),
    /// One DNS name, re-resolved periodically; `https` selects TLS.
    Dns {
        https: bool,
        host: String,
        port: u16,
    },
}

impl Target {
    /// `http://10.0.0.1:50052`, `http://a:1,http://b:2`, or `http://orders:50052` (DNS).
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::Target {
            target: text.to_owned(),
            reason: reason.to_owned(),
        };
        let uris = text
            .split(',')
            .map(|part| {
                part.trim()
                    .parse::<Uri>()
                    .map_err(|e| invalid(&e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for uri in &uris {
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(invalid("expected http://host:port or https://host:port"));
            }
        }
        if let [uri] = uris.as_slice() {
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            if host.parse::<IpAddr>().is_err() {
                let https = uri.scheme_str() == Some("https");
                let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
                return Ok(Target::Dns {
                    https,
                    host: host.to_owned(),
                    port,
                });
            }
        }
        Ok(Target::Static(uris))
    }
}

/// One endpoint: its channel (connects lazily, reconnects by itself) and ejection state.
struct Slot {
    uri: Uri,
    channel: Channel,
    ejected_until: Mutex<Option<Instant>>,
}

struct Shared {
    slots: RwLock<Vec<Arc<Slot>>>,
    /// Turns true once the first DNS lookup has finished (at once for static targets), so calls
    /// made right after start wait for endpoints instead of failing.
    resolved: tokio::sync::watch::Sender<bool>,
    next: AtomicUsize,
    /// The logical service (`auth`), the only name callers' errors carry.
    upstream: Arc<str>,
    tls: Option<ClientTls>,
    connect_timeout: Duration,
    ejection: Duration,
}

impl Shared {
    fn slot(&self, uri: Uri, tls_host: &str) -> Result<Arc<Slot>, BoxError> {
        let mut endpoint = Endpoint::from(uri.clone())
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.config(tls_host))?;
        }
        Ok(Arc::new(Slot {
            uri,
            channel: endpoint.connect_lazy(),
            ejected_until: Mutex::new(None),
        }))
    }

    /// The next endpoint in turn that is not ejected (or, if all are, the next one anyway).
    fn pick(&self) -> Option<Arc<Slot>> {
        let slots = self.slots.read();
        if slots.is_empty() {
            return None;
        }
        let now = Instant::now();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let available = |slot: &Slot| slot.ejected_until.lock().is_none_or(|until| until <= now);
        (0..slots.len())
            .map(|i| &slots[(start + i) % slots.len()])
            .find(|slot| available(slot))
            .or_else(|| slots.get(start % slots.len()))
            .cloned()
    }

    /// Swaps in a freshly resolved address set, keeping channels of addresses that stayed.
    fn replace(&self, addrs: &[SocketAddr], https: bool, host: &str) {
        let current: HashMap<Uri, Arc<Slot>> = self
            .slots
            .read()
            .iter()
            .map(|slot| (slot.uri.clone(), slot.clone()))
            .collect();
        let scheme = if https { "https" } else { "http" };
        let mut next = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let Ok(uri) = format!("{scheme}://{addr}").parse::<Uri>() else {
                continue;
            };
            match current.get(&uri) {
                Some(slot) => next.push(slot.clone()),
                None => match self.slot(uri, host) {
                    Ok(slot) => next.push(slot),
                    Err(err) => tracing::warn!(error = %err, "cannot use resolved endpoint"),
                },
            }
        }
        if next.len() != current.len() || next.iter().any(|s| !current.contains_key(&s.uri)) {
            tracing::info!(host, endpoints = next.len(), "endpoints changed");
        }
        *self.slots.write() = next;
    }
}

/// The balanced service at the bottom of the client stack.
#[derive(Clone)]
pub struct Balanced {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Balanced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uris: Vec<String> = self
            .shared
            .slots
            .read()
            .iter()
            .map(|s| s.uri.to_string())
            .collect();
        f.debug_struct("Balanced")
            .field("endpoints", &uris)
            .finish()
    }
}

impl Balanced {
    pub(super) fn new(
        upstream: Arc<str>,
        target: Target,
        tls: Option<ClientTls>,
        connect_timeout: Duration,
        ejection: Duration,
        resolve_every: Duration,
    ) -> Result<Self, ClientError> {
        let shared = Arc::new(Shared {
            slots: RwLock::new(Vec::new()),
            resolved: tokio::sync::watch::Sender::new(false),
            next: AtomicUsize::new(0),
            upstream,
            tls,
            connect_timeout,
            ejection,
        });
        match target {
            Target::Static(uris) => {
                let mut slots = Vec::with_capacity(uris.len());
                for uri in uris {
                    let host = uri.host().unwrap_or_default().to_owned();
                    let slot =
                        shared
                            .slot(uri.clone(), &host)
                            .map_err(|e| ClientError::Target {
                                target: uri.to_string(),
                                reason: e.to_string(),
                            })?;
                    slots.push(slot);
                }
                *shared.slots.write() = slots;
                shared.resolved.send_replace(true);
            }
            Target::Dns { https, host, port } => {
                tokio::spawn(resolve_loop(
                    Arc::downgrade(&shared),
                    https,
                    host,
                    port,
                    resolve_every,
                ));
            }
        }
        Ok(Self { shared })
    }
}

/// Re-resolves `host:port` every `every` until the balancer is dropped. A failed lookup keeps the
/// last known endpoints (DNS hiccups must not empty the pool).
async fn resolve_loop(shared: Weak<Shared>, https: bool, host: String, port: u16, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(strong) = shared.upgrade() else {
            return;
        };
        match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(addrs) => {
                let mut addrs: Vec<SocketAddr> = addrs.collect();
                addrs.sort();
                addrs.dedup();
                strong.replace(&addrs, https, &host);
            }
            Err(err) => tracing::warn!(host, error = %err, "DNS lookup failed; keeping endpoints"),
        }
        strong.resolved.send_replace(true);
    }
}

impl Service<Request> for Balanced {
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each endpoint's channel has its own buffer; readiness is checked per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            // Bounded by the call's deadline, applied further out.
            let _ = shared.resolved.subscribe().wait_for(|done| *done).await;
            let Some(slot) = shared.pick() else {
                tracing::warn!(upstream = %shared.upstream, "no endpoints resolved yet");
                return Err(unavailable(&shared.upstream));
            };
            match slot.channel.clone().oneshot(request).await {
                Ok(response) => {
                    *slot.ejected_until.lock() = None;
                    // h2's answer to a header list over the server's limit: an HTTP status, no
                    // gRPC status (tonic would call it UNKNOWN, a failure to the breaker).
                    if response.status() == http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE {
                        tracing::info!(upstream = %shared.upstream, endpoint = %slot.uri, "the upstream refused the request's metadata as too large");
                        return Err(metadata_too_large(&shared.upstream));
                    }
                    Ok(response.map(tonic::body::Body::new))
                }
                // tonic's channel also enforces the `grpc-timeout` we sent; running out of time
                // is this call's deadline, not a fault of the endpoint.
                Err(err) if timed_out(&err) => Err(Box::new(tonic::Status::deadline_exceeded(
                    "deadline exceeded waiting for the upstream",
                )) as BoxError),
                // The peer is alive and judged this request (see `refused_request`): the
                // endpoint stays in, and the breaker sees a caller's error, not a failure.
                Err(err) if refused_request(&err) => {
                    tracing::info!(upstream = %shared.upstream, endpoint = %slot.uri, error = %err, "the upstream refused the request's metadata as too large");
                    Err(metadata_too_large(&shared.upstream))
                }
                Err(err) => {
                    // A transport error (refused, reset, unreachable) ejects the endpoint. The
                    // endpoint and the cause go to the log; the caller learns only which
                    // service is unavailable (the message may travel as far as a REST client).
                    *slot.ejected_until.lock() = Some(Instant::now() + shared.ejection);
                    tracing::warn!(upstream = %shared.upstream, endpoint = %slot.uri, error = %err, "endpoint unreachable; ejected");
                    Err(unavailable(&shared.upstream))
                }
            }
        })
    }
}

/// UNAVAILABLE naming the logical service only: never an address, a port or a cause.
fn unavailable(upstream: &str) -> BoxError {
    Box::new(tonic::Status::unavailable(format!(
        "{upstream} is unavailable"
    )))
}

/// RESOURCE_EXHAUSTED, as gRPC answers metadata over the peer's limit: the request's fault (not
/// retried, not a breaker failure).
fn metadata_too_large(upstream: &str) -> BoxError {
    Box::new(tonic::Status::resource_exhausted(format!(
        "request metadata too large for {upstream}"
    )))
}

/// The peer refused this request with HTTP/2 ENHANCE_YOUR_CALM — h2 (hyper, tonic) sends it, as
/// a GOAWAY, for a header list far over its limit. gRPC's HTTP/2 mapping makes it
/// RESOURCE_EXHAUSTED: about what was sent, not about the peer's health (a dead endpoint fails
/// to connect or resets without a reason).
fn refused_request(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.is_remote() && h2.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM);
        }
        current = err.source();
    }
    false
}

fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<tonic::TimeoutExpired>() {
            return true;
        }
        current = err.source();
    }
    false
}
