//! The SSRF guard for outgoing webhooks: which URLs may be registered, and which addresses a
//! delivery may connect to. Not wired into the service yet (the delivery engine arrives with
//! the rest of the notification issue); its rules are tested here on their own.
//!
//! - [`check_url`]: `https` only (unless `allow_insecure`), a host, no credentials, at most
//!   2048 characters. URLs are parsed by the WHATWG rules (the `url` crate), which read every
//!   IPv4 notation a client would connect to — `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1` —
//!   as the address it means, so a literal private address cannot hide behind its spelling.
//! - [`forbidden`]: why an address must not be connected to: loopback, private (RFC 1918),
//!   link-local (with 169.254.169.254, the cloud metadata address), unique-local, CGNAT
//!   (100.64.0.0/10), multicast, unspecified, broadcast, documentation, benchmarking and
//!   reserved ranges — and IPv6 forms that carry one of those IPv4 addresses
//!   (IPv4-mapped, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
//! - [`resolve`]: resolves a host and refuses it if *any* address is forbidden; a sender
//!   connects only to the addresses this returned (and checks the peer address again after
//!   connecting), so DNS rebinding between the check and the connection gains nothing.
//!
//! `allow_private` (config `notification.allow_private_webhook_targets`) exists for tests that
//! run receivers on loopback; it turns [`forbidden`]'s verdicts into no refusal.
//!
//! Written here rather than taken from a crate: the rule set is the contract's (issue 12), and
//! the standard library's address predicates plus `url`'s parser cover the parts a library
//! would.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// What the guard allows beyond the production rules (both off in production).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `http://` URLs too (`notification.allow_insecure_webhooks`, development and tests).
    pub allow_insecure: bool,
    /// Private, loopback and every other forbidden range too
    /// (`notification.allow_private_webhook_targets`, tests only).
    pub allow_private: bool,
}

/// Why a URL or an address is refused; the text names no internal detail beyond what the
/// caller sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a valid absolute URL")]
    Malformed,
    #[error("at most 2048 characters")]
    TooLong,
    #[error("must use https")]
    Scheme,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("must name a host")]
    NoHost,
    #[error("resolves to a {0} address, which webhooks may not reach")]
    Forbidden(&'static str),
    #[error("the host name does not resolve")]
    Unresolvable,
}

/// A URL that passed [`check_url`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
}

impl Target {
    /// The port a connection goes to (the scheme's default when the URL names none).
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }
}

/// Checks a URL for registration: scheme, shape, and — for a literal address — the address.
/// A host name is checked by [`resolve`], at registration and again at every send.
pub fn check_url(raw: &str, policy: Policy) -> Result<Target, Refusal> {
    if raw.len() > MAX_URL_BYTES {
        return Err(Refusal::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| Refusal::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_insecure => {}
        _ => return Err(Refusal::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Credentials);
    }
    match url.host() {
        None => return Err(Refusal::NoHost),
        Some(Host::Domain("")) => return Err(Refusal::NoHost),
        Some(Host::Ipv4(ip)) => refuse(IpAddr::V4(ip), policy)?,
        Some(Host::Ipv6(ip)) => refuse(IpAddr::V6(ip), policy)?,
        Some(Host::Domain(_)) => {}
    }
    Ok(Target { url })
}

/// Resolves `target`'s host: every address it resolves to, each allowed, or the refusal of the
/// first that is not.
pub async fn resolve(target: &Target, policy: Policy) -> Result<Vec<SocketAddr>, Refusal> {
    let port = target.port();
    let addresses: Vec<SocketAddr> = match target.url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| Refusal::Unresolvable)?
            .collect(),
        None => return Err(Refusal::NoHost),
    };
    if addresses.is_empty() {
        return Err(Refusal::Unresolvable);
    }
    for address in &addresses {
        refuse(address.ip(), policy)?;
    }
    Ok(addresses)
}

/// [`forbidden`] as a refusal, unless the policy allows private targets.
pub fn refuse(ip: IpAddr, policy: Policy) -> Result<(), Refusal> {
    match forbidden(ip) {
        Some(kind) if !policy.allow_private => Err(Refusal::Forbidden(kind)),
        _ => Ok(()),
    }
}

