//! The sender against a real SMTP server on loopback. What the server received is read back
//! with Python's own `email` parser, so the MIME structure is judged by an implementation
//! independent of lettre.

use std::net::Ipv4Addr;

use ironmesh_test_support::smtp::{self as smtp_server, SmtpServer, free_port, part};
use tokio::time::{Instant, timeout};

use super::super::*;
use super::{email, smtp_mailer};

fn aiosmtpd_available() -> bool {
    smtp_server::available()
}

/// A handler that refuses some recipients, for the classification test: `-c picky.Picky`.
const PICKY: &str = r#"
from aiosmtpd.handlers import Mailbox

class Picky(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user here"
        if address.startswith("busy@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"
"#;

/// An email sent over SMTP arrives once, as multipart/alternative with the Message-ID exactly as
/// given, the decoded subject, the recipient's name, the text as written and the HTML escaped.
#[tokio::test]
async fn an_email_over_smtp_arrives_once_with_text_and_escaped_html() {
    if !aiosmtpd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(dir.path(), port).await;
    let mailer = smtp_mailer(&format!("smtp://127.0.0.1:{port}"));
    assert_eq!(mailer.relay(), "smtp");

    let sent = email("0190a1b2-smtp", "ada@example.com");
    mailer.send(&sent).await.expect("delivered");

    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["message_id"], "<0190a1b2-smtp@ironmesh>");
    assert_eq!(m["subject"], "Grüße: your order <shipped> & more");
    assert_eq!(m["content_type"], "multipart/alternative");
    assert!(m["date"].as_str().is_some_and(|d| !d.is_empty()));
    let to = m["to"].as_str().unwrap();
    assert!(
        to.contains("Ada Lovelace") && to.contains("<ada@example.com>"),
        "{to}"
    );
    assert!(
        m["from"]
            .as_str()
            .unwrap()
            .contains("<notifications@ironmesh.local>")
    );

    let text = part(m, "text/plain");
    assert!(
        text.contains("Your order <script>alert(1)</script> shipped."),
        "{text}"
    );
    let html = part(m, "text/html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("<p style=\"margin:0 0 16px 0;\">Your order &lt;script&gt;alert(1)&lt;/script&gt; shipped.<br>\nTrack it &amp; relax.</p>"),
        "{html}"
    );
    assert!(html.contains("<p style=\"margin:0 0 16px 0;\">Hello Ada,</p>"));
    assert!(html.contains("<title>Grüße: your order &lt;shipped&gt; &amp; more</title>"));
    drop(server);
}

/// "SMTP down for a while": with nothing listening the attempt is retryable and its reason
/// names no host; once a server listens on that port, the very same send is delivered (once).
#[tokio::test]
async fn smtp_down_is_retryable_and_the_same_send_succeeds_once_it_is_up() {
    let port = free_port();
    let mailer = smtp_mailer(&format!("smtp://127.0.0.1:{port}"));
    let sent = email("0190a1b2-down", "ada@example.com");

    let failure = mailer.send(&sent).await.unwrap_err();
    assert!(failure.retryable, "{failure:?}");
    assert_eq!(failure.reason, "SMTP relay unreachable");
    assert!(!failure.reason.contains("127.0.0.1") && !failure.reason.contains(&port.to_string()));

    if !aiosmtpd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path(), port).await;
    mailer
        .send(&sent)
        .await
        .expect("delivered once the relay is up");
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["message_id"], "<0190a1b2-down@ironmesh>");
}

/// Implicit TLS to a relay whose certificate no public root vouches for: refused (rustls on
/// ring, the Mozilla roots, no "accept invalid"), retryable, and named as a TLS failure.
#[tokio::test]
async fn an_untrusted_relay_certificate_fails_closed_as_tls() {
    if !aiosmtpd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, signing_key.serialize_pem()).unwrap();
    let port = free_port();
    let server = SmtpServer::start_with(
        dir.path(),
        port,
        smtp_server::MAILBOX,
        &[
            "--smtpscert".as_ref(),
            cert_file.as_os_str(),
            "--smtpskey".as_ref(),
            key_file.as_os_str(),
        ],
    )
    .await;
    let mailer = smtp_mailer(&format!("smtps://user:s3cret@localhost:{port}"));
    let failure = mailer
        .send(&email("0190a1b2-tls", "ada@example.com"))
        .await
        .unwrap_err();
    assert_eq!(
        failure,
        SendFailure {
            retryable: true,
            reason: "TLS with the SMTP relay failed".to_owned()
        }
    );
    assert!(server.messages().is_empty());
}

/// A relay that accepts the connection and then says nothing: the attempt ends at the
/// configured timeout, retryable.
#[tokio::test]
async fn a_silent_relay_times_out_retryably() {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        // Hold the connection open without a greeting until the test ends.
        std::future::pending::<()>().await;
        drop(socket);
    });
    let mailer = Mailer::new(MailerConfig {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        from: "notifications@ironmesh.local".to_owned(),
        timeout: Duration::from_millis(300),
        files_dir: PathBuf::new(),
    })
    .unwrap();
    let started = Instant::now();
    let failure = timeout(
        Duration::from_secs(10),
        mailer.send(&email("0190a1b2-silent", "ada@example.com")),
    )
    .await
    .expect("bounded by the mailer's timeout")
    .unwrap_err();
    assert_eq!(
        failure,
        SendFailure {
            retryable: true,
            reason: "SMTP relay timed out".to_owned()
        }
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    held.abort();
}

/// A 5xx for the recipient is final, a 4xx retryable; both reasons carry only the code.
#[tokio::test]
async fn a_refused_recipient_is_final_and_a_deferral_retryable() {
    if !aiosmtpd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("picky.py"), PICKY).unwrap();
    let server = SmtpServer::start_with(dir.path(), port, "picky.Picky", &[]).await;
    let mailer = smtp_mailer(&format!("smtp://127.0.0.1:{port}"));

    let refused = mailer
        .send(&email("0190a1b2-550", "nobody@example.com"))
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        SendFailure {
            retryable: false,
            reason: "SMTP relay refused the recipient (550)".to_owned()
        }
    );
    let deferred = mailer
        .send(&email("0190a1b2-451", "busy@example.com"))
        .await
        .unwrap_err();
    assert_eq!(
        deferred,
        SendFailure {
            retryable: true,
            reason: "SMTP relay deferred the message (451)".to_owned()
        }
    );
    mailer
        .send(&email("0190a1b2-ok", "ada@example.com"))
        .await
        .unwrap();
    assert_eq!(server.messages().len(), 1);
}
