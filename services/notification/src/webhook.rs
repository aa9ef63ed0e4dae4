//! The webhook sender: one signed HTTP POST attempt to a customer endpoint, made safely. The
//! delivery engine decides when to call it and what to do with the [`Attempt`]; this module
//! only makes the attempt and classifies it.
//!
//! # Safety rules
//! - **SSRF, three times.** The URL passes [`ssrf::check_url`] (scheme, shape, literal
//!   addresses) before anything is sent. The only connector (`connect`) resolves with
//!   [`ssrf::resolve`] and connects only to the addresses it returned, then checks the peer
//!   the socket actually reached; the response carries that peer, and it is checked once more
//!   before the answer counts (DNS rebinding; unknown peers fail closed). A refusal names the
//!   category ("loopback"), never the address.
//! - **Nothing followed, nothing ambient.** Redirects are never followed (a 3xx is a failure),
//!   no proxy is consulted, nothing is retried (hyper-util only replaces a pooled connection
//!   found closed before the request was written): one call, at most one request, to the URL
//!   the endpoint registered.
//! - **Bounded.** A connect timeout and a whole-attempt deadline (connect, TLS, send, response
//!   head, body); the response body is read up to `max_response_bytes` and then dropped with
//!   its connection, so a receiver cannot make us buffer or wait for an unbounded body. The
//!   outcome is decided by the status line: a 2xx whose body is slow is still delivered.
//! - **TLS** is rustls with the *ring* provider and the compiled-in Mozilla roots
//!   (`webpki-roots`), so the sender works in images without a CA store and pulls in neither
//!   aws-lc-rs nor OpenSSL. HTTP/1.1 only, on hyper-util's pooled client. (Not reqwest: its
//!   rustls features unify into every reqwest client in the workspace, which then finds no
//!   crypto provider.)
//! - **Quiet errors.** [`Attempt::error`] is short and safe to store and show to the endpoint's
//!   owner: no secrets, no response bodies, no resolved internal addresses.
//!
//! Headers: `content-type: application/json`, `user-agent: Ironmesh-Webhooks/1` and the
//! Standard Webhooks trio from [`signing::sign`] with a fresh timestamp per attempt (both
//! signatures, space-separated, during a rotation).

use std::error::Error as _;
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT as UA};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::{Instant, timeout_at};

use crate::signing::{self, Secret};
use crate::ssrf::{self, Policy, Refusal};
use connect::{ConnectFailure, GuardedConnector, Peer};

mod connect;

/// The `user-agent` of every attempt.
pub const USER_AGENT: &str = "Ironmesh-Webhooks/1";
/// The longest `Retry-After` honoured; longer asks are shortened to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How the sender behaves; fixed for the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The SSRF policy (both flags off in production).
    pub policy: Policy,
    /// TCP connect (per address tried).
    pub connect_timeout: Duration,
    /// The whole attempt, from resolution to the last body byte read.
    pub timeout: Duration,
    /// Response body bytes read before the response is dropped.
    pub max_response_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_response_bytes: 4096,
        }
    }
}

/// One delivery attempt's input.
#[derive(Clone, Copy, Debug)]
pub struct Post<'a> {
    pub url: &'a str,
    /// The delivery id: the same on every attempt of one delivery.
    pub webhook_id: &'a str,
    /// The JSON payload.
    pub body: &'a [u8],
    /// The current secret first; during a rotation's grace, the previous one too.
    pub secrets: &'a [Secret],
}

/// What the engine does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx.
    Delivered,
    /// A 410: the receiver asks for the endpoint to be disabled.
    Gone,
    /// Anything else. `retry_after` only for a 429 or 503 carrying `Retry-After` (capped at
    /// [`MAX_RETRY_AFTER`]).
    Failed { retry_after: Option<Duration> },
}

/// The result of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    /// The receiver's status, when it answered (and the answer was accepted).
    pub status: Option<u16>,
    /// Empty on delivery; otherwise short and safe to show (see the module doc).
    pub error: String,
    /// The SSRF guard refused the URL or the address (before connecting, or the peer the answer
    /// came from): a failure all the same, but not the receiver's.
    pub refused: bool,
}

impl Attempt {
    fn failed(error: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Failed { retry_after: None },
            status: None,
            error: error.into(),
            refused: false,
        }
    }

    fn refused(refusal: &Refusal) -> Self {
        Self {
            refused: is_refusal(refusal),
            ..Self::failed(refusal_text(refusal))
        }
    }
}

/// The sender; cheap to clone, one per process (it pools connections).
#[derive(Clone, Debug)]
pub struct WebhookClient {
    http: Client<GuardedConnector, Full<Bytes>>,
    config: ClientConfig,
}

impl WebhookClient {
    /// Builds the sender; fails only if TLS cannot be set up.
    pub fn new(config: ClientConfig) -> Result<Self, String> {
        let connector = GuardedConnector::new(config.policy, config.connect_timeout)?;
        let http = Client::builder(TokioExecutor::new())
            // Idle connections are closed by a timer, and few are kept per receiver.
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(8)
            // Safe: a request is re-sent only if it never left (its pooled connection had
            // closed before it was written); anything that reached the receiver is not.
            .retry_canceled_requests(true)
            .build(connector);
        Ok(Self { http, config })
    }

