//! The refresh-token rotation rules (RFC 9700 §4.14): a refresh token works once. Presenting the
//! current token rotates it; presenting one that was already rotated means it leaked, so the
//! whole session is revoked — unless it was rotated a moment ago, which is two requests of the
//! same client racing (then only the late one fails, and nothing is revoked).
//!
//! The store claims the current token in one conditional statement (so replicas cannot both
//! rotate it); when the claim fails it reads what it knows of the token and asks [`classify`].

use chrono::{DateTime, Utc};

/// What presenting a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// It was current: the new token now stands in the same session (family).
    Rotated { user_id: String, family_id: String },
    /// It had just been rotated by a concurrent request: nothing changed.
    Race,
    /// It had been rotated earlier (stolen and replayed?): its whole session is now revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// What the store knows of a refresh token that could not be claimed.
#[derive(Clone, Debug)]
pub struct RefreshState {
    pub family_id: String,
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The meaning of presenting a token that was not current: [`Rotation::Reused`] tells the store
/// to revoke the token's family.
pub fn classify(
    seen: Option<&RefreshState>,
    now: DateTime<Utc>,
    race_window: chrono::Duration,
) -> Rotation {
    match seen {
        Some(RefreshState {
            rotated_at: Some(rotated),
            revoked_at: None,
            ..
        }) if now - *rotated < race_window => Rotation::Race,
        Some(RefreshState {
            rotated_at: Some(_),
            revoked_at: None,
            ..
        }) => Rotation::Reused,
        _ => Rotation::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_token_is_a_race_briefly_then_a_reuse() {
        let now = Utc::now();
        let window = chrono::Duration::seconds(2);
        let state = |rotated: Option<i64>, revoked: bool| RefreshState {
            family_id: "f".into(),
            rotated_at: rotated.map(|ago| now - chrono::Duration::milliseconds(ago)),
            revoked_at: revoked.then_some(now),
        };
        assert_eq!(
            classify(Some(&state(Some(500), false)), now, window),
            Rotation::Race
        );
        assert_eq!(
            classify(Some(&state(Some(5_000), false)), now, window),
            Rotation::Reused
        );
        assert_eq!(
            classify(Some(&state(Some(5_000), true)), now, window),
            Rotation::Invalid,
            "a revoked family stays revoked"
        );
        assert_eq!(
            classify(Some(&state(None, false)), now, window),
            Rotation::Invalid,
            "never rotated, yet unclaimable: expired"
        );
        assert_eq!(classify(None, now, window), Rotation::Invalid);
    }
}
