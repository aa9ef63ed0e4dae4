//! Channel preferences: which channels a notification of an event type goes to. A user's
//! per-event-type choices (exact types, or prefixes ending in `.*`) override their default
//! channels; the most specific match wins — an exact type, then the longest prefix — and an
//! empty channel list mutes the type. Never set: in-app and email. `Send`'s own `channels`
//! override all of it. Not wired into the service yet; the rules are tested here.

use ironmesh_runtime::validation::Violations;

/// A way to reach a user (the contract's `Channel` without UNSPECIFIED).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    InApp,
    Email,
    Webhook,
}

/// Most per-event-type entries a user may set.
pub const MAX_OVERRIDES: usize = 100;
/// Longest event type or pattern.
pub const MAX_EVENT_TYPE_CHARS: usize = 128;

/// One per-event-type choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// `orders.order.paid`, or a prefix such as `orders.*` (`*` alone matches everything).
    pub pattern: String,
    /// Empty = muted.
    pub channels: Vec<Channel>,
}

/// A user's preferences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preferences {
    pub default_channels: Vec<Channel>,
    pub overrides: Vec<Override>,
}

impl Default for Preferences {
    /// What a user who never chose gets: in-app and email for everything.
    fn default() -> Self {
        Self {
            default_channels: vec![Channel::InApp, Channel::Email],
            overrides: Vec::new(),
        }
    }
}

/// A channel as the request states it: `None` for a value the contract does not define (or
/// UNSPECIFIED).
pub type RawChannel = Option<Channel>;

impl Preferences {
    /// Preferences as SetPreferences states them, checked: known channels, each at most once
    /// per list, at most [`MAX_OVERRIDES`] overrides with valid, unique patterns. Field names
    /// are the proto's (`preferences.event_types[2].event_type`).
    pub fn new(
        default_channels: &[RawChannel],
        overrides: &[(&str, &[RawChannel])],
    ) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        let default_channels = channels(
            &mut violations,
            "preferences.default_channels",
            default_channels,
        );
        if overrides.len() > MAX_OVERRIDES {
            violations.add("preferences.event_types", "at most 100 entries");
        }
        let mut checked: Vec<Override> = Vec::with_capacity(overrides.len());
        for (i, (pattern, list)) in overrides.iter().enumerate().take(MAX_OVERRIDES) {
            let field = format!("preferences.event_types[{i}]");
            if let Err(why) = check_pattern(pattern) {
                violations.add(format!("{field}.event_type"), why);
            } else if checked.iter().any(|o| o.pattern == *pattern) {
                violations.add(format!("{field}.event_type"), "appears more than once");
            }
            let channels = channels(&mut violations, &format!("{field}.channels"), list);
            checked.push(Override {
                pattern: (*pattern).to_owned(),
                channels,
            });
        }
        violations.into_result()?;
        Ok(Self {
            default_channels,
            overrides: checked,
        })
    }

    /// The channels for `event_type`: the most specific override, else the defaults.
    pub fn channels_for(&self, event_type: &str) -> &[Channel] {
        self.overrides
            .iter()
            .filter_map(|o| specificity(&o.pattern, event_type).map(|rank| (rank, o)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, o)| o.channels.as_slice())
            .unwrap_or(&self.default_channels)
    }
}

/// How specifically `pattern` matches `event_type` (higher wins), or `None` if it does not.
pub(crate) fn specificity(pattern: &str, event_type: &str) -> Option<usize> {
    if pattern == event_type {
        return Some(usize::MAX);
    }
    if pattern == "*" {
        return Some(0);
    }
    let prefix = pattern.strip_suffix(".*")?;
    let rest = event_type.strip_prefix(prefix)?;
    rest.starts_with('.').then_some(prefix.len())
}

/// An event type (`<service>.<aggregate>.<verb>`: dot-separated segments of `a-z`, `0-9` and
/// `_`) or a prefix of one ending in `.*`, or `*`.
pub(crate) fn check_pattern(pattern: &str) -> Result<(), &'static str> {
    if pattern.is_empty() {
        return Err("required");
    }
    if pattern.chars().count() > MAX_EVENT_TYPE_CHARS {
        return Err("at most 128 characters");
    }
    if pattern == "*" {
        return Ok(());
    }
    let body = pattern.strip_suffix(".*").unwrap_or(pattern);
    let valid = body.split('.').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    });
    if valid {
        Ok(())
    } else {
        Err("an event type such as orders.order.paid, or a prefix such as orders.*")
    }
}

pub(crate) fn channels(
    violations: &mut Violations,
    field: &str,
    raw: &[RawChannel],
) -> Vec<Channel> {
    let mut list = Vec::with_capacity(raw.len());
    for (i, channel) in raw.iter().enumerate() {
        match channel {
            None => violations.add(format!("{field}[{i}]"), "not a channel"),
            Some(c) if list.contains(c) => {
                violations.add(format!("{field}[{i}]"), "appears more than once")
            }
            Some(c) => list.push(*c),
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    use Channel::{Email, InApp, Webhook};

    #[test]
    fn never_set_means_in_app_and_email() {
        let p = Preferences::default();
        assert_eq!(p.channels_for("orders.order.paid"), [InApp, Email]);
    }

    /// Exact beats the longest prefix, which beats a shorter one and `*`; empty mutes.
    #[test]
    fn the_most_specific_match_wins() {
        let p = Preferences::new(
            &[Some(InApp)],
            &[
                ("*", &[Some(Email)]),
                ("orders.*", &[Some(Webhook)]),
                ("orders.order.*", &[Some(InApp), Some(Webhook)]),
                ("orders.order.paid", &[]),
            ],
        )
        .unwrap();
        assert_eq!(p.channels_for("orders.order.paid"), [] as [Channel; 0]);
        assert_eq!(p.channels_for("orders.order.refunded"), [InApp, Webhook]);
        assert_eq!(p.channels_for("orders.invoice.sent"), [Webhook]);
        assert_eq!(p.channels_for("auth.user.locked"), [Email]);
        // A prefix matches whole segments only.
        let p = Preferences::new(&[Some(InApp)], &[("orders.ord.*", &[Some(Email)])]).unwrap();
        assert_eq!(p.channels_for("orders.order.paid"), [InApp]);
    }

    #[test]
    fn bad_preferences_name_their_fields() {
        let err = Preferences::new(
            &[Some(InApp), None, Some(InApp)],
            &[
                ("Orders.Paid", &[Some(Email)]),
                ("orders.*", &[Some(Email), Some(Email)]),
                ("orders.*", &[]),
                ("", &[]),
            ],
        )
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "preferences.default_channels[1]",
                "preferences.default_channels[2]",
                "preferences.event_types[0].event_type",
                "preferences.event_types[1].channels[1]",
                "preferences.event_types[2].event_type",
                "preferences.event_types[3].event_type",
            ]
        );
        let many: Vec<(String, Vec<RawChannel>)> =
            (0..101).map(|i| (format!("t.e{i}"), vec![])).collect();
        let refs: Vec<(&str, &[RawChannel])> = many
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_slice()))
            .collect();
        assert!(Preferences::new(&[], &refs).is_err());
    }
}
