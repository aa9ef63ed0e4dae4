//! The TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, one step of clock
//! skew each way) and single-use recovery codes. Code generation is totp-rs; which step matched
//! is found here so a code can be refused the second time it is presented.

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use crate::domain::{AuthError, Fault};

const ISSUER: &str = "Ironmesh";
const DIGITS: usize = 6;
const STEP_SECS: u64 = 30;
const SKEW_STEPS: u64 = 1;
const SECRET_BYTES: usize = 20;
const RECOVERY_CODES: usize = 10;
/// Recovery code alphabet: no 0/O or 1/l/I to misread.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

fn random<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Fault::Randomness)?;
    Ok(bytes)
}

fn totp(secret: &[u8], account: &str) -> Result<TOTP, AuthError> {
    // Labels may not contain ':'; such an address gets a plain label.
    let account = if account.contains(':') {
        "account"
    } else {
        account
    };
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        u8::try_from(SKEW_STEPS).unwrap_or(1),
        STEP_SECS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(|err| AuthError::Internal(Fault::Totp(Box::new(err))))
}

/// A new shared secret.
pub fn new_secret() -> Result<Vec<u8>, AuthError> {
    Ok(random::<SECRET_BYTES>()?.to_vec())
}

/// The `otpauth://` URI and the base32 secret an authenticator app is set up with.
pub fn provisioning(secret: &[u8], account: &str) -> Result<(String, String), AuthError> {
    let totp = totp(secret, account)?;
    Ok((totp.get_url(), totp.get_secret_base32()))
}

/// The time step a code is valid for at `now` (seconds since the epoch), within the skew.
pub fn matching_step(secret: &[u8], code: &str, now: u64) -> Result<Option<u64>, AuthError> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp(secret, "check")?;
    let current = now / STEP_SECS;
    let mut found = None;
    for step in current.saturating_sub(SKEW_STEPS)..=current + SKEW_STEPS {
        // Compare every candidate, so the time taken does not say which one matched.
        let expected = totp.generate(step * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    Ok(found)
}

/// Fresh recovery codes, shown once (`xxxxx-xxxxx`).
pub fn recovery_codes() -> Result<Vec<String>, AuthError> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = random::<10>()?;
            let chars: String = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
                .collect();
            Ok(format!("{}-{}", &chars[..5], &chars[5..]))
        })
        .collect()
}

/// A recovery code as typed, in its canonical form (dashes and spaces dropped, lower-case).
pub fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_and_neighbours_only() {
        let secret = new_secret().unwrap();
        let totp = totp(&secret, "a@example.com").unwrap();
        let now = 1_800_000_000;
        let code = totp.generate(now);
        assert_eq!(
            matching_step(&secret, &code, now).unwrap(),
            Some(now / STEP_SECS)
        );
        assert!(
            matching_step(&secret, &code, now + STEP_SECS)
                .unwrap()
                .is_some(),
            "skew"
        );
        assert_eq!(
            matching_step(&secret, &code, now + 3 * STEP_SECS).unwrap(),
            None
        );
        assert_eq!(matching_step(&secret, "12345", now).unwrap(), None);
    }

    #[test]
    fn provisioning_uri_names_issuer_and_account() {
        let (uri, secret) = provisioning(&new_secret().unwrap(), "a@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Ironmesh:a%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalise() {
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
        assert_eq!(normalise_recovery_code(" ABCDE-fghjk "), "abcdefghjk");
    }
}
