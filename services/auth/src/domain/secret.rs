//! Values that must never reach a log: password hashes, token and API-key hashes, sealed secrets.
//! Each is a newtype whose `Debug` prints only its kind, so a type holding one can derive
//! `Debug` safely (and a `{:?}` in a log line or a panic message shows nothing).

macro_rules! redacted {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name($inner);

        impl $name {
            pub fn new(value: impl Into<$inner>) -> Self {
                Self(value.into())
            }

            /// The value itself, for the store and the code that checks it.
            pub fn expose(&self) -> &$inner {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

redacted!(
    /// An argon2id PHC string.
    PasswordHash(String)
);
redacted!(
    /// The SHA-256 (hex) of a refresh token, API-key secret or recovery code.
    TokenHash(String)
);
redacted!(
    /// A value sealed by `ironmesh-sealing` (a signing key's private half, a TOTP secret).
    Sealed(Vec<u8>)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
        let token = TokenHash::new("deadbeef");
        assert!(!format!("{token:?}").contains("deadbeef"));
        let sealed = Sealed::new(vec![42u8; 4]);
        assert!(!format!("{sealed:?}").contains("42"));
    }
}
