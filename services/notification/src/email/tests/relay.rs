//! The relay URL rules and the quiet errors: credentials never in `Debug`, errors or failures.

use super::super::*;
use super::{email, smtp_mailer};

/// The password in `smtp_url` shows in no `Debug`, no configuration error and no send failure.
#[tokio::test]
async fn credentials_never_show_in_debug_or_errors() {
    let config = MailerConfig {
        smtp_url: Some("smtp://user:s3cret@127.0.0.1:1".to_owned()),
        from: "Ironmesh <notifications@ironmesh.local>".to_owned(),
        timeout: Duration::from_secs(5),
        files_dir: PathBuf::new(),
    };
    assert!(!format!("{config:?}").contains("s3cret"));
    let mailer = Mailer::new(config).unwrap();
    let debug = format!("{mailer:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("user"),
        "{debug}"
    );
    assert!(debug.contains("smtp://127.0.0.1:1"), "{debug}");
    let failure = mailer
        .send(&email("0190a1b2-creds", "ada@example.com"))
        .await
        .unwrap_err();
    assert!(failure.retryable);
    assert!(!format!("{failure:?}").contains("s3cret"));
    assert!(!failure.reason.contains("127.0.0.1"));

    for (url, expected) in [
        ("smtp://user:s3cret@relay.example.com", "unencrypted"),
        (
            "smtp://user:s3cret@relay.example.com?tls=opportunistic",
            "`tls` must be",
        ),
        (
            "smtps://user:s3cret@relay.example.com?tls=required",
            "always TLS",
        ),
        (
            "smtp://user:s3cret@relay.example.com?tls=required&x=s3cret",
            "only query",
        ),
        ("ftp://user:s3cret@relay.example.com", "must start with"),
        ("smtp://user:s3cret@relay.example.com:99999", "not a URL"),
        ("smtps://user:s3cret@", "not a URL"),
        (
            "smtps://user@relay.example.com",
            "both a user and a password",
        ),
        (
            "smtps://:s3cret@relay.example.com",
            "both a user and a password",
        ),
        ("smtps://user:%FF%FE@relay.example.com", "UTF-8"),
        ("not a url s3cret", "not a URL"),
    ] {
        let err = Mailer::new(MailerConfig {
            smtp_url: Some(url.to_owned()),
            from: "notifications@ironmesh.local".to_owned(),
            timeout: Duration::from_secs(5),
            files_dir: PathBuf::new(),
        })
        .unwrap_err();
        let (display, debug) = (err.to_string(), format!("{err:?}"));
        assert!(display.contains(expected), "{url}: {display}");
        assert!(
            !display.contains("s3cret") && !debug.contains("s3cret"),
            "{url}: {debug}"
        );
    }
    // Accepted: TLS with credentials, plain to loopback, plain without credentials.
    for url in [
        "smtps://user:s3cret@relay.example.com",
        "smtp://user:s3cret@relay.example.com:587?tls=required",
        "smtp://user:s3cret@localhost:2525",
        "smtp://relay.internal:25",
    ] {
        let mailer = smtp_mailer(url);
        assert!(!format!("{mailer:?}").contains("s3cret"), "{url}");
    }
}
