//! Request id: accept the caller's `x-request-id` (if sane) or mint a UUIDv7; make it a request
//! extension for the layers below and return it in the response metadata.

use std::task::{Context, Poll};

use http::HeaderValue;
use tower::{Layer, Service};

use crate::context::RequestId;
use crate::{BoxError, BoxFuture, Request, Response};

pub const HEADER: &str = "x-request-id";

#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S> Service<Request> for RequestIdService<S>
where
    S: Service<Request, Response = Response>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let id = request
            .headers()
            .get(HEADER)
            .and_then(RequestId::accept)
            .unwrap_or_else(RequestId::mint);
        let header = HeaderValue::from_str(id.as_str()).expect("request ids are visible ASCII");
        request.headers_mut().insert(HEADER, header.clone());
        request.extensions_mut().insert(id);
        let future = self.inner.call(request);
        Box::pin(async move {
            match future.await.map_err(Into::into) {
                Ok(mut response) => {
                    response.headers_mut().insert(HEADER, header);
                    Ok(response)
                }
                // Errors become a status response further out; give it the id too.
                Err(err) => match tonic::Status::try_from_error(err) {
                    Ok(mut status) => {
                        if let Ok(value) = header.to_str().unwrap_or_default().parse() {
                            status.metadata_mut().insert(HEADER, value);
                        }
                        Err(Box::new(status) as BoxError)
                    }
                    Err(other) => Err(other),
                },
            }
        })
    }
}
