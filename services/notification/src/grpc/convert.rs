//! proto ⇄ domain for notification.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ironmesh_proto::ironmesh::notification::v1 as pb;
use ironmesh_runtime::time::timestamp;

use crate::domain::{Delivery, DeliveryState, Endpoint, Notification};
use crate::preferences::{Channel, Preferences, RawChannel};

pub fn channel(value: i32) -> RawChannel {
    match pb::Channel::try_from(value).ok()? {
        pb::Channel::Unspecified => None,
        pb::Channel::InApp => Some(Channel::InApp),
        pb::Channel::Email => Some(Channel::Email),
        pb::Channel::Webhook => Some(Channel::Webhook),
    }
}

pub fn channels(values: &[i32]) -> Vec<RawChannel> {
    values.iter().map(|c| channel(*c)).collect()
}

pub fn channel_value(channel: Channel) -> i32 {
    match channel {
        Channel::InApp => pb::Channel::InApp.into(),
        Channel::Email => pb::Channel::Email.into(),
        Channel::Webhook => pb::Channel::Webhook.into(),
    }
}

/// A state filter: `None` for UNSPECIFIED (any), `Err` for a value the contract lacks.
pub fn state_filter(value: i32) -> Result<Option<DeliveryState>, ()> {
    match pb::DeliveryState::try_from(value).map_err(|_| ())? {
        pb::DeliveryState::Unspecified => Ok(None),
        pb::DeliveryState::Pending => Ok(Some(DeliveryState::Pending)),
        pb::DeliveryState::Delivered => Ok(Some(DeliveryState::Delivered)),
        pb::DeliveryState::Failed => Ok(Some(DeliveryState::Failed)),
    }
}

fn state_value(state: DeliveryState) -> i32 {
    match state {
        DeliveryState::Pending => pb::DeliveryState::Pending.into(),
        DeliveryState::Delivered => pb::DeliveryState::Delivered.into(),
        DeliveryState::Failed => pb::DeliveryState::Failed.into(),
    }
}

fn millis_timestamp(ms: i64) -> Option<prost_types::Timestamp> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(timestamp)
}

pub fn notification(n: &Notification) -> pb::Notification {
    pb::Notification {
        notification_id: n.id.clone(),
        recipient_id: n.recipient_id.clone(),
        event_type: n.event_type.clone(),
        subject: n.subject.clone(),
        body: n.body.clone(),
        data: n.data.clone().into_iter().collect(),
        channels: n.channels.iter().map(|c| channel_value(*c)).collect(),
        source_event_id: n.source_event_id.clone(),
        read_at: n.read_at.map(timestamp),
        created_at: Some(timestamp(n.created_at)),
    }
}

pub fn endpoint(e: &Endpoint) -> pb::WebhookEndpoint {
    pb::WebhookEndpoint {
        endpoint_id: e.id.clone(),
        owner_id: e.owner_id.clone(),
        url: e.url.clone(),
        description: e.description.clone(),
        event_types: e.event_types.clone(),
        created_at: Some(timestamp(e.created_at)),
        secret_rotated_at: Some(timestamp(e.secret_rotated_at)),
        disabled_at: e.disabled_at.map(timestamp),
    }
}

pub fn delivery(d: &Delivery) -> pb::Delivery {
    pb::Delivery {
        delivery_id: d.id.clone(),
        notification_id: d.notification_id.clone(),
        channel: channel_value(d.channel),
        endpoint_id: d.endpoint_id.clone(),
        event_type: d.event_type.clone(),
        state: state_value(d.state),
        attempts: d.attempts,
        last_status_code: d.last_status_code,
        last_error: d.last_error.clone(),
        next_attempt_at: match d.state {
            DeliveryState::Pending => d.next_attempt_ms.and_then(millis_timestamp),
            _ => None,
        },
        delivered_at: d.delivered_at.map(timestamp),
        created_at: Some(timestamp(d.created_at)),
    }
}

pub fn preferences(p: &Preferences, at: Option<DateTime<Utc>>) -> pb::NotificationPreferences {
    pb::NotificationPreferences {
        default_channels: p
            .default_channels
            .iter()
            .map(|c| channel_value(*c))
            .collect(),
        event_types: p
            .overrides
            .iter()
            .map(|o| pb::EventTypePreference {
                event_type: o.pattern.clone(),
                channels: o.channels.iter().map(|c| channel_value(*c)).collect(),
            })
            .collect(),
        updated_at: at.map(timestamp),
    }
}

/// Preferences as SetPreferences sends them, checked.
pub fn new_preferences(
    body: Option<pb::NotificationPreferences>,
) -> Result<Preferences, ironmesh_runtime::validation::Violations> {
    let body = body.unwrap_or_default();
    let defaults = channels(&body.default_channels);
    let lists: Vec<Vec<RawChannel>> = body
        .event_types
        .iter()
        .map(|e| channels(&e.channels))
        .collect();
    let overrides: Vec<(&str, &[RawChannel])> = body
        .event_types
        .iter()
        .zip(&lists)
        .map(|(e, list)| (e.event_type.as_str(), list.as_slice()))
        .collect();
    Preferences::new(&defaults, &overrides)
}

/// What two `Send`s with one key must agree on, canonically (map order fixed), for the
/// idempotency fingerprint.
pub fn send_fingerprint(body: &pb::SendRequest) -> String {
    let data: BTreeMap<&String, &String> = body.data.iter().collect();
    let canonical = serde_json::json!([
        body.recipient_id,
        body.event_type,
        body.subject,
        body.body,
        data,
        body.channels,
    ]);
    ironmesh_idempotency::fingerprint(canonical.to_string().as_bytes())
}
