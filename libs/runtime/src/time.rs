//! Timestamps between the stores (chrono, UTC) and the contracts (`google.protobuf.Timestamp`),
//! one conversion for every service.

use chrono::{DateTime, Utc};

/// `at` as a protobuf timestamp.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf timestamp as UTC time; `None` when unset or out of range.
pub fn from_timestamp(at: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let at = at?;
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_nanosecond_precision() {
        let at = DateTime::from_timestamp(1_764_700_000, 123_456_789).unwrap();
        assert_eq!(from_timestamp(Some(timestamp(at))), Some(at));
        assert_eq!(from_timestamp(None), None);
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(from_timestamp(Some(bad)), None);
    }
}
