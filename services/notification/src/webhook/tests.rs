//! The sender against real receivers on loopback: each test scripts what its receiver answers
//! and reads what it received from a channel (never a sleep).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use standardwebhooks::Webhook;
use tokio::time::timeout;

use super::*;
use receiver::{CHUNK, Receiver, Reply, WAIT, status};

mod receiver;

const BODY: &[u8] = br#"{"type":"order.paid","data":{"order_id":"ord_1"}}"#;
const LOOPBACK: Policy = Policy {
    allow_insecure: true,
    allow_private: true,
};

fn client(policy: Policy, timeout: Duration) -> WebhookClient {
    WebhookClient::new(ClientConfig {
        policy,
        connect_timeout: Duration::from_secs(2),
        timeout,
        max_response_bytes: 4096,
    })
    .unwrap()
}

fn loopback_client() -> WebhookClient {
    client(LOOPBACK, Duration::from_secs(5))
}

fn now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

fn post<'a>(url: &'a str, secrets: &'a [Secret]) -> Post<'a> {
    Post {
        url,
        webhook_id: "msg_2b1FzN1Ab",
        body: BODY,
        secrets,
    }
}

fn failed(retry_after: Option<Duration>) -> Outcome {
    Outcome::Failed { retry_after }
}

/// A 2xx is delivered, and the request carries the body, the content type, the user agent and
/// Standard Webhooks headers that the reference implementation verifies with the secret.
#[tokio::test]
async fn a_2xx_is_delivered_signed_verifiably() {
    let mut receiver = Receiver::start(|_, _| status(204)).await;
    let secret = Secret::generate();
    let url = receiver.url("/hooks/a");
    let now = now();
    let attempt = loopback_client()
        .post(&post(&url, std::slice::from_ref(&secret)), now)
        .await;
    assert_eq!(
        (attempt.outcome, attempt.status),
        (Outcome::Delivered, Some(204))
    );
    assert_eq!(attempt.error, "");
    let got = receiver.next().await;
    assert_eq!(got.path, "/hooks/a");
    assert_eq!(got.body, BODY);
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["user-agent"], USER_AGENT);
    assert_eq!(got.headers["webhook-id"], "msg_2b1FzN1Ab");
    assert_eq!(got.headers["webhook-timestamp"], now.to_string().as_str());
    let hook = Webhook::new(&secret.expose()).unwrap();
    hook.verify(&got.body, &got.headers).unwrap();
    let stranger = Webhook::new(&Secret::generate().expose()).unwrap();
    assert!(stranger.verify(&got.body, &got.headers).is_err());
}

/// During a rotation both signatures are sent, space-separated, and each secret verifies on
/// its own.
#[tokio::test]
async fn both_rotation_secrets_verify_independently() {
    let mut receiver = Receiver::start(|_, _| status(200)).await;
    let secrets = [Secret::generate(), Secret::generate()];
    let url = receiver.url("/");
    let attempt = loopback_client().post(&post(&url, &secrets), now()).await;
    assert_eq!(attempt.outcome, Outcome::Delivered);
    let got = receiver.next().await;
    let signature = got.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    for secret in &secrets {
        let hook = Webhook::new(&secret.expose()).unwrap();
        hook.verify(&got.body, &got.headers).unwrap();
    }
}

/// A 500 fails with its status; its Retry-After is not honoured (only 429 and 503 are).
#[tokio::test]
async fn a_500_fails_with_its_status() {
    let receiver =
        Receiver::start(|_, _| Reply::Status(500, vec![("retry-after", "2".into())])).await;
    let url = receiver.url("/");
    let attempt = loopback_client()
        .post(&post(&url, &[Secret::generate()]), now())
        .await;
    assert_eq!((attempt.outcome, attempt.status), (failed(None), Some(500)));
    assert_eq!(attempt.error, "HTTP 500");
}

/// A 410 says the endpoint is gone.
#[tokio::test]
async fn a_410_is_gone() {
    let receiver = Receiver::start(|_, _| status(410)).await;
    let url = receiver.url("/");
    let attempt = loopback_client()
        .post(&post(&url, &[Secret::generate()]), now())
        .await;
    assert_eq!(
        (attempt.outcome, attempt.status),
        (Outcome::Gone, Some(410))
    );
}

