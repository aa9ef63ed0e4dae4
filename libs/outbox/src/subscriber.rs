//! Who gets which events: a [`Subscriber`] (name, type patterns, the sink client) and the config
//! entry it is made from.

use std::sync::Arc;

use crate::event::TypePattern;
use crate::sink::Sink;

/// One consumer: its name (the key of its delivery rows — keep it stable), the event types it
/// wants, and the client to reach it. Delivery rows are created when an event is written, for
/// the subscribers configured then; a subscriber dropped from the config leaves its pending rows
/// (and their events) in place until it returns or they are deleted by hand.
#[derive(Clone)]
pub struct Subscriber {
    pub name: String,
    pub event_types: Vec<TypePattern>,
    pub sink: Arc<dyn Sink>,
}

/// One entry of a service's `events.subscribers` config: which sink gets which event types. The
/// composing process turns it into a [`Subscriber`] by adding the client it built for the sink.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberConfig {
    /// The subscriber's stable name (e.g. "audit"); its delivery rows are keyed by it.
    pub name: String,
    /// The service whose `EventSinkService` receives the events; `name` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `*`, prefixes like `auth.*`, or exact types.
    pub event_types: Vec<String>,
}

impl Subscriber {
    /// The subscriber `config` describes, delivering through `sink`.
    pub fn from_config<S: Sink>(config: &SubscriberConfig, sink: S) -> Self {
        let types: Vec<&str> = config.event_types.iter().map(String::as_str).collect();
        Self::new(&config.name, &types, sink)
    }

    /// `event_types` are `*`, prefixes like `auth.*`, or exact types.
    pub fn new<S: Sink>(name: &str, event_types: &[&str], sink: S) -> Self {
        Self {
            name: name.to_owned(),
            event_types: event_types.iter().map(|p| TypePattern::new(p)).collect(),
            sink: Arc::new(sink),
        }
    }

    pub(crate) fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|p| p.matches(event_type))
    }
}
