//! The public REST surface: every path goes to the transcoder ([`crate::transcode`]), which
//! finds the `google.api.http` rule, calls the service over gRPC and answers in JSON — or answers
//! with the same `google.rpc.Status`-shaped JSON error when there is no such route.

use std::sync::Arc;

use axum::Router;

use crate::transcode::{Transcoder, handle};

pub fn router(transcoder: Arc<Transcoder>) -> Router {
    Router::new().fallback(handle).with_state(transcoder)
}