/// A 429 with `Retry-After: 2` asks the engine to wait two seconds.
#[tokio::test]
async fn a_429_honours_retry_after_seconds() {
    let receiver =
        Receiver::start(|_, _| Reply::Status(429, vec![("retry-after", "2".into())])).await;
    let url = receiver.url("/");
    let attempt = loopback_client()
        .post(&post(&url, &[Secret::generate()]), now())
        .await;
    let wait = Some(Duration::from_secs(2));
    assert_eq!((attempt.outcome, attempt.status), (failed(wait), Some(429)));
}

/// A 503 with an HTTP-date `Retry-After` waits until that date (relative to `now`).
#[tokio::test]
async fn a_503_honours_retry_after_as_an_http_date() {
    let now = now();
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap() + 120);
    let date = httpdate::fmt_http_date(at);
    let receiver =
        Receiver::start(move |_, _| Reply::Status(503, vec![("retry-after", date.clone())])).await;
    let url = receiver.url("/");
    let attempt = loopback_client()
        .post(&post(&url, &[Secret::generate()]), now)
        .await;
    let wait = Some(Duration::from_secs(120));
    assert_eq!((attempt.outcome, attempt.status), (failed(wait), Some(503)));
}

/// A 301 is a failure that says so; its Location never gets a request.
#[tokio::test]
async fn redirects_are_not_followed() {
    let mut receiver = Receiver::start(|path, base| match path {
        "/moved" => status(200),
        _ => Reply::Status(301, vec![("location", format!("{base}/moved"))]),
    })
    .await;
    let url = receiver.url("/hook");
    let attempt = loopback_client()
        .post(&post(&url, &[Secret::generate()]), now())
        .await;
    assert_eq!((attempt.outcome, attempt.status), (failed(None), Some(301)));
    assert_eq!(attempt.error, "redirect not followed (301)");
    assert_eq!(receiver.next().await.path, "/hook");
    receiver.assert_idle();
}

/// A receiver that takes the request and never answers costs one timeout, reported as such.
#[tokio::test]
async fn a_hanging_receiver_times_out() {
    let mut receiver = Receiver::start(|_, _| Reply::Hang).await;
    let url = receiver.url("/");
    let client = client(LOOPBACK, Duration::from_millis(500));
    let attempt = timeout(WAIT, client.post(&post(&url, &[Secret::generate()]), now()))
        .await
        .expect("post did not return");
    let returned = Instant::now();
    assert_eq!((attempt.outcome, attempt.status), (failed(None), None));
    assert!(attempt.error.contains("timed out"), "{}", attempt.error);
    let got = receiver.next().await;
    assert!(returned.duration_since(got.at) < Duration::from_secs(5));
}

/// A 2xx streaming 50 MB is delivered after reading at most the bound: the receiver never gets
/// to produce more than the socket buffers hold.
#[tokio::test]
async fn a_huge_response_body_is_not_read_beyond_the_bound() {
    const TOTAL: usize = 50 << 20;
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&produced);
    let receiver =
        Receiver::start(move |_, _| Reply::Stream(TOTAL / CHUNK.len(), Arc::clone(&counter))).await;
    let url = receiver.url("/");
    let client = client(LOOPBACK, Duration::from_secs(30));
    let attempt = timeout(WAIT, client.post(&post(&url, &[Secret::generate()]), now()))
        .await
        .expect("post did not return");
    assert_eq!(attempt.outcome, Outcome::Delivered);
    let produced = produced.load(Ordering::Relaxed);
    assert!(produced < TOTAL / 4, "receiver produced {produced} bytes");
}

/// Without `allow_private`, loopback is refused — as a literal and as a name that resolves to
/// it — before any connection, and the error names the category, not the address.
#[tokio::test]
async fn loopback_targets_are_refused_without_allow_private() {
    let mut receiver = Receiver::start(|_, _| status(200)).await;
    let strict = Policy {
        allow_insecure: true,
        allow_private: false,
    };
    let client = client(strict, Duration::from_secs(5));
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let attempt = client.post(&post(&url, &[Secret::generate()]), now()).await;
        assert_eq!((attempt.outcome, attempt.status), (failed(None), None));
        assert_eq!(attempt.error, "target address refused: loopback", "{url}");
        assert!(
            attempt.refused,
            "{url}: the guard's refusal, not the receiver's failure"
        );
    }
    receiver.assert_idle();
}

/// The production policy refuses `http://`.
#[tokio::test]
async fn the_default_policy_refuses_insecure_urls() {
    let mut receiver = Receiver::start(|_, _| status(200)).await;
    let client = WebhookClient::new(ClientConfig::default()).unwrap();
    let url = receiver.url("/");
    let attempt = client.post(&post(&url, &[Secret::generate()]), now()).await;
    assert_eq!(attempt.outcome, failed(None));
    assert_eq!(attempt.error, "URL refused: must use https");
    assert!(attempt.refused);
    receiver.assert_idle();
}

