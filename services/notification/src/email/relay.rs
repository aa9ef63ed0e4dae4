//! The relay side of the email sender: `smtp_url` checked against our rules and turned into
//! lettre's transport ([`smtp_route`]), the URL without its password for `Debug`
//! ([`redacted`]), and lettre's errors classified as retryable or final ([`classify`]; the
//! rules are in the parent module's doc).

use std::time::Duration;

use lettre::Tokio1Executor;
use lettre::transport::smtp::{self, AsyncSmtpTransport};
use url::{Host, Url};

use super::{MailerError, Route, SendFailure, config};

/// Checks `raw` (our rules, stricter than lettre's) and builds the transport from it.
pub(super) fn smtp_route(raw: &str, timeout: Duration) -> Result<Route, MailerError> {
    let url = Url::parse(raw).map_err(|_| config("smtp_url is not a URL"))?;
    let host = url
        .host()
        .filter(|host| !matches!(host, Host::Domain("")))
        .ok_or_else(|| config("smtp_url has no host"))?;
    let mut tls = None;
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), tls) {
            ("tls", None) => tls = Some(value.into_owned()),
            _ => {
                return Err(config(
                    "smtp_url: the only query parameter is `tls=required`",
                ));
            }
        }
    }
    let (encrypted, default_port) = match (url.scheme(), tls.as_deref()) {
        ("smtp", None) => (false, 25),
        ("smtp", Some("required")) => (true, 587),
        ("smtps", None) => (true, 465),
        ("smtp", Some(_)) => {
            return Err(config(
                "smtp_url: `tls` must be `required` (opportunistic STARTTLS can be stripped)",
            ));
        }
        ("smtps", Some(_)) => {
            return Err(config("smtp_url: smtps:// is always TLS; drop `?tls=`"));
        }
        _ => return Err(config("smtp_url must start with smtp:// or smtps://")),
    };
    let has_user = !url.username().is_empty();
    if has_user != url.password().is_some() {
        return Err(config(
            "smtp_url: credentials need both a user and a password (`user:password@`)",
        ));
    }
    // `smtp` is not a special scheme to the URL standard: an IPv4 host stays a `Domain`.
    let loopback = match &host {
        Host::Domain(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    };
    if has_user && !encrypted && !loopback {
        return Err(config(
            "smtp_url would send credentials unencrypted: use smtps:// or `?tls=required`",
        ));
    }
    // lettre parses the same URL again: the scheme, `tls`, host, port, the path as EHLO name
    // and the percent-decoded credentials. What it could refuse here was checked above, except
    // credentials that are not UTF-8 once decoded.
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(raw)
        .map_err(|_| config("smtp_url: the credentials must be UTF-8 once percent-decoded"))?
        .timeout(Some(timeout))
        .build();
    let port = url.port().unwrap_or(default_port);
    let query = if tls.is_some() { "?tls=required" } else { "" };
    let server = format!("{}://{host}:{port}{query}", url.scheme());
    Ok(Route::Smtp { transport, server })
}

/// `url` with any password replaced, for `Debug`.
pub(super) fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("redacted"));
            }
            url.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// A lettre error as a [`SendFailure`] (see the module doc).
pub(super) fn classify(err: &smtp::Error) -> SendFailure {
    if let Some(code) = err.status() {
        let code = code.to_string();
        if err.is_transient() {
            return SendFailure::retry(format!("SMTP relay deferred the message ({code})"));
        }
        return match code.as_str() {
            "530" | "534" | "535" | "538" => {
                SendFailure::retry(format!("SMTP relay refused our credentials ({code})"))
            }
            "550" | "551" | "553" => {
                SendFailure::final_(format!("SMTP relay refused the recipient ({code})"))
            }
            "552" => SendFailure::final_(format!("SMTP relay refused the message size ({code})")),
            _ => SendFailure::final_(format!("SMTP relay rejected the message ({code})")),
        };
    }
    let reason = if err.is_timeout() {
        "SMTP relay timed out"
    } else if err.is_tls() || tls_failed(err) {
        "TLS with the SMTP relay failed"
    } else if err.is_response() {
        "SMTP relay sent an unreadable reply"
    } else if err.is_client() {
        // No STARTTLS offered though required, no common AUTH mechanism, …
        "SMTP relay does not support what the configuration requires"
    } else {
        // Connection refused or reset, DNS, the connection lost mid-session.
        "SMTP relay unreachable"
    };
    SendFailure::retry(reason)
}

/// Whether a connection error is a failed TLS handshake (an untrusted or mismatched
/// certificate, no common protocol): lettre reports those as connection errors, with rustls'
/// error inside an `io::Error` (whose own `source` skips it, hence `get_ref`).
fn tls_failed(err: &smtp::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(err) = next {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map_or(err, |inner| inner as &(dyn std::error::Error + 'static));
        if inner.is::<tokio_rustls::rustls::Error>() {
            return true;
        }
        next = inner.source();
    }
    false
}