/// Why `ip` must not be connected to, or `None` for a public unicast address.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_unspecified() || a == 0 {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (CGNAT)"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_broadcast() {
        "broadcast"
    } else if ip.is_documentation() {
        "documentation"
    } else if a == 192 && b == 0 && c == 0 {
        "IETF protocol assignment"
    } else if a == 198 && (b == 18 || b == 19) {
        "benchmarking"
    } else if a >= 240 {
        "reserved"
    } else {
        return None;
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // IPv6 forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4).or(Some("IPv4-mapped"));
    }
    let segments = ip.segments();
    if segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        // IPv4-compatible (deprecated, ::a.b.c.d): never a public target.
        return Some("IPv4-compatible");
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        );
        return forbidden_v4(v4);
    }
    if segments[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        );
        return forbidden_v4(v4);
    }
    Some(if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_unique_local() {
        "unique-local"
    } else if ip.is_unicast_link_local() {
        "link-local"
    } else if segments[0] & 0xffc0 == 0xfec0 {
        // fec0::/10, the deprecated site-local range: private by intent.
        "site-local"
    } else if segments[..3] == [0x64, 0xff9b, 1] {
        // 64:ff9b:1::/48, local-use NAT64 (RFC 8215): reaches whatever the local translator
        // maps it to.
        "local NAT64"
    } else if ip.is_multicast() {
        "multicast"
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        "documentation"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy {
        allow_insecure: false,
        allow_private: false,
    };

    /// Every spelling of a forbidden address is refused at registration.
    #[test]
    fn forbidden_literals_in_every_notation_are_refused() {
        for url in [
            "https://127.0.0.1/hook",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://10.0.0.8/",
            "https://172.16.3.4/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[::]/",
            "https://[fc00::1]/",
            "https://[fd12:3456::1]/",
            "https://[fe80::1]/",
            "https://[fec0::1]/",
            "https://[64:ff9b:1::a00:1]/",
            "https://[ff02::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::10.0.0.1]/",
            "https://[2002:c0a8:0101::1]/",
        ] {
            assert!(
                matches!(check_url(url, STRICT), Err(Refusal::Forbidden(_))),
                "{url}: {:?}",
                check_url(url, STRICT)
            );
        }
    }

    #[test]
    fn public_https_urls_pass_and_shapes_are_checked() {
        for url in [
            "https://example.com/hooks/1",
            "https://93.184.216.34:8443/x",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
            "https://[64:ff9b::5db8:d822]/",
        ] {
            assert!(check_url(url, STRICT).is_ok(), "{url}");
        }
        assert_eq!(
            check_url("http://example.com/", STRICT),
            Err(Refusal::Scheme)
        );
        assert_eq!(
            check_url("ftp://example.com/", STRICT),
            Err(Refusal::Scheme)
        );
        assert_eq!(
            check_url("https://user:pw@example.com/", STRICT),
            Err(Refusal::Credentials)
        );
        assert_eq!(check_url("not a url", STRICT), Err(Refusal::Malformed));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(check_url(&long, STRICT), Err(Refusal::TooLong));
        let dev = Policy {
            allow_insecure: true,
            allow_private: true,
        };
        assert!(check_url("http://127.0.0.1:9000/hook", dev).is_ok());
    }

    /// A name is judged by what it resolves to: `localhost` is loopback.
    #[tokio::test]
    async fn names_resolving_to_forbidden_addresses_are_refused() {
        let target = check_url("https://localhost:8443/hook", STRICT).unwrap();
        assert!(matches!(
            resolve(&target, STRICT).await,
            Err(Refusal::Forbidden(_))
        ));
        let allowed = Policy {
            allow_private: true,
            ..STRICT
        };
        let addresses = resolve(&target, allowed).await.unwrap();
        assert!(
            addresses
                .iter()
                .all(|a| a.port() == 8443 && a.ip().is_loopback())
        );
    }
}
