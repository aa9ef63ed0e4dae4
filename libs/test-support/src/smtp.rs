//! A real SMTP server on loopback for tests: Python's `aiosmtpd` (`python -m aiosmtpd`) with its
//! `Mailbox` handler writing a maildir, killed by its PID when dropped; what it received is read
//! back with Python's own `email` parser, so the MIME structure is judged by an implementation
//! independent of the sender's. The `aiosmtpd` PyPI package is required in CI (`CI=true`) and
//! a test skips with a note elsewhere ([`available`]).

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The handler that stores every message in the maildir.
pub const MAILBOX: &str = "aiosmtpd.handlers.Mailbox";

/// How long [`SmtpServer::start`] waits for the server to accept connections.
const READY_LIMIT: Duration = Duration::from_secs(20);

/// The Python interpreter: `PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether `python -c "import aiosmtpd"` works; outside CI a missing package means "skip" (with
/// a note), in CI it panics.
pub fn available() -> bool {
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
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind a loopback port")
        .local_addr()
        .expect("its address")
        .port()
}

/// A running `aiosmtpd`; killed by its PID when dropped.
pub struct SmtpServer {
    child: Child,
    maildir: PathBuf,
    log: PathBuf,
    port: u16,
}

impl SmtpServer {
    /// `aiosmtpd` on `127.0.0.1:port` storing every message in `<dir>/maildir`; returns once it
    /// accepts connections (bounded).
    pub async fn start(dir: &Path, port: u16) -> Self {
        Self::start_with(dir, port, MAILBOX, &[]).await
    }

    /// [`Self::start`] with another handler class (`module.Class`; modules written into `dir`
    /// are importable, it is the `PYTHONPATH`) and more `aiosmtpd` options. The handler gets
    /// `<dir>/maildir` as its argument.
    pub async fn start_with(dir: &Path, port: u16, handler: &str, options: &[&OsStr]) -> Self {
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
            .stderr(std::fs::File::create(&log).expect("create the server's log"))
            .spawn()
            .expect("python starts");
        let mut server = Self {
            child,
            maildir,
            log,
            port,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().expect("the child's status") {
                panic!("aiosmtpd exited ({status}): {}", server.log_text());
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return server;
            }
            assert!(
                started.elapsed() < READY_LIMIT,
                "aiosmtpd did not listen within {READY_LIMIT:?}: {}",
                server.log_text()
            );
            // The polling interval of a bounded readiness loop, not a synchronisation.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every message in the maildir, parsed by Python's `email` package: `message_id`,
    /// `subject` (decoded), `from`, `to`, `date`, `content_type`, `headers` (names) and the
    /// leaf `parts` (`type`, decoded `body`). Empty until the first message.
    pub fn messages(&self) -> Vec<Value> {
        const SCRIPT: &str = r#"
import json, mailbox, os, sys
from email.header import decode_header, make_header
out = []
if os.path.isdir(sys.argv[1]):
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
            .expect("python runs");
        assert!(
            out.status.success(),
            "reading the maildir failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let Value::Array(messages) = serde_json::from_slice(&out.stdout).expect("JSON") else {
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

/// The decoded text of the one part of type `kind` (`text/plain`, `text/html`) of a message
/// from [`SmtpServer::messages`]; panics unless there is exactly one.
pub fn part<'a>(message: &'a Value, kind: &str) -> &'a str {
    let parts = message["parts"].as_array().expect("parts");
    let found: Vec<_> = parts.iter().filter(|p| p["type"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} part in {parts:?}");
    found[0]["body"].as_str().expect("a text body")
}
