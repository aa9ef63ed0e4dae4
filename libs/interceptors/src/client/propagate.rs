//! Propagation: every attempt carries the inbound call's request id, its trace context (this
//! hop's span as the parent) and `tracestate`, and the credential the builder chose
//! ([`Credentials`]): the inbound caller's authorization (gateway → service only), this
//! service's own token, or none — unless the request already set its own.

use std::task::{Context, Poll};

use http::HeaderValue;
use tower::{Layer, Service};

use super::Credentials;
use crate::context::CallContext;
use crate::headers::{TRACEPARENT, TRACESTATE, X_REQUEST_ID, per_call};
use crate::{BoxError, Request, Response};

#[derive(Clone, Debug, Default)]
pub struct PropagateLayer {
    credentials: Credentials,
}

impl PropagateLayer {
    pub fn new(credentials: Credentials) -> Self {
        Self { credentials }
    }
}

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagate {
            inner,
            credentials: self.credentials.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Propagate<S> {
    inner: S,
    credentials: Credentials,
}

impl<S> Service<Request> for Propagate<S>
where
    S: Service<Request, Response = Response>,
    S::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if let Credentials::Service(tokens) = &self.credentials
            && !request.headers().contains_key(http::header::AUTHORIZATION)
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", tokens.token()))
        {
            // Kept out of HPACK tables and debug output.
            value.set_sensitive(true);
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        if let Some(context) = CallContext::current() {
            let headers = request.headers_mut();
            if let Some(id) = &context.request_id
                && !headers.contains_key(X_REQUEST_ID)
                && let Ok(value) = HeaderValue::from_str(id.as_str())
            {
                headers.insert(X_REQUEST_ID, per_call(value));
            }
            if let Some(trace) = &context.trace
                && !headers.contains_key(TRACEPARENT)
                && let Ok(value) = HeaderValue::from_str(&trace.to_header())
            {
                headers.insert(TRACEPARENT, per_call(value));
                if let Some(state) = &context.tracestate {
                    headers.insert(TRACESTATE, state.clone());
                }
            }
            if let Credentials::ForwardCaller = self.credentials
                && let Some(authorization) = &context.authorization
            {
                headers
                    .entry(http::header::AUTHORIZATION)
                    .or_insert_with(|| authorization.clone());
            }
        }
        self.inner.call(request)
    }
}
