//! Exponential backoff with full jitter: attempt `n` waits a uniform time in
//! `[0, min(cap, base·2^n)]`, so retrying pairs spread out instead of arriving together.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
        }
    }

    /// The ceiling for attempt `attempts` (0 for the first retry).
    pub fn ceiling(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
        self.base.saturating_mul(1u32 << exp).min(self.cap)
    }

    /// A random delay under the ceiling.
    pub fn delay(&self, attempts: i32) -> Duration {
        let ceiling = self.ceiling(attempts);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(1000), Duration::from_secs(1));
        for attempt in 0..10 {
            assert!(b.delay(attempt) <= b.ceiling(attempt));
        }
    }
}
