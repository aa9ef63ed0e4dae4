//! Which platform events become notifications, to whom, saying what: one table ([`TABLE`]),
//! not code per event. Each row names the event type, how its payload is read (which field
//! holds the recipient, which values the text may use) and the subject and body templates
//! (`{name}` placeholders). An event type without a row notifies nobody. The event sink
//! ([`crate::sink`]) makes its notifications from [`draft`]; the table and its rendering are
//! tested here, the sink end to end in `tests/events*.rs`.

use std::collections::BTreeMap;

use ironmesh_proto::ironmesh::auth::v1 as auth;
use ironmesh_proto::ironmesh::events::v1::Event;
use ironmesh_proto::ironmesh::orders::v1 as orders;
use ironmesh_proto::ironmesh::provisioning::v1 as provisioning;
use prost::Message as _;

/// How a row's payload is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// `ironmesh.orders.v1.Order`: the customer is told.
    Order,
    /// `ironmesh.auth.v1.PasswordChanged`.
    PasswordChanged,
    /// `ironmesh.auth.v1.ApiKeyCreated`.
    ApiKeyCreated,
    /// `ironmesh.auth.v1.UserLocked`.
    UserLocked,
    /// `ironmesh.provisioning.v1.ProvisioningRequest`: the customer being onboarded is told.
    Provisioning,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub event_type: &'static str,
    pub payload: Payload,
    pub subject: &'static str,
    pub body: &'static str,
}

/// Every event that notifies someone.
pub const TABLE: &[Row] = &[
    Row {
        event_type: "orders.order.reserved",
        payload: Payload::Order,
        subject: "Order received",
        body: "Thank you! We are holding {items} for your order {order_id}. Total: {total}. Please pay before {expires_at}.",
    },
    Row {
        event_type: "orders.order.paid",
        payload: Payload::Order,
        subject: "Payment received",
        body: "We received your payment of {total} for order {order_id} (reference {payment_reference}).",
    },
    Row {
        event_type: "orders.order.fulfilled",
        payload: Payload::Order,
        subject: "Your order is on its way",
        body: "Order {order_id} has shipped. Shipment: {shipment_reference}.",
    },
    Row {
        event_type: "orders.order.cancelled",
        payload: Payload::Order,
        subject: "Order cancelled",
        body: "Order {order_id} was cancelled: {reason}.",
    },
    Row {
        event_type: "orders.order.refunded",
        payload: Payload::Order,
        subject: "Refund issued",
        body: "We refunded {total} for order {order_id}: {reason}.",
    },
    Row {
        event_type: "auth.user.password_changed",
        payload: Payload::PasswordChanged,
        subject: "Your password was changed",
        body: "The password of your account was changed and {sessions_revoked} other session(s) were signed out. If this was not you, reset your password now.",
    },
    Row {
        event_type: "auth.api_key.created",
        payload: Payload::ApiKeyCreated,
        subject: "A new API key was created",
        body: "An API key named \"{name}\" with scopes {scopes} was created for your account. If this was not you, revoke it now.",
    },
    Row {
        event_type: "auth.user.locked",
        payload: Payload::UserLocked,
        subject: "Your account was locked",
        body: "Your account was locked: {reason}.",
    },
    Row {
        event_type: "provisioning.request.succeeded",
        payload: Payload::Provisioning,
        subject: "Your {plan} plan is ready",
        body: "Provisioning request {request_id} for the {plan} plan succeeded.",
    },
    Row {
        event_type: "provisioning.request.failed",
        payload: Payload::Provisioning,
        subject: "Provisioning of your {plan} plan failed",
        body: "Provisioning request {request_id} for the {plan} plan failed after {attempts} attempt(s): {reason}. Our operators have been told.",
    },
];

/// A notification to make from an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub recipient_id: String,
    pub event_type: String,
    pub subject: String,
    pub body: String,
    /// The values the text used, non-secret (the webhook payload's `data`).
    pub data: BTreeMap<String, String>,
    pub source_event_id: String,
}

/// The event's payload is not the message its row expects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {event_id} ({event_type}): the payload is not a {expected}")]
pub struct Undecodable {
    pub event_id: String,
    pub event_type: String,
    pub expected: &'static str,
}

