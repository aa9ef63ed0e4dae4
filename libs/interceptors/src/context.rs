//! The context of one call, as the server stack learnt it: who asked (request id), which trace it
//! belongs to, how long it may take, and with what authorization. Server layers fill it in as the
//! request's extension; the innermost layer runs the handler inside [`CallContext::scope`] so any
//! client call the handler makes picks the context up with [`CallContext::current`] — no
//! parameter threading through domain code.

use std::future::Future;
use std::sync::Arc;

use http::HeaderValue;
use tokio::time::Instant;

/// The correlation id of a call (`x-request-id`), minted as a UUIDv7 when the caller sent none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    /// A fresh UUIDv7 id. The random bits come from the thread-local generator rather than the
    /// OS (`Uuid::now_v7` makes a syscall per id, measurable on every call).
    pub fn mint() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let random: [u8; 10] = random_bytes();
        let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        // Formatted on the stack, so the only allocation is the shared string itself.
        Self(Arc::from(
            &*id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        ))
    }

    /// Accepts a caller's id if it is 1..=128 visible ASCII characters; anything else is
    /// replaced rather than logged or echoed.
    pub fn accept(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let valid = (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic());
        valid.then(|| Self(String::from_utf8_lossy(bytes).into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A W3C trace context (`traceparent`): the trace and the span that is the parent of the next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceContext {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; all-zero ids and version `ff` are invalid.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version.eq_ignore_ascii_case("ff") {
            return None;
        }
        // Version 00 has exactly four fields; later versions may append more.
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = decode_hex(trace)?;
        let span_id: [u8; 8] = decode_hex(span)?;
        let [flags]: [u8; 1] = decode_hex(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// A new trace with a new root span.
    pub fn new_root() -> Self {
        Self {
            trace_id: nonzero(random_bytes()),
            span_id: nonzero(random_bytes()),
            sampled: true,
        }
    }

    /// The same trace, a new span id.
    pub fn child(&self) -> Self {
        Self {
            span_id: nonzero(random_bytes()),
            ..*self
        }
    }

    /// The `traceparent` header value.
    pub fn to_header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

/// `N` bytes from the thread's generator, filled as bytes: `rand::random::<[u8; N]>()` would
/// spend a whole 32-bit draw on every byte (a quarter of a ChaCha block per trace id).
fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn nonzero<const N: usize>(mut bytes: [u8; N]) -> [u8; N] {
    if bytes.iter().all(|b| *b == 0) {
        bytes[N - 1] = 1;
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2
        || !text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// When the call must be finished by (server: the caller's budget; client: what was sent on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(pub Instant);

/// Everything a handler's outgoing calls inherit from the incoming one. The server stack keeps
/// it as the request's one extension of its own, filled in place layer by layer (one insert per
/// call rather than one per piece); handlers read it with [`CallContext::of`].
#[derive(Clone, Debug, Default)]
pub struct CallContext {
    pub request_id: Option<RequestId>,
    /// Which service and method is being served (for log lines; not propagated).
    pub labels: Option<CallLabels>,
    pub trace: Option<TraceContext>,
    pub tracestate: Option<HeaderValue>,
    pub deadline: Option<Instant>,
    pub authorization: Option<HeaderValue>,
}

/// The component and the gRPC method a call is served by, as log lines name them.
#[derive(Clone, Debug)]
pub struct CallLabels {
    /// The component (`orders`).
    pub service: &'static str,
    /// The full gRPC service name (`ironmesh.orders.v1.OrdersService`).
    pub rpc_service: Arc<str>,
    pub rpc_method: Arc<str>,
}

tokio::task_local! {
    static CURRENT: CallContext;
}

impl CallContext {
    /// The context of the call this task is serving, if any.
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// `f` of the context of the call this task is serving, without copying it (the log
    /// formatter's way in); `None` outside a call.
    pub fn with_current<T>(f: impl FnOnce(&CallContext) -> T) -> Option<T> {
        CURRENT.try_with(f).ok()
    }

    /// Runs `future` with `self` as the current context.
    pub fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }

    /// What the server stack learnt about the call `extensions` belong to (`None` outside it).
    pub fn of(extensions: &http::Extensions) -> Option<&CallContext> {
        extensions.get()
    }

    /// The call's request id, as the server stack accepted or minted it.
    pub fn request_id_of(extensions: &http::Extensions) -> Option<RequestId> {
        Self::of(extensions)?.request_id.clone()
    }

    /// The call's deadline, as the server stack set it.
    pub fn deadline_of(extensions: &http::Extensions) -> Option<Instant> {
        Self::of(extensions)?.deadline
    }

    /// The context in `extensions`, created empty if no layer has put one there yet.
    pub(crate) fn in_place(extensions: &mut http::Extensions) -> &mut CallContext {
        extensions.get_or_insert_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceContext::parse(header).unwrap();
        assert!(parsed.sampled);
        assert_eq!(parsed.to_header(), header);
        assert_eq!(parsed.child().trace_id, parsed.trace_id);
        assert_ne!(parsed.child().span_id, parsed.span_id);
    }

    #[test]
    fn invalid_traceparents_are_rejected() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_ids_must_be_short_visible_ascii() {
        assert!(RequestId::accept(&HeaderValue::from_static("abc-123")).is_some());
        assert!(RequestId::accept(&HeaderValue::from_static("has space")).is_none());
        let long = "x".repeat(129);
        assert!(RequestId::accept(&HeaderValue::from_str(&long).unwrap()).is_none());
    }
}
