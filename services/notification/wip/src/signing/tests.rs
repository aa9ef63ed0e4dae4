//! Signatures checked by the reference crate's verifier and by the independent Python
//! implementation (`pip install standardwebhooks`; required in CI, skipped with a note
//! elsewhere).

use super::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn headers(signed: &SignedHeaders) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    map.insert("webhook-id", signed.id.parse().unwrap());
    map.insert(
        "webhook-timestamp",
        signed.timestamp.to_string().parse().unwrap(),
    );
    map.insert("webhook-signature", signed.signature.parse().unwrap());
    map
}

#[test]
fn secrets_round_trip_and_never_show_in_debug() {
    let secret = Secret::generate();
    let text = secret.expose();
    assert!(text.starts_with("whsec_"));
    assert_eq!(Secret::parse(&text).unwrap(), secret);
    assert_eq!(format!("{secret:?}"), "Secret(…)");
    for bad in ["", "whsec_", "whsec_!!!", "abc", "whsec_c2hvcnQ="] {
        assert_eq!(Secret::parse(bad), Err(BadSecret), "{bad}");
    }
    assert_ne!(Secret::generate(), Secret::generate());
}

/// During a rotation both signatures are sent, and each secret verifies on its own.
#[test]
fn both_secrets_verify_during_a_rotation() {
    let (old, new) = (Secret::generate(), Secret::generate());
    let body = br#"{"type":"orders.order.paid","data":{"order_id":"o-1"}}"#;
    let signed = sign("msg_1", now(), body, &[&new, &old]).unwrap();
    assert_eq!(signed.signature.split(' ').count(), 2);
    for secret in [&new, &old] {
        let hook = Webhook::new(&secret.expose()).unwrap();
        hook.verify(body, &headers(&signed)).expect("verifies");
    }
    let stranger = Webhook::new(&Secret::generate().expose()).unwrap();
    assert!(stranger.verify(body, &headers(&signed)).is_err());
    // After the grace only the new one is sent: the old secret no longer verifies.
    let later = sign("msg_1", now(), body, &[&new]).unwrap();
    let old_hook = Webhook::new(&old.expose()).unwrap();
    assert!(old_hook.verify(body, &headers(&later)).is_err());
    assert!(sign("m", now(), &[0xff, 0xfe], &[&new]).is_err());
}

/// The independent implementation agrees: Python's `standardwebhooks` verifies what we sign.
#[test]
fn the_python_reference_implementation_verifies_our_signatures() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import standardwebhooks"])
        .output();
    if !probe.is_ok_and(|out| out.status.success()) {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI must have the standardwebhooks PyPI package"
        );
        eprintln!("skipped: python3 with standardwebhooks is not available");
        return;
    }
    let (old, new) = (Secret::generate(), Secret::generate());
    let body = r#"{"type":"orders.order.paid","data":{"order_id":"o-2"}}"#;
    let signed = sign("msg_2", now(), body.as_bytes(), &[&new, &old]).unwrap();
    let script = r#"
import json, sys
from standardwebhooks import Webhook
secret, body, msg_id, ts, sig = sys.argv[1:6]
Webhook(secret).verify(body, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
print("ok")
"#;
    for secret in [&new, &old] {
        let out = std::process::Command::new(&python)
            .args([
                "-c",
                script,
                &secret.expose(),
                body,
                &signed.id,
                &signed.timestamp.to_string(),
                &signed.signature,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And it refuses a tampered body.
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            script,
            &new.expose(),
            r#"{"type":"orders.order.paid","data":{"order_id":"o-3"}}"#,
            &signed.id,
            &signed.timestamp.to_string(),
            &signed.signature,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a tampered body must not verify");
}
