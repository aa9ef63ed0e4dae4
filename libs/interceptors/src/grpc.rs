//! gRPC-over-HTTP/2 details both sides of the stack need: how a call ended (`grpc-status`, in the
//! response headers for a trailers-only response, else in the trailers), and `grpc-timeout`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Code;

/// The `grpc-status` in `headers`, if present.
pub fn status_code(headers: &HeaderMap) -> Option<Code> {
    headers
        .get(crate::headers::GRPC_STATUS)
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The gRPC code an error from a layer or the transport stands for: a `tonic::Status` anywhere
/// in its source chain, else UNAVAILABLE for connection problems, else UNKNOWN.
pub fn error_code(err: &(dyn std::error::Error + 'static)) -> Code {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut transport = false;
    while let Some(err) = current {
        if let Some(status) = err.downcast_ref::<tonic::Status>() {
            return status.code();
        }
        if err.is::<tonic::transport::Error>() || err.is::<std::io::Error>() {
            transport = true;
        }
        current = err.source();
    }
    if transport {
        Code::Unavailable
    } else {
        Code::Unknown
    }
}

/// Calls `on_done` with the call's final code: now for a trailers-only response, otherwise when
/// the body's trailers arrive (CANCELLED if the body fails, ends without trailers, or is dropped
/// first). Generic over the callback, so it is stored in the body wrapper, not boxed apart.
pub fn observe<F>(response: crate::Response, on_done: F) -> crate::Response
where
    F: FnOnce(Code) + Send + 'static,
{
    if let Some(code) = status_code(response.headers()) {
        on_done(code);
        return response;
    }
    response.map(|body| {
        tonic::body::Body::new(ObservedBody {
            inner: body,
            guard: DoneGuard(Some(on_done)),
        })
    })
}

struct DoneGuard<F: FnOnce(Code)>(Option<F>);

impl<F: FnOnce(Code)> DoneGuard<F> {
    fn finish(&mut self, code: Code) {
        if let Some(on_done) = self.0.take() {
            on_done(code);
        }
    }
}

impl<F: FnOnce(Code)> Drop for DoneGuard<F> {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

pin_project! {
    /// A response body that reports the call's final code (see [`observe`]).
    pub struct ObservedBody<B, F: FnOnce(Code)> {
        #[pin]
        inner: B,
        guard: DoneGuard<F>,
    }
}

impl<B, F> Body for ObservedBody<B, F>
where
    B: Body<Data = Bytes>,
    F: FnOnce(Code),
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.guard
                        .finish(status_code(trailers).unwrap_or(Code::Unknown));
                }
            }
            // A failing response body is a broken stream (the peer reset or went away).
            Poll::Ready(Some(Err(_))) => this.guard.finish(Code::Cancelled),
            // A body that ends without trailers carries no status: the stream was cut short
            // (typically the peer went away), so the call did not complete.
            Poll::Ready(None) => this.guard.finish(Code::Cancelled),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Parses a `grpc-timeout` value (`<up to 8 digits><H|M|S|m|u|n>`).
pub fn parse_timeout(value: &http::HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Encodes `duration` as a `grpc-timeout` value, in the finest unit that fits in 8 digits
/// (rounded down: an upstream must never get more time than we have).
pub fn encode_timeout(duration: Duration) -> http::HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = duration.as_nanos();
    let (amount, unit) = if nanos <= MAX {
        (nanos, "n")
    } else if nanos / 1_000 <= MAX {
        (nanos / 1_000, "u")
    } else if nanos / 1_000_000 <= MAX {
        (nanos / 1_000_000, "m")
    } else if nanos / 1_000_000_000 <= MAX {
        (nanos / 1_000_000_000, "S")
    } else {
        ((nanos / 60_000_000_000).min(MAX), "M")
    };
    http::HeaderValue::from_str(&format!("{amount}{unit}")).expect("digits and a unit letter")
}

/// What a caller is told of an internal failure: that it happened and the request id to quote,
/// never the underlying text (which the caller logs with that id). The one wording every
/// process and the gateway use.
pub fn internal_message(request_id: &str) -> String {
    format!("internal error (request id {request_id})")
}

/// `err: source: source…` on one line: what the log records of an internal failure (under the
/// request id the caller was given), so the whole cause is in one field.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// INTERNAL carrying only [`internal_message`].
pub fn internal_error(request_id: &str) -> tonic::Status {
    tonic::Status::internal(internal_message(request_id))
}

/// Splits `/pkg.Service/Method` into `("pkg.Service", "Method")`.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// The canonical upper-case name of `code` (`OK`, `UNAVAILABLE`, …), as metrics and logs print it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_trip_rounding_down() {
        for duration in [
            Duration::from_millis(300),
            Duration::from_secs(5),
            Duration::from_nanos(1_234),
            Duration::from_secs(3 * 3600),
        ] {
            let parsed = parse_timeout(&encode_timeout(duration)).unwrap();
            assert!(parsed <= duration, "{duration:?} → {parsed:?}");
            assert!(duration - parsed < Duration::from_secs(60), "{duration:?}");
        }
        assert_eq!(
            parse_timeout(&http::HeaderValue::from_static("300m")),
            Some(Duration::from_millis(300))
        );
        for bad in ["", "m", "123456789m", "12x", "-1S", "1.5S"] {
            assert_eq!(
                parse_timeout(&http::HeaderValue::from_static(bad)),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(split_path("/a.B/C"), Some(("a.B", "C")));
        assert_eq!(split_path("/a.B/C/D"), None);
        assert_eq!(split_path("a.B/C"), None);
    }
}
