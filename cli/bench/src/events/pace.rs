//! [`Pace`]: a steady rate over a fixed time, as the number of events due after a given time.
//! The writer asks it on every tick of a timer and writes what is due, so a tick that comes late
//! (the timer's resolution is a millisecond; a write may take longer) is caught up at once and
//! the average rate stays the one asked for.

use std::time::Duration;

/// The lowest rate a [`Pace`] runs at, events per second.
const MIN_PER_SEC: f64 = 1.0;

/// `per_sec` events a second for a fixed time: [`Self::total`] events in all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    per_sec: f64,
    total: u64,
}

impl Pace {
    /// `per_sec` (at least one a second) for `over`; at least one event.
    pub fn new(per_sec: f64, over: Duration) -> Self {
        let per_sec = per_sec.max(MIN_PER_SEC);
        let total = (per_sec * over.as_secs_f64()).round().max(1.0) as u64;
        Self { per_sec, total }
    }

    pub fn per_sec(self) -> f64 {
        self.per_sec
    }

    /// Events in all.
    pub fn total(self) -> u64 {
        self.total
    }

    /// Events that should have been written `elapsed` after the start: one every `1/per_sec`
    /// seconds (the first after one interval), never more than [`Self::total`].
    pub fn due(self, elapsed: Duration) -> u64 {
        let due = (elapsed.as_secs_f64() * self.per_sec).floor() as u64;
        due.min(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fall_due_at_the_rate() {
        let pace = Pace::new(1000.0, Duration::from_secs(5));
        assert_eq!(pace.total(), 5000);
        assert_eq!(pace.due(Duration::ZERO), 0);
        assert_eq!(pace.due(Duration::from_micros(999)), 0);
        assert_eq!(pace.due(Duration::from_millis(1)), 1);
        assert_eq!(pace.due(Duration::from_millis(2500)), 2500);
    }

    #[test]
    fn nothing_is_due_beyond_the_total() {
        let pace = Pace::new(1000.0, Duration::from_secs(5));
        assert_eq!(pace.due(Duration::from_secs(5)), 5000);
        assert_eq!(pace.due(Duration::from_secs(60)), 5000);
    }

    #[test]
    fn fractional_rates_keep_their_average() {
        let pace = Pace::new(2.5, Duration::from_secs(4));
        assert_eq!(pace.total(), 10);
        assert_eq!(pace.due(Duration::from_millis(399)), 0);
        assert_eq!(pace.due(Duration::from_millis(400)), 1);
        assert_eq!(pace.due(Duration::from_millis(1999)), 4);
        assert_eq!(pace.due(Duration::from_secs(2)), 5);
    }

    #[test]
    fn a_rate_too_low_or_unknown_becomes_one_a_second() {
        assert_eq!(Pace::new(0.0, Duration::from_secs(3)).total(), 3);
        assert_eq!(Pace::new(f64::NAN, Duration::from_secs(3)).per_sec(), 1.0);
        assert_eq!(Pace::new(5.0, Duration::ZERO).total(), 1);
    }
}
