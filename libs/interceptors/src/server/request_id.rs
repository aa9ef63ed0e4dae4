//! Request id: accept the caller's `x-request-id` (if sane) or mint a UUIDv7; start the call's
//! [`CallContext`] (the request extension the layers below fill in) with it, and return it in the
//! response metadata (errors included).

use std::future::Future;

use http::HeaderValue;

use crate::around::{Around, AroundLayer};
use crate::context::{CallContext, RequestId};
use crate::headers::{X_REQUEST_ID, per_call};
use crate::{BoxError, Request, Response};

pub const HEADER: &str = "x-request-id";

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIds;

pub type RequestIdLayer = AroundLayer<RequestIds>;

impl Around for RequestIds {
    #[inline(always)]
    fn around<F, Fut>(
        &self,
        mut request: Request,
        next: F,
    ) -> impl Future<Output = Result<Response, BoxError>> + Send + 'static
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, BoxError>> + Send + 'static,
    {
        let id = request
            .headers()
            .get(X_REQUEST_ID)
            .and_then(RequestId::accept)
            .unwrap_or_else(RequestId::mint);
        let header =
            per_call(HeaderValue::from_str(id.as_str()).expect("request ids are visible ASCII"));
        // Layers and handlers read the id from the call context; the caller's header stays as
        // sent. The first piece of the context: it is created here, the layers below fill it.
        request.extensions_mut().insert(CallContext {
            request_id: Some(id),
            ..CallContext::default()
        });
        let future = next(request);
        async move {
            match future.await {
                Ok(mut response) => {
                    response.headers_mut().insert(X_REQUEST_ID, header);
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
        }
    }
}
