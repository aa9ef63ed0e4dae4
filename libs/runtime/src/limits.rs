//! The gRPC message size limit, answered the way the gRPC spec and other implementations answer it:
//! `RESOURCE_EXHAUSTED`.
//!
//! tonic enforces `max_decoding_message_size` too, but reports `OUT_OF_RANGE`, which clients treat
//! as a bug in their request rather than a limit. No tower or tonic layer reports the right code,
//! so this small one reads each message's 5-byte length prefix as the body streams in and fails
//! the body with a `tonic::Status` the moment a prefix announces more than the limit — before the
//! payload is buffered. tonic finds that `Status` in the body error and returns it unchanged.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Wraps every request body in a [`LimitedBody`].
#[derive(Clone, Copy, Debug)]
pub struct MessageLimitLayer {
    limit: usize,
}

impl MessageLimitLayer {
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// See [`MessageLimitLayer`].
#[derive(Clone, Debug)]
pub struct MessageLimit<S> {
    inner: S,
    limit: usize,
}

impl<S, B> Service<http::Request<B>> for MessageLimit<S>
where
    S: Service<http::Request<tonic::body::Body>>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limit = self.limit;
        self.inner
            .call(request.map(|body| tonic::body::Body::new(LimitedBody::new(body, limit))))
    }
}

const PREFIX_LEN: usize = 5;

pin_project! {
    /// A request body that fails with RESOURCE_EXHAUSTED when a gRPC message prefix announces a
    /// message larger than `limit`. Data passes through unchanged.
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        limit: usize,
        // Bytes of the current length prefix seen so far.
        prefix: [u8; PREFIX_LEN],
        prefix_filled: usize,
        // Payload bytes of the current message still to pass before the next prefix.
        payload_left: usize,
    }
}

impl<B> LimitedBody<B> {
    pub fn new(inner: B, limit: usize) -> Self {
        Self {
            inner,
            limit,
            prefix: [0; PREFIX_LEN],
            prefix_filled: 0,
            payload_left: 0,
        }
    }
}

/// Advances the frame parser over `chunk`; returns the announced length that broke the limit.
fn scan(
    mut chunk: &[u8],
    limit: usize,
    prefix: &mut [u8; PREFIX_LEN],
    prefix_filled: &mut usize,
    payload_left: &mut usize,
) -> Result<(), usize> {
    while !chunk.is_empty() {
        if *payload_left > 0 {
            let skip = (*payload_left).min(chunk.len());
            *payload_left -= skip;
            chunk.advance(skip);
            continue;
        }
        let take = (PREFIX_LEN - *prefix_filled).min(chunk.len());
        prefix[*prefix_filled..*prefix_filled + take].copy_from_slice(&chunk[..take]);
        *prefix_filled += take;
        chunk.advance(take);
        if *prefix_filled == PREFIX_LEN {
            let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
            if len > limit {
                return Err(len);
            }
            *prefix_filled = 0;
            *payload_left = len;
        }
    }
    Ok(())
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<tower::BoxError>,
{
    type Data = Bytes;
    type Error = tower::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(len) = scan(
                        data,
                        *this.limit,
                        this.prefix,
                        this.prefix_filled,
                        this.payload_left,
                    )
                {
                    let status = tonic::Status::resource_exhausted(format!(
                        "message of {len} bytes exceeds the {} byte limit",
                        this.limit
                    ));
                    return Poll::Ready(Some(Err(Box::new(status))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut out = vec![0u8];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len as usize));
        out
    }

    fn run(chunks: &[&[u8]], limit: usize) -> Result<(), usize> {
        let (mut prefix, mut filled, mut left) = ([0; PREFIX_LEN], 0, 0);
        for chunk in chunks {
            scan(chunk, limit, &mut prefix, &mut filled, &mut left)?;
        }
        Ok(())
    }

    #[test]
    fn messages_at_the_limit_pass_in_any_chunking() {
        let mut stream = frame(10);
        stream.extend(frame(3));
        assert_eq!(run(&[&stream], 10), Ok(()));
        let pieces: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&pieces, 10), Ok(()));
    }

    #[test]
    fn a_prefix_over_the_limit_fails_even_when_split() {
        let mut stream = frame(1);
        stream.extend(&frame(11)[..PREFIX_LEN]);
        let pieces: Vec<&[u8]> = stream.chunks(2).collect();
        assert_eq!(run(&pieces, 10), Err(11));
    }
}
