//! What proves the figures honest: every notification sent has exactly one delivery to the
//! endpoint, DELIVERED, whose `webhook-id` reached the receiver exactly once,
//! and nothing else arrived; the captured delivery's Standard Webhooks signature verifies with
//! the endpoint's secret.

use std::collections::HashMap;

use base64::Engine as _;
use ironmesh_proto::ironmesh::notification::v1 as notification;

use super::load::Sent;
use super::receiver::{Arrival, Captured};
use crate::error::BenchError;

/// One notification's path: created (Send's `created_at`) → received, µs since the epoch.
#[derive(Clone, Copy, Debug)]
pub struct Trip {
    pub created_us: i64,
    pub received_us: i64,
}

/// Checks `sent` against the endpoint's `deliveries` and the receiver's `arrivals` (exactly
/// those of this run); the trips, in no particular order.
pub fn exactly_once(
    what: &str,
    sent: &[Sent],
    deliveries: &[notification::Delivery],
    arrivals: &[Arrival],
) -> Result<Vec<Trip>, BenchError> {
    let fail = |why: String| Err(BenchError::Failed(format!("{what}: {why}")));
    let mut by_notification: HashMap<&str, &notification::Delivery> = HashMap::new();
    for d in deliveries {
        if by_notification.insert(&d.notification_id, d).is_some() {
            return fail(format!(
                "notification {} has two deliveries to the endpoint",
                d.notification_id
            ));
        }
    }
    let mut received: HashMap<&str, Vec<i64>> = HashMap::new();
    for a in arrivals {
        received.entry(&a.webhook_id).or_default().push(a.at_us);
    }
    let mut trips = Vec::with_capacity(sent.len());
    for s in sent {
        let Some(d) = by_notification.get(s.id.as_str()) else {
            return fail(format!("notification {} has no delivery", s.id));
        };
        if d.state != notification::DeliveryState::Delivered as i32 {
            return fail(format!(
                "delivery {} is {:?} after {} attempt(s) ({})",
                d.delivery_id,
                notification::DeliveryState::try_from(d.state),
                d.attempts,
                d.last_error
            ));
        }
        match received.remove(d.delivery_id.as_str()).as_deref() {
            Some(&[at]) => trips.push(Trip {
                created_us: s.created_us,
                received_us: at,
            }),
            Some(times) => {
                return fail(format!(
                    "webhook-id {} arrived {} times",
                    d.delivery_id,
                    times.len()
                ));
            }
            None => return fail(format!("webhook-id {} never arrived", d.delivery_id)),
        }
    }
    if let Some((id, times)) = received.into_iter().next() {
        return fail(format!(
            "the receiver got {} request(s) with webhook-id {id:?}, no delivery of this run",
            times.len()
        ));
    }
    Ok(trips)
}

/// The captured request's `webhook-signature` must hold a `v1,` HMAC-SHA256 of
/// `id.timestamp.body` under `secret` (`whsec_<base64>`).
pub fn signature(captured: &Captured, secret: &str) -> Result<(), BenchError> {
    let header = |name: &str| {
        captured
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| BenchError::Failed(format!("the delivery has no {name} header")))
    };
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .ok_or_else(|| BenchError::Failed("the signing secret is not whsec_<base64>".into()))?;
    let mut signed = format!(
        "{}.{}.",
        header("webhook-id")?,
        header("webhook-timestamp")?
    )
    .into_bytes();
    signed.extend_from_slice(&captured.body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let expected =
        base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, &signed));
    let verified = header("webhook-signature")?
        .split(' ')
        .any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()));
    if verified {
        Ok(())
    } else {
        Err(BenchError::Failed(
            "the delivery's webhook-signature does not verify with the endpoint's secret".into(),
        ))
    }
}
