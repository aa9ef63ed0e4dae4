//! The sender against a real SMTP server on loopback (Python's `aiosmtpd`; required in CI,
//! skipped with a note elsewhere), the files mode, and the quiet errors. What the server
//! received is read back with Python's own `email` parser, so the MIME structure is judged by
//! an implementation independent of lettre.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use tokio::time::{Instant, sleep, timeout};

use super::*;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether `python -c "import aiosmtpd"` works; outside CI a missing package skips the test.
fn aiosmtpd_available() -> bool {
    let probe = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .output();
    if probe.is_ok_and(|out| out.status.success()) {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "CI must have the aiosmtpd PyPI package"
    );
    eprintln!("skipped: python3 with aiosmtpd is not available");
    false
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// A running `aiosmtpd` with a maildir; killed by its PID when dropped.
struct SmtpServer {
    child: Child,
    maildir: PathBuf,
    log: PathBuf,
}

impl SmtpServer {
    /// Starts `python -m aiosmtpd -n -l 127.0.0.1:<port> -c <handler> <dir>/maildir` and waits
    /// (bounded) until it accepts connections.
    async fn start(dir: &Path, port: u16, handler: &str) -> Self {
        Self::start_with(dir, port, handler, &[]).await
    }

    /// [`Self::start`] with more `aiosmtpd` options (before the handler's arguments).
    async fn start_with(
        dir: &Path,
        port: u16,
        handler: &str,
        options: &[&std::ffi::OsStr],
    ) -> Self {
        std::fs::write(dir.join("picky.py"), PICKY).unwrap();
        let maildir = dir.join("maildir");
        let log = dir.join(format!("aiosmtpd-{port}.log"));
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(options)
            .args(["-c", handler])
            .arg(&maildir)
            .env("PYTHONPATH", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("python starts");
        let mut server = Self {
            child,
            maildir,
            log,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("aiosmtpd exited ({status}): {}", server.log_text());
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen within 20s: {}",
                server.log_text()
            );
            // The polling interval of a bounded readiness loop, not a synchronisation.
            sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every message in the maildir, parsed by Python's `email` package: `message_id`,
    /// `subject` (decoded), `from`, `to`, `date`, `content_type`, `headers` (names) and the
    /// leaf `parts` (`type`, decoded `body`).
    fn messages(&self) -> Vec<Value> {
        const SCRIPT: &str = r#"
import json, mailbox, sys
from email.header import decode_header, make_header
out = []
for msg in mailbox.Maildir(sys.argv[1], create=False):
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        charset = part.get_content_charset() or "utf-8"
        parts.append({"type": part.get_content_type(),
                      "body": part.get_payload(decode=True).decode(charset)})
    out.append({"message_id": msg["Message-ID"],
                "subject": str(make_header(decode_header(msg["Subject"]))),
                "from": msg["From"], "to": msg["To"], "date": msg["Date"],
                "content_type": msg.get_content_type(),
                "headers": list(msg.keys()), "parts": parts})
print(json.dumps(out))
"#;
        let out = Command::new(python())
            .args(["-c", SCRIPT])
            .arg(&self.maildir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reading the maildir failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let Value::Array(messages) = serde_json::from_slice(&out.stdout).unwrap() else {
            panic!("not a list");
        };
        messages
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // `Child::kill` signals this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_mailer(url: &str) -> Mailer {
    Mailer::new(MailerConfig {
        smtp_url: Some(url.to_owned()),
        from: "Ironmesh <notifications@ironmesh.local>".to_owned(),
        timeout: Duration::from_secs(10),
        files_dir: PathBuf::from("/nonexistent"),
    })
    .unwrap()
}

fn email(id: &str, to: &str) -> Email {
    Email {
        message_id: format!("<{id}@ironmesh>"),
        to: to.to_owned(),
        to_name: "Ada Lovelace".to_owned(),
        subject: "Grüße: your order <shipped> & more".to_owned(),
        text: "Hello Ada,\n\nYour order <script>alert(1)</script> shipped.\nTrack it & relax.\n"
            .to_owned(),
    }
}

/// The text of part `kind` (`text/plain`, `text/html`) of a parsed message.
fn part<'a>(message: &'a Value, kind: &str) -> &'a str {
    let parts = message["parts"].as_array().unwrap();
    let found: Vec<_> = parts.iter().filter(|p| p["type"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} part in {parts:?}");
    found[0]["body"].as_str().unwrap()
}

/// An email sent over SMTP arrives once, as multipart/alternative with the Message-ID exactly as
/// given, the decoded subject, the recipient's name, the text as written and the HTML escaped.
#[tokio::test]
async fn an_email_over_smtp_arrives_once_with_text_and_escaped_html() {
    if !aiosmtpd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(dir.path(), port, "aiosmtpd.handlers.Mailbox").await;
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

/// Files mode: sending the same email twice (a retry) leaves exactly one `.eml`, named after the
/// Message-ID, in a directory created on demand; the headers are exactly the expected ones.
#[tokio::test]
async fn files_mode_keeps_one_eml_per_message_id_across_retries() {
    let dir = tempfile::tempdir().unwrap();
    let files_dir = dir.path().join("outbox-mail");
    let mailer = Mailer::new(MailerConfig {
        smtp_url: None,
        from: "Ironmesh <notifications@ironmesh.local>".to_owned(),
        timeout: Duration::from_secs(5),
        files_dir: files_dir.clone(),
    })
    .unwrap();
    assert_eq!(mailer.relay(), "files");

    let sent = email("0190a1b2-files", "ada@example.com");
    mailer.send(&sent).await.unwrap();
    mailer.send(&sent).await.unwrap();

    let names: Vec<String> = std::fs::read_dir(&files_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["0190a1b2-files@ironmesh.eml"]);
    let eml = std::fs::read_to_string(files_dir.join(&names[0])).unwrap();
    assert_eq!(
        eml.matches("Message-ID: <0190a1b2-files@ironmesh>\r\n")
            .count(),
        1,
        "{eml}"
    );
    let (head, _) = eml.split_once("\r\n\r\n").unwrap();
    let mut headers: Vec<&str> = head
        .split("\r\n")
        .filter(|line| !line.starts_with([' ', '\t']))
        .map(|line| line.split_once(':').unwrap().0)
        .collect();
    headers.sort_unstable();
    assert_eq!(
        headers,
        [
            "Content-Type",
            "Date",
            "From",
            "MIME-Version",
            "Message-ID",
            "Subject",
            "To"
        ]
    );
    assert!(eml.contains("Content-Type: multipart/alternative"));

    // Another email is another file.
    mailer
        .send(&email("0190a1b2-other", "ada@example.com"))
        .await
        .unwrap();
    assert_eq!(std::fs::read_dir(&files_dir).unwrap().count(), 2);
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
    let server = SmtpServer::start(dir.path(), port, "aiosmtpd.handlers.Mailbox").await;
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
        "aiosmtpd.handlers.Mailbox",
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
    let server = SmtpServer::start(dir.path(), port, "picky.Picky").await;
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

/// A broken `from`, recipient or Message-ID is refused before anything is sent: a bad
/// configuration at start, a bad email as a final failure.
#[tokio::test]
async fn bad_addresses_and_message_ids_are_refused() {
    let bad_from = Mailer::new(MailerConfig {
        smtp_url: None,
        from: "not an address".to_owned(),
        timeout: Duration::from_secs(5),
        files_dir: PathBuf::new(),
    });
    assert!(matches!(bad_from, Err(MailerError::Config(_))));

    let dir = tempfile::tempdir().unwrap();
    let mailer = Mailer::new(MailerConfig {
        smtp_url: None,
        from: "notifications@ironmesh.local".to_owned(),
        timeout: Duration::from_secs(5),
        files_dir: dir.path().to_owned(),
    })
    .unwrap();
    let failure = mailer
        .send(&email("0190a1b2-bad", "not-an-address"))
        .await
        .unwrap_err();
    assert_eq!(failure.reason, "the recipient address is invalid");
    assert!(!failure.retryable);
    let mut bad_id = email("x", "ada@example.com");
    bad_id.message_id = "<a b@ironmesh>".to_owned();
    assert!(!mailer.send(&bad_id).await.unwrap_err().retryable);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn message_ids_are_kept_as_given_or_formed_from_a_bare_id() {
    assert_eq!(
        message_id("<0190-1@ironmesh>").as_deref(),
        Some("<0190-1@ironmesh>")
    );
    assert_eq!(message_id("0190-1").as_deref(), Some("<0190-1@ironmesh>"));
    for bad in [
        "",
        "<>",
        "<a>",
        "<a@>",
        "<@b>",
        "<a@b@c>",
        "<a b@c>",
        "<a@b",
        "a@b",
        "a\r\nBcc: x",
        "<a@b>\r\n",
    ] {
        assert_eq!(message_id(bad), None, "{bad:?}");
    }
}

#[test]
fn file_names_are_plain_and_never_hidden() {
    assert_eq!(file_name("<0190-1@ironmesh>"), "0190-1@ironmesh.eml");
    assert_eq!(file_name("<../x/y@ironmesh>"), "_._x_y@ironmesh.eml");
    assert_eq!(file_name(&format!("<{}@x>", "a".repeat(300))).len(), 204);
}

#[test]
fn html_escapes_and_placeholders_are_expanded_once() {
    assert_eq!(
        escape(r#"<a href="x">&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(
        paragraphs("one\r\ntwo\n\n  \n\nthree\n"),
        "<p style=\"margin:0 0 16px 0;\">one<br>\ntwo</p>\n<p style=\"margin:0 0 16px 0;\">three</p>\n"
    );
    assert_eq!(TEMPLATE.matches("{{body}}").count(), 1);
    assert_eq!(TEMPLATE.matches("{{subject}}").count(), 2);
    let page = html("{{body}}", "{{subject}}");
    assert_eq!(
        page.matches("{{body}}").count(),
        2,
        "the subject, twice, unexpanded"
    );
    assert_eq!(
        page.matches("{{subject}}").count(),
        1,
        "the body, unexpanded"
    );
    assert_eq!(one_line("  a\r\nBcc: x\t"), "a  Bcc: x");
}
