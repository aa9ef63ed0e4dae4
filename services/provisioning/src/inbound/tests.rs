//! Each scheme: a valid signature verifies (with any of a rotation's secrets), one changed
//! byte or a stale timestamp is Unverified, a broken header is Malformed; GitHub's published
//! test vector verifies.

use super::*;

const NOW: i64 = 1_800_000_000;

fn source(scheme: Scheme, secrets: &[&str]) -> WebhookSource {
    WebhookSource {
        name: "backend".into(),
        scheme,
        secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, value.parse().unwrap());
    }
    map
}

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WHSEC_OLD: &str = "whsec_dGhlIG9sZCBzZWNyZXQgb2YgdGhpcyBzb3VyY2U=";

fn standard_headers(secret: &str, id: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let hook = standardwebhooks::Webhook::new(secret).unwrap();
    let signature = hook.sign(id, ts, body).unwrap();
    headers(&[
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signature),
    ])
}

#[test]
fn standard_webhooks_verify_and_refuse() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let body = br#"{"status":"progress","request_id":"r"}"#;
    let src = source(Scheme::StandardWebhooks, &[WHSEC, WHSEC_OLD]);
    let ok = standard_headers(WHSEC, "msg_1", now, body);
    assert_eq!(verify(&src, &ok, body, now).unwrap(), "msg_1");
    // Signed with the older secret of a rotation: still verifies.
    let rotated = standard_headers(WHSEC_OLD, "msg_2", now, body);
    assert_eq!(verify(&src, &rotated, body, now).unwrap(), "msg_2");
    // One byte changed.
    let mut changed = body.to_vec();
    changed[3] ^= 1;
    assert!(matches!(
        verify(&src, &ok, &changed, now),
        Err(Refusal::Unverified(_))
    ));
    // 301 s of skew, either way.
    for ts in [now - 301, now + 301] {
        let stale = standard_headers(WHSEC, "msg_3", ts, body);
        assert!(
            matches!(verify(&src, &stale, body, now), Err(Refusal::Unverified(_))),
            "{ts}"
        );
    }
    // Malformed: missing or non-numeric headers.
    let mut missing = ok.clone();
    missing.remove("webhook-signature");
    assert!(matches!(
        verify(&src, &missing, body, now),
        Err(Refusal::Malformed(_))
    ));
    let mut garbled = ok.clone();
    garbled.insert("webhook-timestamp", "soon".parse().unwrap());
    assert!(matches!(
        verify(&src, &garbled, body, now),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn githubs_published_test_vector_verifies() {
    // From GitHub's "Validating webhook deliveries".
    let src = source(Scheme::Github, &["It's a Secret to Everybody"]);
    let signed = headers(&[
        (
            "x-github-delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        ),
        (
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into(),
        ),
    ]);
    let id = verify(&src, &signed, b"Hello, World!", NOW).unwrap();
    assert_eq!(id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert!(matches!(
        verify(&src, &signed, b"Hello, World?", NOW),
        Err(Refusal::Unverified(_))
    ));
    let bad = headers(&[
        ("x-github-delivery", "d".into()),
        ("x-hub-signature-256", "md5=abc".into()),
    ]);
    assert!(matches!(
        verify(&src, &bad, b"x", NOW),
        Err(Refusal::Malformed(_))
    ));
}

fn stripe_header(secret: &str, ts: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = ts.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &signed);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={ts},v1={hex},v0=ignored")
}

#[test]
fn stripe_signatures_verify_and_refuse() {
    let secret = "whsec_test_stripe_secret";
    let src = source(Scheme::Stripe, &["whsec_other", secret]);
    let body = br#"{"id":"evt_1","status":"succeeded","request_id":"r"}"#;
    let ok = headers(&[("stripe-signature", stripe_header(secret, NOW, body))]);
    assert_eq!(verify(&src, &ok, body, NOW).unwrap(), "evt_1");
    assert!(matches!(
        verify(&src, &ok, body, NOW + 301),
        Err(Refusal::Unverified(_))
    ));
    assert!(matches!(
        verify(&src, &ok, b"{}", NOW),
        Err(Refusal::Unverified(_))
    ));
    let bad = headers(&[("stripe-signature", "v1=abc".into())]);
    assert!(matches!(
        verify(&src, &bad, body, NOW),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn reports_and_source_configuration() {
    let report =
        Report::parse(br#"{"status":"failed","request_id":"r1","error":"quota"}"#).unwrap();
    assert_eq!(
        report,
        Report::Failed {
            request_id: "r1".into(),
            error: "quota".into(),
            retryable: false
        }
    );
    assert!(Report::parse(br#"{"status":"exploded","request_id":"r1"}"#).is_err());
    assert!(
        source(Scheme::StandardWebhooks, &["not base64!"])
            .problem()
            .is_some()
    );
    assert!(source(Scheme::Github, &[]).problem().is_some());
    assert!(source(Scheme::Github, &["s"]).problem().is_none());
    let debug = format!("{:?}", source(Scheme::Github, &["hunter2"]));
    assert!(!debug.contains("hunter2"), "{debug}");
}
