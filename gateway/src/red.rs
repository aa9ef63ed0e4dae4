//! The REST edge's RED metrics (requests by route template, method and status; latency; in
//! flight). A route's handles are resolved from the metric families once, on its first request,
//! then kept by route index: a label lookup hashes the label values and takes the family's lock
//! on every call, which is most of what counting a request would otherwise cost.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ironmesh_interceptors::metrics::Metrics;
use parking_lot::RwLock;
use prometheus::{Histogram, IntCounter, IntGauge};

use crate::transcode::Transcoder;

/// The handles, for every route of the transcoder's table.
pub struct Red {
    transcoder: Arc<Transcoder>,
    in_flight: IntGauge,
    routes: Vec<RouteRed>,
}

/// One route's handles: its latency histogram and its counters by the statuses seen so far.
struct RouteRed {
    seconds: OnceLock<Histogram>,
    requests: RwLock<Vec<(u16, IntCounter)>>,
}

impl Red {
    pub fn new(transcoder: Arc<Transcoder>) -> Self {
        let routes = (0..transcoder.table().len())
            .map(|_| RouteRed {
                seconds: OnceLock::new(),
                requests: RwLock::new(Vec::new()),
            })
            .collect();
        Self {
            in_flight: Metrics::global()
                .http_in_flight
                .with_label_values(&["gateway"]),
            transcoder,
            routes,
        }
    }

    fn observe(&self, route: Option<usize>, method: &str, status: u16, seconds: f64) {
        let metrics = Metrics::global();
        let template = route.and_then(|index| Some((index, self.transcoder.table().get(index)?)));
        let Some((index, matched)) = template else {
            // Unmatched paths and the document: rare enough for the label lookup.
            let label = if route.is_none() {
                "unmatched"
            } else {
                "/openapi.json"
            };
            metrics
                .http_request_seconds
                .with_label_values(&["gateway", label, method])
                .observe(seconds);
            metrics
                .http_requests
                .with_label_values(&["gateway", label, method, &status.to_string()])
                .inc();
            return;
        };
        let red = &self.routes[index];
        let template = matched.template.text();
        red.seconds
            .get_or_init(|| {
                metrics
                    .http_request_seconds
                    .with_label_values(&["gateway", template, method])
            })
            .observe(seconds);
        if let Some((_, counter)) = red.requests.read().iter().find(|(s, _)| *s == status) {
            counter.inc();
            return;
        }
        let counter = metrics.http_requests.with_label_values(&[
            "gateway",
            template,
            method,
            &status.to_string(),
        ]);
        counter.inc();
        red.requests.write().push((status, counter));
    }
}

/// The outermost layer: every request is counted, whatever answered it. The route is matched
/// once here, for the label and for the handler (see `Transcoder::match_route`).
pub async fn record(State(red): State<Arc<Red>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "other",
    };
    // `Some(usize::MAX)`: the OpenAPI document (no route of the table).
    let route = if request.uri().path() == "/openapi.json" {
        Some(usize::MAX)
    } else {
        red.transcoder.match_route(&mut request)
    };
    red.in_flight.inc();
    let in_flight = InFlight(&red.in_flight);
    let response = next.run(request).await;
    drop(in_flight);
    red.observe(
        route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response.into_response()
}

/// Counts a request out when dropped (also when the client goes away mid-request).
struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
