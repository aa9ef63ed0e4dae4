//! Reading a request body up to the limit — and refusing one over it so that the 413 reaches the
//! client.
//!
//! When a server closes a TCP connection whose receive buffer still holds unread bytes, the
//! kernel answers with a reset instead of a FIN, and a client still writing its body sees that
//! reset (curl: "connection reset", having read only `100 Continue`) rather than the 413 already
//! sent. hyper has no knob for this (its HTTP/1 connection simply closes once the response is
//! written and the body was left unread), so the gateway does what HTTP servers do (RFC 9112
//! §9.6, "lingering close"): it keeps reading — and discarding — the rest of a refused body in
//! the background, bounded in bytes and time, while the 413 goes out. A body that ends within
//! the bounds even leaves the connection reusable.
//!
//! A declared `Content-Length` over the limit is refused before the body is touched: with
//! `Expect: 100-continue` (curl's default for large bodies) hyper then never sends `100
//! Continue`, the client sends nothing more, and there is nothing to drain.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use crate::error::ApiError;

/// The most a refused body is read on for: beyond it the client is not sending a body but a
/// flood, and the connection is cut.
const DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// The longest a refused body is read on for.
const DRAIN_TIME: Duration = Duration::from_secs(10);
/// A client that stops sending for this long is not still writing its body (Apache's lingering
/// close waits as long per read); the drain ends, so a stalled client holds no connection (nor
/// the gateway's graceful drain) for the whole [`DRAIN_TIME`].
const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// The body, if it is at most `limit` bytes; otherwise [`ApiError::BodyTooLarge`], with the
/// rest of the body drained in the background (see the module doc).
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        let expects_continue = headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        // Reading now would make hyper send `100 Continue` after the 413: the client waits.
        if !expects_continue {
            drain(body);
        }
        return Err(ApiError::BodyTooLarge);
    }
    let mut body = body;
    let mut read = BytesMut::new();
    while let Some(frame) = body.frame().await {
        // A body that fails to arrive (the client went away) is nothing to transcode; the
        // response goes nowhere either, so the status is moot.
        let Ok(frame) = frame else {
            return Err(ApiError::BodyTooLarge);
        };
        if let Ok(data) = frame.into_data() {
            if read.len() + data.len() > limit {
                drain(body);
                return Err(ApiError::BodyTooLarge);
            }
            read.extend_from_slice(&data);
        }
    }
    Ok(read.freeze())
}

/// Reads and discards the rest of `body` in the background, within [`DRAIN_BYTES`] and
/// [`DRAIN_TIME`], and only while it keeps coming ([`DRAIN_IDLE`]).
fn drain(mut body: Body) {
    tokio::spawn(async move {
        let discard = async {
            let mut seen = 0u64;
            while let Ok(Some(Ok(frame))) = tokio::time::timeout(DRAIN_IDLE, body.frame()).await {
                if let Ok(data) = frame.into_data() {
                    seen += data.len() as u64;
                    if seen > DRAIN_BYTES {
                        return;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
    });
}