    /// Signs with a fresh timestamp (unix seconds, `now`) and POSTs once.
    pub async fn post(&self, post: &Post<'_>, now: i64) -> Attempt {
        let deadline = Instant::now() + self.config.timeout;
        let policy = self.config.policy;
        let target = match ssrf::check_url(post.url, policy) {
            Ok(target) => target,
            Err(refusal) => return Attempt::refused(&refusal),
        };
        let headers = match headers(post, now) {
            Ok(headers) => headers,
            Err(error) => return Attempt::failed(error),
        };
        let mut url = target.url;
        url.set_fragment(None);
        let Ok(uri) = url.as_str().parse::<Uri>() else {
            return Attempt::refused(&Refusal::Malformed);
        };
        let mut request = Request::new(Full::new(Bytes::copy_from_slice(post.body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let response = match timeout_at(deadline, self.http.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return transport_failure(&error),
            Err(_) => return Attempt::failed(self.timed_out()),
        };
        // DNS rebinding: judge the address actually connected to, not the one we resolved.
        let peer = response.extensions().get::<Peer>().map(|peer| peer.0);
        if let Some(error) = peer_refusal(peer, policy) {
            return Attempt {
                refused: true,
                ..Attempt::failed(error)
            };
        }
        let status = response.status().as_u16();
        let retry_after = match status {
            429 | 503 => response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, now)),
            _ => None,
        };
        drain(
            response.into_body(),
            self.config.max_response_bytes,
            deadline,
        )
        .await;
        classify(status, retry_after)
    }

    fn timed_out(&self) -> String {
        format!("timed out after {:?}", self.config.timeout)
    }
}

/// A transport error as a failed attempt: refused when the connector's SSRF check said no.
fn transport_failure(error: &hyper_util::client::legacy::Error) -> Attempt {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(ConnectFailure::Refused(refusal)) = cause.downcast_ref::<ConnectFailure>() {
            return Attempt::refused(refusal);
        }
        source = cause.source();
    }
    Attempt::failed(describe(error))
}

/// A transport error as a short, safe sentence.
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(failure) = cause.downcast_ref::<ConnectFailure>() {
            return failure.to_string();
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            let text = if hyper.is_incomplete_message() {
                "connection closed before a response"
            } else if hyper.is_parse() {
                "invalid HTTP response"
            } else {
                "request failed"
            };
            return text.to_owned();
        }
        source = cause.source();
    }
    if error.is_connect() {
        "connect failed"
    } else {
        "request failed"
    }
    .to_owned()
}

/// The request's headers, or why they cannot be made.
fn headers(post: &Post<'_>, now: i64) -> Result<HeaderMap, &'static str> {
    if post.secrets.is_empty() {
        return Err("no signing secret");
    }
    let secrets: Vec<&Secret> = post.secrets.iter().collect();
    let signed = signing::sign(post.webhook_id, now, post.body, &secrets)
        .map_err(|_| "body is not UTF-8 JSON")?;
    let mut headers = HeaderMap::with_capacity(5);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(UA, HeaderValue::from_static(USER_AGENT));
    headers.insert(
        "webhook-id",
        HeaderValue::from_str(&signed.id).map_err(|_| "webhook id is not a valid header value")?,
    );
    headers.insert("webhook-timestamp", HeaderValue::from(signed.timestamp));
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(&signed.signature).map_err(|_| "signature is not a header value")?,
    );
    Ok(headers)
}

/// The attempt a status line makes.
fn classify(status: u16, retry_after: Option<Duration>) -> Attempt {
    let failed = |error: String, retry_after| (Outcome::Failed { retry_after }, error);
    let (outcome, error) = match status {
        200..=299 => (Outcome::Delivered, String::new()),
        410 => (Outcome::Gone, "HTTP 410 (gone)".to_owned()),
        300..=399 => failed(format!("redirect not followed ({status})"), None),
        429 | 503 => failed(format!("HTTP {status}"), retry_after),
        _ => failed(format!("HTTP {status}"), None),
    };
    Attempt {
        outcome,
        status: Some(status),
        error,
        refused: false,
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (relative to `now`, unix seconds), capped at
/// [`MAX_RETRY_AFTER`]; a date in the past is no wait.
fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        let now = UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Why the peer actually connected to is refused, if it is; unknown peers fail closed.
fn peer_refusal(peer: Option<SocketAddr>, policy: Policy) -> Option<String> {
    match peer {
        Some(peer) => ssrf::refuse(peer.ip(), policy)
            .err()
            .map(|refusal| refusal_text(&refusal)),
        None if policy.allow_private => None,
        None => Some("target address unknown, refused".to_owned()),
    }
}

/// Whether `refusal` is the guard's verdict on the target (a host that does not resolve is a
/// plain failure: DNS may answer next time).
fn is_refusal(refusal: &Refusal) -> bool {
    !matches!(refusal, Refusal::Unresolvable)
}

fn refusal_text(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Forbidden(kind) => format!("target address refused: {kind}"),
        Refusal::Unresolvable => "host name does not resolve".to_owned(),
        other => format!("URL refused: {other}"),
    }
}

/// Reads up to `limit` body bytes (so a small answer leaves the connection reusable), then
/// drops the body, which closes the connection if there was more.
async fn drain(mut body: hyper::body::Incoming, limit: usize, deadline: Instant) {
    let mut read = 0;
    while read < limit {
        match timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => read += frame.data_ref().map_or(0, Bytes::len),
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests;
