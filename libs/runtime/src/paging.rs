//! List paging shared by every service: the page size rule and opaque page tokens bound to the
//! request's filters.
//!
//! A token is the base64url of `cursor` (where the next page starts, in the service's own
//! terms: a sku, an id…) and a short digest of `binding` (the request's other filter fields as
//! the service spells them), so a token replayed with other filters is refused with
//! `INVALID_ARGUMENT` on `page_token` instead of silently paging a different result.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::validation::Violations;

/// The page size to use: `requested`, or `default` when 0, coerced to at most `max`; negative
/// is a violation on `page_size`.
pub fn page_size(requested: i32, default: i64, max: i64) -> Result<i64, Violations> {
    match requested {
        n if n < 0 => Err(Violations::one("page_size", "must not be negative")),
        0 => Ok(default.min(max)),
        n => Ok(i64::from(n).min(max)),
    }
}

/// One page of `rows` (fetched `size + 1`, in list order): at most `size` of them, and the token
/// of the page after the last (empty when there is none).
pub fn page<T>(
    mut rows: Vec<T>,
    size: i64,
    binding: &str,
    cursor: impl Fn(&T) -> &str,
) -> (Vec<T>, String) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() <= size {
        return (rows, String::new());
    }
    rows.truncate(size);
    let token = rows
        .last()
        .map(|r| encode_token(cursor(r), binding))
        .unwrap_or_default();
    (rows, token)
}

/// The token of the page after `cursor`, for a request whose filters read `binding`.
pub fn encode_token(cursor: &str, binding: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{cursor}", digest(binding)))
}

/// The cursor in `token` (`None` for the first page), checked against the request's `binding`.
pub fn decode_token(token: &str, binding: &str) -> Result<Option<String>, Violations> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Violations::one(
            "page_token",
            "not a page token of this request (the other fields must match the request that produced it)",
        )
    };
    let text = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(bad)?;
    let (print, cursor) = text.split_once(':').ok_or_else(bad)?;
    if print != digest(binding) || cursor.is_empty() {
        return Err(bad());
    }
    Ok(Some(cursor.to_owned()))
}

/// 64 bits of FNV-1a over `binding`, hex: tokens are not secrets, only a guard against a token
/// reused with other filters, so a keyed or cryptographic hash would add nothing.
fn digest(binding: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in binding.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_coerces_and_refuses_negative() {
        assert_eq!(page_size(0, 50, 200).unwrap(), 50);
        assert_eq!(page_size(7, 50, 200).unwrap(), 7);
        assert_eq!(page_size(5000, 50, 200).unwrap(), 200);
        let err = page_size(-1, 50, 200).unwrap_err();
        assert_eq!(err.iter().next().unwrap().field, "page_size");
    }

    #[test]
    fn a_token_round_trips_only_with_its_binding() {
        let token = encode_token("SKU:WITH:COLONS", "q=ab|inactive=false");
        assert_eq!(
            decode_token(&token, "q=ab|inactive=false")
                .unwrap()
                .as_deref(),
            Some("SKU:WITH:COLONS")
        );
        assert!(decode_token(&token, "q=ab|inactive=true").is_err());
        assert!(decode_token("not base64 !", "").is_err());
        assert!(decode_token(&URL_SAFE_NO_PAD.encode("nocolon"), "").is_err());
        assert_eq!(decode_token("", "anything").unwrap(), None);
    }
}
