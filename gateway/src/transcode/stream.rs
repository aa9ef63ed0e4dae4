//! Server-streaming replies over HTTP/1.1 chunked or HTTP/2 bodies, one message at a time as it
//! arrives:
//! - NDJSON (`application/x-ndjson`, the default): one line per message, `{"result": …}`, as
//!   grpc-gateway writes them;
//! - server-sent events when the client's `Accept` names `text/event-stream`: `data: …` events;
//! - raw bytes when the messages are `google.api.HttpBody`.
//!
//! A status that ends the stream with an error arrives as a final `{"error": <google.rpc.Status>}`
//! line (SSE: an `event: error`), so a client can tell a failure from the end; a raw stream cannot
//! carry one, so its body is aborted instead and the client sees an incomplete transfer.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage};
use tonic::Streaming;

use super::errors;

/// How the stream is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    EventStream,
    Raw,
}

impl Format {
    /// Raw for `HttpBody` messages; otherwise SSE if the client accepts it, NDJSON if not.
    pub fn negotiate(headers: &HeaderMap, raw: bool) -> Self {
        if raw {
            return Self::Raw;
        }
        let wants_sse = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
            });
        if wants_sse {
            Self::EventStream
        } else {
            Self::Ndjson
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::EventStream => "text/event-stream",
            // Each message's own content type would arrive after the headers are sent.
            Self::Raw => "application/octet-stream",
        }
    }

    fn frame(self, key: &str, json: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(json.len() + 24);
        match self {
            Self::Ndjson => {
                out.extend_from_slice(b"{\"");
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b"\":");
                out.extend_from_slice(json);
                out.extend_from_slice(b"}\n");
            }
            Self::EventStream | Self::Raw => {
                if key == "error" {
                    out.extend_from_slice(b"event: error\n");
                }
                // serde_json never writes a raw newline, so the JSON is one `data:` line.
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(json);
                out.extend_from_slice(b"\n\n");
            }
        }
        Bytes::from(out)
    }
}

/// An upstream stream that ended in error, for aborting a raw body.
#[derive(Debug, thiserror::Error)]
#[error("upstream stream failed: {0}")]
struct Aborted(tonic::Code);

/// The HTTP response that relays `messages` in `format`.
pub fn response(
    format: Format,
    messages: Streaming<DynamicMessage>,
    pool: DescriptorPool,
    request_id: String,
) -> Response {
    let body = if format == Format::Raw {
        let chunks = messages.map(|item| match item {
            Ok(message) => Ok(super::reply::http_body(&message).1),
            Err(status) => Err(Aborted(status.code())),
        });
        Body::from_stream(chunks)
    } else {
        let frames = messages.scan(false, move |failed, item| {
            if *failed {
                return std::future::ready(None);
            }
            let frame = match item {
                Ok(message) => match super::reply::to_json(&message) {
                    Some(json) => format.frame("result", &json),
                    None => {
                        *failed = true;
                        // The detail stays here, with the request id; the client's error line
                        // carries only the id (errors::body never relays INTERNAL text).
                        tracing::error!(
                            service = "gateway",
                            request_id,
                            message = message.descriptor().full_name(),
                            "a stream reply cannot be encoded as JSON"
                        );
                        let status = tonic::Status::internal("");
                        error_frame(format, &pool, &status, &request_id)
                    }
                },
                Err(status) => {
                    *failed = true;
                    error_frame(format, &pool, &status, &request_id)
                }
            };
            std::future::ready(Some(Ok::<_, Infallible>(frame)))
        });
        Body::from_stream(frames)
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    // Proxies must pass each message on as it comes rather than buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn error_frame(
    format: Format,
    pool: &DescriptorPool,
    status: &tonic::Status,
    request_id: &str,
) -> Bytes {
    // The response head said 200 long ago: this line is the only record of how it ended.
    let code = status.code();
    let http = errors::http_status(code).as_u16();
    if http >= 500 {
        tracing::warn!(service = "gateway", request_id, grpc.code = ?code, "rest stream failed");
    } else {
        tracing::info!(service = "gateway", request_id, grpc.code = ?code, "rest stream ended with an error");
    }
    let body = errors::body(pool, status, request_id);
    let json = serde_json::to_vec(&body).unwrap_or_default();
    format.frame("error", &json)
}