/// `https` goes through rustls (ring): against a plain-HTTP port the handshake fails and the
/// error says TLS.
#[tokio::test]
async fn https_uses_tls_and_reports_handshake_failures() {
    let mut receiver = Receiver::start(|_, _| status(200)).await;
    let url = receiver.url("/").replacen("http://", "https://", 1);
    let attempt = loopback_client()
        .post(&post(&url, &[Secret::generate()]), now())
        .await;
    assert_eq!((attempt.outcome, attempt.status), (failed(None), None));
    assert!(attempt.error.starts_with("TLS"), "{}", attempt.error);
    receiver.assert_idle();
}

/// Nothing listening: a connect failure, said briefly.
#[tokio::test]
async fn a_closed_port_is_a_connect_failure() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let attempt = loopback_client()
        .post(&post(&url, &[Secret::generate()]), now())
        .await;
    assert_eq!((attempt.outcome, attempt.status), (failed(None), None));
    assert!(
        attempt.error.starts_with("connect failed"),
        "{}",
        attempt.error
    );
    assert!(!attempt.refused, "a receiver that is down is not a refusal");
}

/// The rebinding check has something to judge: every response carries the peer it came from.
#[tokio::test]
async fn responses_carry_the_peer_address() {
    let receiver = Receiver::start(|_, _| status(200)).await;
    let mut request = Request::new(Full::default());
    *request.uri_mut() = receiver.url("/").parse().unwrap();
    let response = loopback_client().http.request(request).await.unwrap();
    let peer = response
        .extensions()
        .get::<Peer>()
        .expect("no peer address");
    assert_eq!(format!("http://{}", peer.0), receiver.base);
}

/// The post-connect check: forbidden peers are refused by category; an unknown peer is
/// refused unless private targets are allowed.
#[test]
fn peer_addresses_are_judged_and_unknown_peers_fail_closed() {
    let strict = Policy::default();
    let loopback = Some("127.0.0.1:443".parse().unwrap());
    let metadata = Some("169.254.169.254:80".parse().unwrap());
    let public = Some("93.184.216.34:443".parse().unwrap());
    let refused = |category: &str| Some(format!("target address refused: {category}"));
    assert_eq!(peer_refusal(loopback, strict), refused("loopback"));
    assert_eq!(peer_refusal(metadata, strict), refused("link-local"));
    assert_eq!(peer_refusal(public, strict), None);
    assert!(peer_refusal(None, strict).is_some());
    assert_eq!(peer_refusal(loopback, LOOPBACK), None);
    assert_eq!(peer_refusal(None, LOOPBACK), None);
}

/// `Retry-After` in both forms, past dates, the one-hour cap, and junk.
#[test]
fn retry_after_reads_seconds_and_dates_and_is_capped() {
    let now = 1_700_000_000;
    let date = |offset: i64| {
        let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(now + offset).unwrap());
        httpdate::fmt_http_date(at)
    };
    let secs = |s| Some(Duration::from_secs(s));
    assert_eq!(parse_retry_after("2", now), secs(2));
    assert_eq!(parse_retry_after(" 30 ", now), secs(30));
    assert_eq!(parse_retry_after(&date(90), now), secs(90));
    assert_eq!(parse_retry_after(&date(-90), now), secs(0));
    assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
    assert_eq!(parse_retry_after(&date(86_400), now), Some(MAX_RETRY_AFTER));
    assert_eq!(
        parse_retry_after("99999999999999999999999", now),
        Some(MAX_RETRY_AFTER)
    );
    for junk in ["", "-1", "1.5", "soon"] {
        assert_eq!(parse_retry_after(junk, now), None, "{junk}");
    }
}

/// A webhook id that cannot be a header value fails before anything is sent.
#[tokio::test]
async fn an_invalid_webhook_id_fails_without_sending() {
    let mut receiver = Receiver::start(|_, _| status(200)).await;
    let url = receiver.url("/");
    let secrets = [Secret::generate()];
    let bad = Post {
        webhook_id: "msg\nx",
        ..post(&url, &secrets)
    };
    let attempt = loopback_client().post(&bad, now()).await;
    assert_eq!(attempt.outcome, failed(None));
    assert_eq!(attempt.error, "webhook id is not a valid header value");
    receiver.assert_idle();
}
