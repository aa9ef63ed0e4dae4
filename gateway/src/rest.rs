//! The public REST surface. Transcoding from `google.api.http` rules arrives with the gateway
//! issue; until then every path answers `501 Not Implemented` with the same JSON shape the
//! transcoder will use for errors (`google.rpc.Status`: `code`, `message`, `details`), so clients
//! can already rely on the error contract. Nothing here pretends to succeed.

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// gRPC `UNIMPLEMENTED`.
const CODE_UNIMPLEMENTED: i32 = 12;

pub fn router() -> Router {
    Router::new().fallback(not_yet)
}

async fn not_yet() -> Response {
    let body = serde_json::json!({
        "code": CODE_UNIMPLEMENTED,
        "message": "not implemented yet: REST-to-gRPC transcoding (gateway issue); call the services over gRPC",
        "details": [],
    });
    (StatusCode::NOT_IMPLEMENTED, Json(body)).into_response()
}
