//! The JSON log line: one object per event —
//! `{"timestamp","level","message", …the event's fields…, "request_id","trace_id","service",
//! "rpc.service","rpc.method", "span":{…the current span's fields…,"name"}}`.
//!
//! The call's ids come from the event when it names them (the stack's completion lines do) and
//! otherwise from the call context of the task that logs ([`CallContext`], task-local, set by
//! the server stack around every handler). That is what lets the stack skip a per-call span when
//! traces are not exported and still give every line of a call its `request_id` and `trace_id`.
//! tracing-subscriber's own JSON format cannot add fields from outside the span tree, hence this
//! formatter; fields and spans are still rendered by its `JsonFields`.

use std::fmt::{self, Write as _};

use ironmesh_interceptors::context::CallContext;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonLines;

/// The call-context keys a line gets from the task when the event does not name them.
const CONTEXT_KEYS: [&str; 5] = [
    "request_id",
    "trace_id",
    "service",
    "rpc.service",
    "rpc.method",
];

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Line::default();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        line.push("timestamp", &Value::String(now));
        line.push(
            "level",
            &Value::String(event.metadata().level().as_str().into()),
        );
        event.record(&mut line);
        CallContext::with_current(|call| {
            let labels = call.labels.as_ref();
            let values = [
                call.request_id.as_ref().map(|id| id.as_str().to_owned()),
                call.trace.map(|t| t.trace_id_hex()),
                labels.map(|l| l.service.to_owned()),
                labels.map(|l| l.rpc_service.to_string()),
                labels.map(|l| l.rpc_method.to_string()),
            ];
            for (key, value) in CONTEXT_KEYS.iter().zip(values) {
                if let Some(value) = value
                    && !line.seen.contains(key)
                {
                    line.push(key, &Value::String(value));
                }
            }
        });
        if let Some(span) = ctx.lookup_current() {
            let extensions = span.extensions();
            let fields = extensions
                .get::<FormattedFields<JsonFields>>()
                .map(|f| f.fields.as_str())
                .filter(|f| f.len() > 2);
            // JsonFields renders `{"key":value,…}`; the span's name closes the object.
            let name = Value::String(span.name().into());
            match fields {
                Some(fields) => {
                    let inner = &fields[..fields.len() - 1];
                    let _ = write!(line.out, ",\"span\":{inner},\"name\":{name}}}");
                }
                None => {
                    let _ = write!(line.out, ",\"span\":{{\"name\":{name}}}");
                }
            }
        }
        line.out.push('}');
        writeln!(writer, "{}", line.out)
    }
}

/// The line being written, and which context keys the event named itself.
#[derive(Default)]
struct Line {
    out: String,
    seen: Vec<&'static str>,
}

impl Line {
    fn push(&mut self, key: &str, value: &Value) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        let _ = write!(self.out, "{}:{value}", Value::String(key.into()));
        if let Some(known) = CONTEXT_KEYS.iter().find(|k| **k == key) {
            self.seen.push(known);
        }
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field.name(), &Value::String(value.into()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field.name(), &Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field.name(), &Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field.name(), &Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field.name(), &Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field.name(), &Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field.name(), &Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use ironmesh_interceptors::context::{CallLabels, RequestId, TraceContext};
    use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Sends what the formatter writes to the test.
    #[derive(Clone)]
    struct Captured(UnboundedSender<Vec<u8>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(bytes.to_vec());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(written: &mut UnboundedReceiver<Vec<u8>>) -> Vec<serde_json::Value> {
        let mut bytes = Vec::new();
        while let Ok(chunk) = written.try_recv() {
            bytes.extend(chunk);
        }
        let text = String::from_utf8(bytes).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// A handler's line gets the call's ids from the task's context; an event naming its own
    /// ids keeps them; a line outside any call has none; span fields and odd text stay valid
    /// JSON.
    #[tokio::test]
    async fn lines_carry_the_calls_ids_from_the_task() {
        let (sender, mut written) = unbounded_channel();
        let writer = Captured(sender);
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        let _guard = tracing::subscriber::set_default(subscriber);
        let trace = TraceContext::new_root();
        let context = CallContext {
            request_id: Some(RequestId("req-1".into())),
            labels: Some(CallLabels {
                service: "orders",
                rpc_service: "ironmesh.orders.v1.OrdersService".into(),
                rpc_method: "GetOrder".into(),
            }),
            trace: Some(trace),
            ..Default::default()
        };
        context
            .scope(async {
                tracing::warn!(sku = "a\"b", n = 3, "stock \"low\"");
                tracing::info!(request_id = "explicit", "own ids");
            })
            .await;
        let span = tracing::info_span!("service", service = "auth");
        span.in_scope(|| tracing::info!(ok = true, "outside a call"));
        let got = lines(&mut written);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0]["message"], "stock \"low\"");
        assert_eq!(
            (got[0]["sku"].as_str(), got[0]["n"].as_i64()),
            (Some("a\"b"), Some(3))
        );
        assert_eq!(got[0]["level"], "WARN");
        assert_eq!(got[0]["request_id"], "req-1");
        assert_eq!(got[0]["trace_id"], trace.trace_id_hex());
        assert_eq!(got[0]["rpc.method"], "GetOrder");
        assert_eq!(got[0]["service"], "orders");
        assert_eq!(got[1]["request_id"], "explicit");
        assert!(got[2].get("request_id").is_none());
        assert_eq!(got[2]["span"]["service"], "auth");
        assert_eq!(got[2]["span"]["name"], "service");
        assert!(got[2]["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
