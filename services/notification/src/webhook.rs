//! The webhook sender: one signed HTTP POST attempt to a customer endpoint, made safely. The
//! delivery engine decides when to call it and what to do with the [`Attempt`]; this module
//! only makes the attempt and classifies it.
//!
//! # Safety rules
//! - **SSRF, three times.** The URL passes [`ssrf::check_url`] (scheme, shape, literal
//!   addresses) before anything is sent. Host names are resolved only by [`GuardedResolver`],
//!   which calls [`ssrf::resolve`], so the connector is only ever handed checked addresses.
//!   After the response head arrives, the address actually connected to
//!   (`Response::remote_addr`) is checked again with [`ssrf::refuse`] and the response is
//!   discarded if it is forbidden (DNS rebinding, or a path we did not foresee). Unknown peer
//!   addresses fail closed. A refusal names the category ("loopback"), never the address.
//! - **Nothing followed, nothing ambient.** Redirects are never followed (a 3xx is a failure),
//!   proxies from the environment are ignored, reqwest's own retries are off: one call, one
//!   request, to the URL the endpoint registered.
//! - **Bounded.** A connect timeout and a whole-attempt deadline (connect, TLS, send, response
//!   head, body); the response body is read up to `max_response_bytes` and then dropped with
//!   its connection, so a receiver cannot make us buffer or wait for an unbounded body. The
//!   outcome is decided by the status line: a 2xx whose body is slow is still delivered.
//! - **TLS** is rustls with the *ring* provider and the compiled-in Mozilla roots
//!   (`webpki-roots`), so the sender works in images without a CA store and pulls in neither
//!   aws-lc-rs nor OpenSSL. HTTP/1.1 only.
//! - **Quiet errors.** [`Attempt::error`] is short and safe to store and show to the endpoint's
//!   owner: no secrets, no response bodies, no resolved internal addresses.
//!
//! Headers: `content-type: application/json`, `user-agent: Ironmesh-Webhooks/1` and the
//! Standard Webhooks trio from [`signing::sign`] with a fresh timestamp per attempt (both
//! signatures, space-separated, during a rotation).

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::time::{Instant, timeout_at};
use tokio_rustls::rustls;

use crate::signing::{self, Secret};
use crate::ssrf::{self, Policy, Refusal};

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
}

impl Attempt {
    fn failed(error: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Failed { retry_after: None },
            status: None,
            error: error.into(),
        }
    }
}

/// The sender; cheap to clone, one per process (it pools connections).
#[derive(Clone, Debug)]
pub struct WebhookClient {
    http: reqwest::Client,
    config: ClientConfig,
}

impl WebhookClient {
    /// Builds the sender; fails only if TLS or the HTTP client cannot be set up.
    pub fn new(config: ClientConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            // rustls + ring + webpki roots, built here: reqwest has no provider of its own.
            .tls_backend_preconfigured(tls_config()?)
            // Every name goes through the SSRF guard; literal addresses were checked by
            // check_url, and every peer is checked again after connecting.
            .dns_resolver(Arc::new(GuardedResolver {
                policy: config.policy,
            }))
            // A redirect would reach a URL nobody checked: report it, never follow it.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            // HTTP(S)_PROXY in the environment must not reroute customer traffic.
            .no_proxy()
            // One call is one attempt; the engine owns retries and their schedule.
            .retry(reqwest::retry::never())
            .http1_only()
            .https_only(!config.policy.allow_insecure)
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Self { http, config })
    }

    /// Signs with a fresh timestamp (unix seconds, `now`) and POSTs once.
    pub async fn post(&self, post: &Post<'_>, now: i64) -> Attempt {
        let deadline = Instant::now() + self.config.timeout;
        let policy = self.config.policy;
        let target = match ssrf::check_url(post.url, policy) {
            Ok(target) => target,
            Err(refusal) => return Attempt::failed(refusal_text(&refusal)),
        };
        let headers = match headers(post, now) {
            Ok(headers) => headers,
            Err(error) => return Attempt::failed(error),
        };
        let request = self
            .http
            .post(target.url)
            .headers(headers)
            .body(post.body.to_vec());
        let response = match timeout_at(deadline, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Attempt::failed(self.describe(&error)),
            Err(_) => return Attempt::failed(self.timed_out()),
        };
        // DNS rebinding: judge the address actually connected to, not the one we resolved.
        if let Some(error) = peer_refusal(response.remote_addr(), policy) {
            return Attempt::failed(error);
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
        drain(response, self.config.max_response_bytes, deadline).await;
        classify(status, retry_after)
    }

    fn timed_out(&self) -> String {
        format!("timed out after {:?}", self.config.timeout)
    }

    /// A transport error as a short, safe sentence.
    fn describe(&self, error: &reqwest::Error) -> String {
        let mut io_kind = None;
        let mut source = error.source();
        while let Some(cause) = source {
            if let Some(refusal) = cause.downcast_ref::<Refusal>() {
                return refusal_text(refusal);
            }
            if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
                return format!("TLS handshake failed: {tls}");
            }
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                    return format!("TLS handshake failed: {tls}");
                }
                io_kind = Some(io.kind());
            }
            source = cause.source();
        }
        match (error.is_connect(), error.is_timeout(), io_kind) {
            (true, true, _) => format!("connect timed out after {:?}", self.config.connect_timeout),
            (false, true, _) => self.timed_out(),
            (true, false, Some(kind)) => format!("connect failed: {kind}"),
            (true, false, None) => "connect failed".to_owned(),
            (false, false, Some(kind)) => format!("request failed: {kind}"),
            (false, false, None) => "request failed".to_owned(),
        }
    }
}

/// The four headers besides `user-agent`, or why they cannot be made.
fn headers(post: &Post<'_>, now: i64) -> Result<HeaderMap, &'static str> {
    if post.secrets.is_empty() {
        return Err("no signing secret");
    }
    let secrets: Vec<&Secret> = post.secrets.iter().collect();
    let signed = signing::sign(post.webhook_id, now, post.body, &secrets)
        .map_err(|_| "body is not UTF-8 JSON")?;
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
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

fn refusal_text(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Forbidden(kind) => format!("target address refused: {kind}"),
        Refusal::Unresolvable => "host name does not resolve".to_owned(),
        other => format!("URL refused: {other}"),
    }
}

/// Reads up to `limit` body bytes (so a small answer leaves the connection reusable), then
/// drops the response, closing the connection if the body was longer.
async fn drain(mut response: reqwest::Response, limit: usize, deadline: Instant) {
    let mut read = 0;
    while read < limit {
        match timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => read += chunk.len(),
            _ => break,
        }
    }
}

/// TLS for customer endpoints: ring, the Mozilla roots, safe protocol versions, HTTP/1.1.
fn tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("webhook TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A preconfigured backend gets no ALPN from reqwest; we speak HTTP/1.1 only.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// reqwest's resolver, replaced: every host name goes through [`ssrf::resolve`].
#[derive(Debug)]
struct GuardedResolver {
    policy: Policy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let url = url::Url::parse(&format!("https://{host}/")).map_err(|_| Refusal::Malformed)?;
            let addresses = ssrf::resolve(&ssrf::Target { url }, policy).await?;
            // Port 0: the connector puts in the URL's port, or the scheme's default.
            let addresses: Addrs = Box::new(addresses.into_iter().map(|mut address| {
                address.set_port(0);
                address
            }));
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(addresses)
        })
    }
}

#[cfg(test)]
mod tests;
