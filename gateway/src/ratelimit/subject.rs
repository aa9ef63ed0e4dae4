//! Whose share of a rate-limit budget a request spends.

use axum::http::HeaderValue;

/// Whose share of a budget a request spends: its client's address or its credential (by hash,
/// so neither tokens nor keys sit in Redis or memory). Fixed-size, so checking a request
/// allocates nothing in the in-process store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Address(std::net::IpAddr),
    Credential([u8; 16]),
}

impl Subject {
    pub(super) fn credential(value: &HeaderValue) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
        let mut head = [0; 16];
        head.copy_from_slice(&digest.as_ref()[..16]);
        Self::Credential(head)
    }

    /// The `rate_limited` metric's `kind` label.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Address(_) => "address",
            Self::Credential(_) => "credential",
        }
    }
}

/// `address:ADDR` or `credential:HEX` (the Redis key's tail).
impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address(address) => write!(f, "address:{address}"),
            Self::Credential(hash) => {
                f.write_str("credential:")?;
                hash.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}
