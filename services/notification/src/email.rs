//! The email sender: one notification as one email, through an SMTP relay or — with no relay
//! configured — as an `.eml` file under a directory. The delivery engine decides when to call
//! [`Mailer::send`] and what to do with a [`SendFailure`]; this module only makes the attempt
//! and classifies it.
//!
//! # The message
//! `multipart/alternative`: the plain text as given, and HTML rendered from
//! `templates/email.html` (compiled in) with the subject and the text HTML-escaped, the text's
//! blank-line-separated paragraphs as `<p>`. Headers: `From`, `To` (with the display name),
//! `Subject`, `Date`, `MIME-Version`, the parts' content headers and `Message-ID` exactly as
//! given — the caller derives it from the delivery id, so every retry carries the same one and a
//! receiver (or a person) can tell a retry from a second notification. Nothing else: no
//! `User-Agent`, and the EHLO name is lettre's address literal rather than our host name.
//!
//! # Relays
//! - **SMTP** on lettre's `AsyncSmtpTransport` built from `smtp_url`: `smtp://host:port` (plain,
//!   for a loopback or sidecar relay), `smtp://host:port?tls=required` (STARTTLS, refused if the
//!   relay does not offer it) or `smtps://host:port` (implicit TLS); `user:password@` are the
//!   credentials, refused over plain SMTP except to a loopback host. TLS is rustls with the
//!   *ring* provider and the compiled-in Mozilla roots (`webpki-roots`). One connection per
//!   email, no pool: lettre's tokio transport bounds only the connect, so the whole session runs
//!   under `timeout`, and a pooled connection abandoned by that timeout mid-`DATA` would be
//!   recycled in an unknown state. Without a pool, the timed-out connection is simply closed.
//! - **Files** (no `smtp_url`): `<files_dir>/<message id>.eml`, the full RFC 5322 message,
//!   written to a temporary name in the same directory and renamed, so a retry replaces the file
//!   instead of adding one. (Not lettre's `FileTransport`: it names files by a fresh UUID, so a
//!   retry would leave a second file.)
//!
//! # Error classification ([`SendFailure::retryable`])
//! - **Retryable**: the relay unreachable, timed out, TLS failing, an unreadable reply, a `4xx`
//!   (deferred), and the `5xx` answers that are about our setup rather than this email — `530`,
//!   `534`, `535`, `538` (authentication) — which a configuration fix cures. Also a failed file
//!   write (disk full, permissions).
//! - **Final**: any other `5xx` (recipient refused, message rejected or too large) and an
//!   email that cannot be built (invalid address or Message-ID).
//!
//! A timeout after the relay accepted the message (while saying `QUIT`) is reported as
//! retryable: the retry may deliver a second copy, with the same `Message-ID`.
//!
//! # Quiet errors
//! [`SendFailure::reason`] is short and safe to store and show: no credentials, no host names,
//! no relay answer text. [`MailerError`] messages and `Debug` never contain the password.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{Address, AsyncTransport as _, Message, Tokio1Executor};

mod relay;

use relay::{classify, redacted, smtp_route};

/// The HTML part's template: `{{subject}}` and `{{body}}` are replaced (escaped).
const TEMPLATE: &str = include_str!("../templates/email.html");

/// Where email goes: an SMTP relay, or (without one) `.eml` files under a directory. Cheap to
/// clone; `Debug` shows the relay without its credentials.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    timeout: Duration,
    route: Route,
}

enum Route {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `scheme://host:port`, for `Debug`: no credentials.
        server: String,
    },
    Files {
        dir: PathBuf,
    },
}

/// How the [`Mailer`] is built; fixed for the process.
#[derive(Clone)]
pub struct MailerConfig {
    /// `smtp://host:port`, `smtp://host:port?tls=required` (STARTTLS) or `smtps://host:port`
    /// (implicit TLS); `user:password@` are credentials. `None`: write `.eml` files.
    pub smtp_url: Option<String>,
    /// The `From` of every email, e.g. `Ironmesh <notifications@ironmesh.local>`.
    pub from: String,
    /// The whole attempt: connect, TLS, the SMTP session.
    pub timeout: Duration,
    /// Where `.eml` files go when `smtp_url` is `None` (created if missing).
    pub files_dir: PathBuf,
}

impl fmt::Debug for MailerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailerConfig")
            .field("smtp_url", &self.smtp_url.as_deref().map(redacted))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .field("files_dir", &self.files_dir)
            .finish()
    }
}

/// One email. `Debug` shows only the Message-ID (the rest is personal).
#[derive(Clone)]
pub struct Email {
    /// The `Message-ID`, the same on every attempt: `<{delivery_id}@ironmesh>` is used exactly
    /// as given; a bare id (no `<`) is formed into that shape.
    pub message_id: String,
    /// The recipient's address.
    pub to: String,
    /// The recipient's display name; may be empty.
    pub to_name: String,
    pub subject: String,
    /// The plain-text body; blank lines separate paragraphs in the HTML part.
    pub text: String,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

/// A [`MailerConfig`] that cannot work. The message names the setting, never the password.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("{0}")]
    Config(String),
}

fn config(message: &str) -> MailerError {
    MailerError::Config(message.to_owned())
}

/// An attempt that did not deliver (see the module doc for the classification).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendFailure {
    /// A later attempt may succeed.
    pub retryable: bool,
    /// Short and safe to store and show.
    pub reason: String,
}

impl SendFailure {
    fn retry(reason: impl Into<String>) -> Self {
        Self {
            retryable: true,
            reason: reason.into(),
        }
    }

