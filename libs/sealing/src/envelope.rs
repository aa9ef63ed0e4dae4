//! The byte format of a sealed value.
//!
//! ```text
//! "IMS" | version 0x01 | key id length (1 byte) | key id (ASCII) | nonce (12) | ciphertext + tag (16)
//! └──────────────── header: AES-GCM associated data ─────────────┘
//! ```
//! The header is authenticated (associated data), so changing the key id or version makes the
//! value fail to open rather than be read under another key. Nonces are random per value: 96
//! random bits are safe for far more seals per key than a key lives for.
//!
//! **Legacy** values — what auth stored before this crate (`signing_keys.private_key_enc`,
//! `users.totp_secret_enc`) — are `nonce (12) | ciphertext + tag` with no header and no
//! associated data, under the master key. A keyring opens them only when asked to
//! ([`crate::Keyring::accept_legacy`]); nothing is ever sealed in that form again.

/// The first bytes of every envelope.
pub const MAGIC: &[u8; 3] = b"IMS";
/// The envelope version this crate writes.
pub const VERSION: u8 = 1;
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// A parsed envelope, borrowing from the sealed bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub key_id: &'a str,
    /// Everything before the nonce: the associated data.
    pub header: &'a [u8],
    pub nonce: &'a [u8],
    pub ciphertext: &'a [u8],
}

/// The header for a value sealed under `key_id` (which [`crate::Key`] keeps at most 64 bytes).
pub fn header(key_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + key_id.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(u8::try_from(key_id.len()).expect("key ids are at most 64 bytes"));
    out.extend_from_slice(key_id.as_bytes());
    out
}

/// Reads an envelope; `None` if `sealed` is not one (for example a legacy value).
pub fn parse(sealed: &[u8]) -> Option<Envelope<'_>> {
    let rest = sealed.strip_prefix(MAGIC.as_slice())?;
    let (&version, rest) = rest.split_first()?;
    let (&id_len, rest) = rest.split_first()?;
    let id_len = usize::from(id_len);
    if version != VERSION || id_len == 0 || rest.len() < id_len + NONCE_LEN + TAG_LEN {
        return None;
    }
    let (id, rest) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(id).ok()?;
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    Some(Envelope {
        key_id,
        header: &sealed[..5 + id_len],
        nonce,
        ciphertext,
    })
}

/// Splits a legacy value into nonce and ciphertext; `None` if it is too short to be one.
pub fn parse_legacy(sealed: &[u8]) -> Option<(&[u8], &[u8])> {
    (sealed.len() >= NONCE_LEN + TAG_LEN).then(|| sealed.split_at(NONCE_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_parse_agree() {
        let mut sealed = header("k1");
        sealed.extend_from_slice(&[0; NONCE_LEN + TAG_LEN + 3]);
        let envelope = parse(&sealed).unwrap();
        assert_eq!(envelope.key_id, "k1");
        assert_eq!(envelope.header, b"IMS\x01\x02k1");
        assert_eq!(envelope.ciphertext.len(), TAG_LEN + 3);
    }

    #[test]
    fn short_or_foreign_bytes_are_not_envelopes() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"IMS\x01\x02k1"), None, "no room for nonce and tag");
        let mut other_version = header("k1");
        other_version[3] = 2;
        other_version.extend_from_slice(&[0; 40]);
        assert_eq!(parse(&other_version), None);
        assert_eq!(parse(&[0x42; 60]), None);
    }
}
