//! The public REST surface: every path goes to the transcoder ([`crate::transcode`]), behind the
//! edge layers — security headers on every response (errors included), CORS for the configured
//! origins only, and the rate limit.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::limit::Limiter;
use crate::transcode::{Transcoder, handle};

/// OWASP's REST security headers, set on every response.
const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

pub fn router(transcoder: Arc<Transcoder>, limiter: Limiter, cors_origins: &[String]) -> Router {
    let origins: Vec<HeaderValue> = cors_origins
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
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER]);
    let mut router = Router::new()
        .fallback(handle)
        .with_state(transcoder)
        // Innermost of the edge layers: only requests that passed CORS preflight handling count.
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            crate::limit::enforce,
        ))
        .layer(cors);
    // Outermost: the headers go on every response, 429s and CORS refusals included.
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
}