    fn final_(reason: impl Into<String>) -> Self {
        Self {
            retryable: false,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for SendFailure {}

impl Mailer {
    /// Checks the configuration and builds the sender; connects to nothing yet.
    pub fn new(config: MailerConfig) -> Result<Self, MailerError> {
        let from: Mailbox = config.from.parse().map_err(|_| {
            self::config("email `from` must be an address, e.g. `Ironmesh <notify@example.com>`")
        })?;
        if config.timeout.is_zero() {
            return Err(self::config("the email timeout must be above zero"));
        }
        let route = match config.smtp_url.as_deref() {
            Some(url) => smtp_route(url, config.timeout)?,
            None => Route::Files {
                dir: config.files_dir,
            },
        };
        Ok(Self {
            inner: Arc::new(Inner {
                from,
                timeout: config.timeout,
                route,
            }),
        })
    }

    /// `"smtp"` or `"files"`: a bounded label for metrics and the per-relay circuit breaker.
    pub fn relay(&self) -> &'static str {
        match self.inner.route {
            Route::Smtp { .. } => "smtp",
            Route::Files { .. } => "files",
        }
    }

    /// One attempt to deliver `email`: to the relay, or into its `.eml` file.
    pub async fn send(&self, email: &Email) -> Result<(), SendFailure> {
        let message_id = message_id(&email.message_id)
            .ok_or_else(|| SendFailure::final_("the Message-ID is malformed"))?;
        let message = self.message(email, message_id.clone())?;
        match &self.inner.route {
            Route::Smtp { transport, .. } => {
                match tokio::time::timeout(self.inner.timeout, transport.send(message)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => {
                        // lettre's errors carry no credentials; the relay's answer text stays
                        // out of the reason but helps whoever reads the debug log.
                        tracing::debug!(error = %err, "an SMTP attempt failed");
                        Err(classify(&err))
                    }
                    Err(_) => Err(SendFailure::retry("SMTP relay timed out")),
                }
            }
            Route::Files { dir } => {
                let (dir, name, bytes) = (dir.clone(), file_name(&message_id), message.formatted());
                let written =
                    tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes))
                        .await;
                match written {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "writing an email file failed");
                        Err(SendFailure::retry("writing the email file failed"))
                    }
                    Err(_) => Err(SendFailure::retry("writing the email file failed")),
                }
            }
        }
    }

    fn message(&self, email: &Email, message_id: String) -> Result<Message, SendFailure> {
        let address: Address = email
            .to
            .trim()
            .parse()
            .map_err(|_| SendFailure::final_("the recipient address is invalid"))?;
        let name = one_line(&email.to_name);
        let to = Mailbox::new((!name.is_empty()).then_some(name), address);
        let subject = one_line(&email.subject);
        let html = html(&subject, &email.text);
        Message::builder()
            .from(self.inner.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id))
            .multipart(MultiPart::alternative_plain_html(email.text.clone(), html))
            .map_err(|_| SendFailure::final_("the email could not be built"))
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Mailer");
        s.field("relay", &self.relay());
        match &self.inner.route {
            Route::Smtp { server, .. } => s.field("server", server),
            Route::Files { dir } => s.field("files_dir", dir),
        };
        s.field("from", &self.inner.from.to_string())
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// The header value: `<…@…>` as given, or a bare id formed into `<{id}@ironmesh>`. `None` if
/// it could not be a Message-ID (whitespace, control characters, stray brackets).
fn message_id(given: &str) -> Option<String> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'))
    };
    match given.strip_prefix('<') {
        Some(rest) => {
            let inner = rest.strip_suffix('>')?;
            let (left, right) = inner.split_once('@')?;
            (plain(left) && plain(right) && !right.contains('@')).then(|| given.to_owned())
        }
        None => (plain(given) && !given.contains('@')).then(|| format!("<{given}@ironmesh>")),
    }
}

/// The `.eml` file's name: the Message-ID without brackets, anything but `[A-Za-z0-9._@-]`
/// as `_`, never hidden, at most 200 bytes. Delivery ids are UUIDs, so names do not collide.
fn file_name(message_id: &str) -> String {
    let inner = message_id.trim_start_matches('<').trim_end_matches('>');
    let mut name: String = inner
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '@' | '-' => c,
            _ => '_',
        })
        .take(200)
        .collect();
    if name.starts_with('.') {
        name.replace_range(..1, "_");
    }
    name + ".eml"
}

/// Writes `dir/name` so that readers see the old file or the new one, never a part: a
/// temporary name in the same directory, flushed to disk, then renamed over the final name.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let written = (|| {
        let mut file = std::fs::File::create_new(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, dir.join(name))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Control characters (CR, LF, tabs) as spaces, trimmed: a header value stays one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The HTML part: the template with the escaped subject and the text's paragraphs.
fn html(subject: &str, text: &str) -> String {
    let subject = escape(subject);
    let body = paragraphs(text);
    // The placeholders are replaced in the template's own text only, so a subject or body
    // that contains `{{body}}` is not expanded.
    let (head, tail) = TEMPLATE.split_once("{{body}}").unwrap_or((TEMPLATE, ""));
    let mut out = head.replace("{{subject}}", &subject);
    out.push_str(&body);
    out.push_str(&tail.replace("{{subject}}", &subject));
    out
}

/// Blank-line-separated paragraphs as `<p>`, single line breaks as `<br>`, all escaped.
fn paragraphs(text: &str) -> String {
    let mut out = String::new();
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if !line.trim().is_empty() {
            lines.push(line.trim_end());
            continue;
        }
        if lines.is_empty() {
            continue;
        }
        out.push_str("<p style=\"margin:0 0 16px 0;\">");
        for (i, line) in lines.drain(..).enumerate() {
            if i > 0 {
                out.push_str("<br>\n");
            }
            out.push_str(&escape(line));
        }
        out.push_str("</p>\n");
    }
    out
}

/// HTML-escapes text for element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
