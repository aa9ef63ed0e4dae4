//! Who the client is when a proxy stands in between: the peer's address, unless the peer is
//! trusted to name the client — then the right-most `X-Forwarded-For` entry that is not itself
//! trusted (entries further left could have been written by anyone). The gateway uses it for
//! REST clients behind load balancers; services use it for calls relayed by the gateway, which
//! sends the client's address as `x-forwarded-for` metadata.

use std::net::IpAddr;

use http::HeaderMap;

/// The client's address as `peer` relays it, trusting `x-forwarded-for` only from `trusted`.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 5.6.7.8".parse().unwrap());
        let stranger: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(client_address(stranger, &headers, &[proxy]), stranger);
        assert_eq!(
            client_address(proxy, &headers, &[proxy]),
            "5.6.7.8".parse::<IpAddr>().unwrap(),
            "the right-most untrusted entry"
        );
        headers.insert("x-forwarded-for", "1.2.3.4, 10.0.0.1".parse().unwrap());
        assert_eq!(
            client_address(proxy, &headers, &[proxy]),
            "1.2.3.4".parse::<IpAddr>().unwrap(),
            "trusted hops are skipped"
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_address(proxy, &headers, &[proxy]), proxy);
    }
}
