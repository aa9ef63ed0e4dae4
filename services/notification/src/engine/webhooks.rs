//! The webhook half of an attempt: the endpoint and its secrets (the previous one too during a
//! rotation's grace), the payload, one signed POST through the [`WebhookClient`](crate::webhook::WebhookClient), and what its
//! [`Attempt`](crate::webhook::Attempt) means for the delivery and the receiver's circuit.

use super::{Inner, Kind, Tried, now_ms};
use crate::domain::{Delivery, Notification};
use crate::signing::Secret;
use crate::webhook::{Outcome, Post};

impl Inner {
    pub(super) async fn webhook(&self, d: &Delivery) -> Tried {
        let endpoint = match self.store.endpoint(&d.endpoint_id).await {
            Ok(Some(e)) => e,
            Ok(None) => return Tried::final_("the endpoint was deleted"),
            Err(err) => {
                tracing::warn!(error = %err, "reading an endpoint failed");
                return Tried::retry("storage unavailable", true);
            }
        };
        if endpoint.endpoint.disabled_at.is_some() {
            return Tried::final_("the endpoint was disabled (410 Gone)");
        }
        let n = match self.notification(d).await {
            Ok(n) => n,
            Err(tried) => return tried,
        };
        let now = now_ms();
        let mut secrets = Vec::with_capacity(2);
        let mut sealed = vec![endpoint.secrets.current.as_slice()];
        if let Some((previous, until)) = &endpoint.secrets.previous
            && *until > now
        {
            sealed.push(previous.as_slice());
        }
        for bytes in sealed {
            match self.open(bytes) {
                Some(secret) => secrets.push(secret),
                None => return Tried::retry("the signing secret could not be opened", true),
            }
        }
        let body = payload(&n);
        let post = Post {
            url: &endpoint.endpoint.url,
            webhook_id: &d.id,
            body: body.as_bytes(),
            secrets: &secrets,
        };
        let attempt = self.webhooks.post(&post, now / 1000).await;
        let status = attempt.status.map_or(0, i32::from);
        // A refusal is the guard's verdict, not the receiver's health.
        let healthy =
            attempt.refused || matches!(attempt.status, Some(code) if code < 500 && code != 429);
        let kind = match attempt.outcome {
            Outcome::Delivered => Kind::Delivered,
            Outcome::Gone => Kind::Gone,
            Outcome::Failed { .. } if attempt.refused => Kind::Refused,
            Outcome::Failed { retry_after } => Kind::Retry(retry_after),
        };
        Tried {
            kind,
            status,
            error: attempt.error,
            healthy,
        }
    }

    fn open(&self, sealed: &[u8]) -> Option<Secret> {
        let plain = match self.sealing.open(sealed) {
            Ok(plain) => plain,
            Err(err) => {
                tracing::error!(error = %err, "an endpoint's sealed secret does not open with the keyring");
                return None;
            }
        };
        Secret::parse(std::str::from_utf8(&plain).ok()?).ok()
    }
}

/// The webhook body: Standard Webhooks' recommended envelope (`type`, `timestamp`, `data`)
/// with the notification's id and text beside it. Built from the stored notification, so every
/// attempt sends the same bytes.
pub fn payload(n: &Notification) -> String {
    let body = serde_json::json!({
        "type": n.event_type,
        "timestamp": n.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "notification_id": n.id,
        "recipient_id": n.recipient_id,
        "subject": n.subject,
        "body": n.body,
        "source_event_id": n.source_event_id,
        "data": n.data,
    });
    body.to_string()
}