/// The notification `event` calls for, if its type has a row.
pub fn draft(event: &Event) -> Result<Option<Draft>, Undecodable> {
    let Some(row) = TABLE.iter().find(|r| r.event_type == event.r#type) else {
        return Ok(None);
    };
    let (recipient_id, data) = read(row.payload, &event.payload).ok_or_else(|| Undecodable {
        event_id: event.id.clone(),
        event_type: event.r#type.clone(),
        expected: expected(row.payload),
    })?;
    if recipient_id.is_empty() {
        return Ok(None);
    }
    Ok(Some(Draft {
        recipient_id,
        event_type: event.r#type.clone(),
        subject: render(row.subject, &data),
        body: render(row.body, &data),
        data,
        source_event_id: event.id.clone(),
    }))
}

fn expected(payload: Payload) -> &'static str {
    match payload {
        Payload::Order => "ironmesh.orders.v1.Order",
        Payload::PasswordChanged => "ironmesh.auth.v1.PasswordChanged",
        Payload::ApiKeyCreated => "ironmesh.auth.v1.ApiKeyCreated",
        Payload::UserLocked => "ironmesh.auth.v1.UserLocked",
        Payload::Provisioning => "ironmesh.provisioning.v1.ProvisioningRequest",
    }
}

/// The recipient and the template values of a payload.
fn read(payload: Payload, bytes: &[u8]) -> Option<(String, BTreeMap<String, String>)> {
    let mut data = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        data.insert(k.to_owned(), v);
    };
    let recipient = match payload {
        Payload::Order => {
            let o = orders::Order::decode(bytes).ok()?;
            let items: Vec<String> = o
                .lines
                .iter()
                .map(|l| format!("{} × {}", l.quantity, l.product_name))
                .collect();
            put("order_id", o.order_id.clone());
            put("items", items.join(", "));
            put("total", money(o.total_minor, &o.currency));
            put("payment_reference", o.payment_reference.clone());
            put("shipment_reference", or_none(&o.shipment_reference));
            put("reason", or_none(&o.status_reason));
            let expires = ironmesh_runtime::time::from_timestamp(o.reservation_expires_at)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string());
            put(
                "expires_at",
                expires.unwrap_or_else(|| "the hold ends".into()),
            );
            o.customer_id
        }
        Payload::PasswordChanged => {
            let m = auth::PasswordChanged::decode(bytes).ok()?;
            put("sessions_revoked", m.sessions_revoked.to_string());
            m.user_id
        }
        Payload::ApiKeyCreated => {
            let m = auth::ApiKeyCreated::decode(bytes).ok()?;
            put("name", m.name);
            put("scopes", or_none(&m.scopes.join(", ")));
            put("api_key_id", m.api_key_id);
            m.user_id
        }
        Payload::UserLocked => {
            let m = auth::UserLocked::decode(bytes).ok()?;
            put("reason", or_none(&m.reason));
            m.user_id
        }
        Payload::Provisioning => {
            let r = provisioning::ProvisioningRequest::decode(bytes).ok()?;
            put("request_id", r.request_id);
            put("plan", r.plan);
            put("attempts", r.attempts.to_string());
            put("reason", or_none(&r.last_error));
            r.customer_id
        }
    };
    Some((recipient, data))
}

fn or_none(text: &str) -> String {
    if text.is_empty() {
        "none".into()
    } else {
        text.to_owned()
    }
}

/// Minor units as the currency writes them: `25.00 EUR`, `1500 JPY`, `1.250 KWD`.
pub fn money(minor: i64, currency: &str) -> String {
    let exponent: u32 = match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    };
    if exponent == 0 {
        return format!("{minor} {currency}");
    }
    let scale = 10i64.pow(exponent);
    let sign = if minor < 0 { "-" } else { "" };
    let (whole, fraction) = (
        minor.unsigned_abs() / scale as u64,
        minor.unsigned_abs() % scale as u64,
    );
    format!(
        "{sign}{whole}.{fraction:0width$} {currency}",
        width = exponent as usize
    )
}

/// Replaces each `{name}` in `template` by `data[name]` (unknown names stay as written).
fn render(template: &str, data: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match data.get(name) {
                    Some(value) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
