//! The public REST surface: `/openapi.json`, and every other path to the transcoder
//! ([`crate::transcode`]), behind the edge layers — RED metrics, security headers on every
//! response (errors included; HSTS when serving TLS), the header-size limit, CORS for the
//! configured origins only, and the rate limit.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::ratelimit::Limiter;
use crate::red::{Red, record};
use crate::transcode::{Transcoder, handle};

/// OWASP's REST security headers, set on every response.
const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Sent only over TLS: a browser ignores it on plain HTTP, and it must not be learnt there.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// How the REST router is set up.
pub struct Edge<'a> {
    pub limiter: Limiter,
    pub cors_origins: &'a [String],
    /// The listener speaks TLS (adds HSTS).
    pub tls: bool,
    /// The OpenAPI document served at `/openapi.json`.
    pub openapi: serde_json::Value,
    /// The largest request header list accepted ([`crate::header_limit`]).
    pub max_header_bytes: usize,
}

pub fn router(transcoder: Arc<Transcoder>, edge: Edge<'_>) -> Router {
    // CORS lets browsers send, and scripts read, what the transcoder forwards.
    let (forward_request, forward_response) = transcoder.forwarded_headers();
    let origins: Vec<HeaderValue> = edge
        .cors_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin.trim_end_matches('/')).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        // What a browser may send: what the gateway reads or forwards, nothing more.
        .allow_headers(
            [
                "authorization",
                "content-type",
                "x-request-id",
                "x-request-timeout",
                "grpc-timeout",
                "traceparent",
                "tracestate",
            ]
            .into_iter()
            .map(HeaderName::from_static)
            .chain(forward_request.iter().cloned())
            .collect::<Vec<_>>(),
        )
        // What a browser script may read: ids, rate-limit state, and forwarded metadata.
        .expose_headers(
            [
                "x-request-id",
                "x-trace-id",
                "retry-after",
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
                "ratelimit-policy",
            ]
            .into_iter()
            .map(HeaderName::from_static)
            .chain(forward_response.iter().cloned())
            .collect::<Vec<_>>(),
        );
    // Rendered once: the document is fixed for the life of the process.
    let openapi = bytes::Bytes::from(serde_json::to_vec(&edge.openapi).unwrap_or_default());
    let mut router = Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let document = openapi.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], document) }
            }),
        )
        .fallback(handle)
        .with_state(transcoder.clone())
        // Innermost of the edge layers: only requests that passed CORS preflight handling count.
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(edge.limiter),
            crate::ratelimit::enforce,
        ))
        .layer(cors)
        // Before CORS and the rate limit: no work at all for a request refused for its size.
        .layer(axum::middleware::from_fn_with_state(
            edge.max_header_bytes,
            crate::header_limit::enforce,
        ));
    // The headers go on every response, 429s and CORS refusals included (one layer for all).
    let hsts = edge.tls;
    router = router.layer(axum::middleware::map_response(
        move |mut response: Response| async move {
            let headers = response.headers_mut();
            for (name, value) in SECURITY_HEADERS {
                headers.insert(name, HeaderValue::from_static(value));
            }
            if hsts {
                headers.insert(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static(HSTS),
                );
            }
            response
        },
    ));
    // Outermost: every request is counted, whatever answered it.
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(Red::new(transcoder)),
        record,
    ))
}
